"""``vaezoo explore`` at the HTTP level, for every family: the card, base points, decoding a moved
latent, samples, interpolation, the reconstruction of an upload (and its refusal), the code grid of
a VQ model; the server's guards (its own host only, bounded bodies, no other pages)."""

from __future__ import annotations

import base64
import io
import json
import socket
import urllib.error
import urllib.request

import numpy as np
import pytest
import torch
from PIL import Image

import vaezoo
from vaezoo.explore import Explorer, serve
from vaezoo.explore.server import CONTENT_SECURITY_POLICY

from _tiny_training import TINY_FAMILIES

FAMILIES = ["vae", "cvae", "hvae", "ladder", "categorical", "vqvae"]


def tiny_model(family: str, **extra) -> torch.nn.Module:
    torch.manual_seed(0)
    return vaezoo.create({"family": family, "input_shape": [1, 8, 8], **TINY_FAMILIES[family], **extra})


def held_out(n: int = 12) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    return torch.rand(n, 1, 8, 8, generator=gen).round(), torch.randint(0, 4, (n,), generator=gen)


def png_upload(array: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def decoded(data_url: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))))


class Client:
    def __init__(self, url: str, host: str | None = None):
        self.url, self.host = url.rstrip("/"), host

    def request(self, path: str, body=None, raw: bytes | None = None):
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        request = urllib.request.Request(self.url + path, data=data, method="GET" if data is None else "POST")
        if self.host:
            request.add_header("Host", self.host)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()

    def json(self, path: str, body=None, status: int = 200):
        code, _, payload = self.request(path, body)
        assert code == status, payload
        return json.loads(payload)


@pytest.fixture
def explorer_of():
    servers = []

    def start(model, labels=True, **kwargs):
        images, classes = held_out()
        explorer = Explorer(model, "tiny", images, classes if labels else None,
                            card={"classes": ["a", "b", "c", "d"]}, **kwargs)
        server, _ = serve(explorer)
        servers.append(server)
        return Client(server.url), explorer

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_answers_the_pages_requests(family, explorer_of):
    model = tiny_model(family)
    client, _ = explorer_of(model)
    card = client.json("/api/card")
    assert card["family"] == family and card["parameters"] == model.num_parameters()
    kinds = {level["kind"] for level in card["levels"]}
    assert kinds == {"codes" if family == "vqvae" else "categorical" if family == "categorical" else "gaussian"}
    base = client.json("/api/base", {"source": "test", "index": 2, "label": 1})
    assert decoded(base["input"]).shape == (8, 8) and decoded(base["image"]).shape == (8, 8)
    state = {k: v for k, v in base.items() if k not in ("image", "input")}
    before = decoded(client.json("/api/decode", state)["image"])
    np.testing.assert_array_equal(before, decoded(base["image"]))  # the base decodes to the same picture
    # move the state as the page would: a slider, a category, a code
    if "latents" in state:
        level = [level for level in card["levels"] if level["decoder_reads"]][-1]
        top = level["order"][0]
        state["latents"][level["name"]][top] += 3.0
    elif "categories" in state:
        state["categories"][0] = (state["categories"][0] + 1) % card["levels"][0]["categories"]
    else:
        state["codes"][0][0] = (state["codes"][0][0] + 1) % card["levels"][0]["codebook_size"]
    after = decoded(client.json("/api/decode", state)["image"])
    assert not np.array_equal(before, after), "moving the latent did not change the picture"
    path = client.json("/api/interpolate", {"a": {"index": 0}, "b": {"index": 1}, "steps": 4})
    assert decoded(path["image"]).shape == (12, 6 * 10 + 2)  # the two inputs and four steps, padded by 2
    upload = png_upload((held_out()[0][5, 0].numpy() * 255).astype(np.uint8))
    recon = client.json("/api/reconstruct", {"upload": upload, "label": 2})
    assert decoded(recon["input"]).shape == (8, 8) and decoded(recon["image"]).shape == (8, 8)
    if family == "vqvae":  # no code prior fitted: no samples, and the page is told so
        assert card["can_sample"] is False
        assert "no code prior" in client.json("/api/base", {"source": "sample"}, status=400)["error"]
    else:
        samples = client.json("/api/samples", {"seed": 3, "n": 4, "label": 1})
        assert decoded(samples["image"]).shape == (2 * 10 + 2, 2 * 10 + 2)  # 4 samples, 2 x 2
        again = client.json("/api/samples", {"seed": 3, "n": 4, "label": 1})
        assert samples == again  # seeded
        sampled = client.json("/api/base", {"source": "sample", "seed": 5, "label": 3})
        assert decoded(sampled["image"]).shape == (8, 8)


def test_a_hierarchy_moves_the_level_asked_for(explorer_of):
    client, _ = explorer_of(tiny_model("hvae"))
    card = client.json("/api/card")
    assert [level["name"] for level in card["levels"]] == ["z1", "z2"]
    assert all(level["decoder_reads"] for level in card["levels"])  # p(x | z1, z2) reads both
    state = client.json("/api/base", {"source": "test", "index": 0})
    state = {"latents": state["latents"], "label": None}
    images = {}
    for level in ("z1", "z2"):
        moved = json.loads(json.dumps(state))
        moved["latents"][level] = [v + 2.0 for v in moved["latents"][level]]
        images[level] = decoded(client.json("/api/decode", moved)["image"])
    assert not np.array_equal(images["z1"], images["z2"])


def test_a_ladder_says_which_levels_its_decoder_reads(explorer_of):
    client, _ = explorer_of(tiny_model("ladder"))
    reads = {level["name"]: level["decoder_reads"] for level in client.json("/api/card")["levels"]}
    assert reads == {"z1": True, "z2": False, "z3": False}  # p(x | z1): the levels above shape z1's prior only


def test_a_conditional_model_decodes_the_class_it_is_given(explorer_of):
    client, _ = explorer_of(tiny_model("cvae", conditional_prior=True))
    state = client.json("/api/base", {"source": "test", "index": 0})
    assert state["label"] == int(held_out()[1][0])  # the test image's own class
    by_class = [decoded(client.json("/api/decode", {"latents": state["latents"], "label": k})["image"]) for k in (0, 3)]
    assert not np.array_equal(*by_class)
    assert "label: 7 is out of range (0 to 3)" in client.json("/api/decode", {"latents": state["latents"], "label": 7},
                                                            status=400)["error"]


def test_a_vq_models_code_is_drawn_again_from_its_code_prior(explorer_of):
    model = tiny_model("vqvae", code_prior={"name": "pixelcnn", "channels": 8, "layers": 2})
    client, _ = explorer_of(model)
    assert client.json("/api/card")["can_sample"] is True
    state = client.json("/api/base", {"source": "test", "index": 0})
    drawn = [client.json("/api/resample", {"codes": state["codes"], "row": 1, "col": 1, "seed": s})["codes"]
             for s in range(12)]
    assert all(d[0] == state["codes"][0] and d[1][0] == state["codes"][1][0] for d in drawn)  # the rest is kept
    assert len({d[1][1] for d in drawn}) > 1  # the code at (1, 1) is drawn, not fixed
    assert client.json("/api/base", {"source": "sample", "seed": 0})["codes"]
    assert "expected a 2 x 2 grid of codes 0 to 7" in client.json(
        "/api/decode", {"codes": [[0, 9], [0, 0]]}, status=400)["error"]


def test_an_upload_that_does_not_fit_the_model_is_refused_with_what_it_takes(explorer_of):
    client, _ = explorer_of(tiny_model("vae"))
    too_big = png_upload(np.zeros((16, 16), dtype=np.uint8))
    colour = png_upload(np.zeros((8, 8, 3), dtype=np.uint8))
    message = client.json("/api/reconstruct", {"upload": too_big}, status=400)["error"]
    assert message == ("this model takes grayscale images of 8 x 8 pixels; the upload is a grayscale image of "
                       "16 x 16: resize or convert it first")
    assert "the upload is a colour image of 8 x 8" in client.json("/api/reconstruct", {"upload": colour}, status=400)["error"]
    assert "not a readable PNG or JPEG" in client.json(
        "/api/reconstruct", {"upload": "data:image/png;base64," + base64.b64encode(b"not a png").decode()},
        status=400)["error"]
    assert "base64 is malformed" in client.json("/api/reconstruct", {"upload": "data:image/png;base64,@@"},
                                                status=400)["error"]


def test_the_server_guards_its_door(explorer_of):
    client, explorer = explorer_of(tiny_model("vae"))
    status, headers, page = client.request("/")
    assert status == 200 and headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert b"http://" not in page and b"https://" not in page  # nothing on the page points elsewhere
    assert "default-src 'none'" in CONTENT_SECURITY_POLICY and "connect-src 'self'" in CONTENT_SECURITY_POLICY
    host, port = client.url.removeprefix("http://").split(":")
    assert Client(client.url, host=f"attacker.example:{port}").request("/api/card")[0] == 421  # DNS rebinding
    assert client.request("/../../etc/passwd")[0] == 404 and client.request("/api/nothing", {})[0] == 404
    assert "not JSON" in json.loads(client.request("/api/decode", raw=b"{oops")[2])["error"]
    with socket.create_connection((host, int(port))) as raw:  # a body announced too large is not read
        raw.sendall(f"POST /api/decode HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: 99999999\r\n\r\n".encode())
        answer = b"".join(iter(lambda: raw.recv(4096), b""))
        assert answer.startswith(b"HTTP/1.0 413")
    assert "expected the levels ['z']" in client.json("/api/decode", {"latents": {"w": [0]}}, status=400)["error"]
    assert "expected 4 finite numbers" in client.json("/api/decode", {"latents": {"z": [0, 0, float("nan"), 0]}},
                                                      status=400)["error"]
    assert "latents.z: expected numbers" in client.json("/api/decode", {"latents": {"z": [0, 0, "x", 0]}},
                                                        status=400)["error"]
    assert "n: 500 is out of range (1 to 64)" in client.json("/api/samples", {"n": 500}, status=400)["error"]


def test_the_cli_serves_a_published_model_with_its_card(monkeypatch, capsys):
    import threading

    from vaezoo.cli import main
    from vaezoo.explore import server as server_module

    seen = {}
    real_serve = server_module.ExplorerServer.serve_forever

    def serve_once(self):  # serve, answer one card request, then stop as Ctrl-C would
        thread = threading.Thread(target=real_serve, args=(self,), daemon=True)
        thread.start()
        seen["card"] = Client(self.url).json("/api/card")
        self.shutdown()
        raise KeyboardInterrupt

    monkeypatch.setattr(server_module.ExplorerServer, "serve_forever", serve_once)
    assert main(["explore", "fashion-binary-mlp32", "--test-images", "50"]) == 130
    out = capsys.readouterr()
    assert "exploring fashion-binary-mlp32 at http://127.0.0.1:" in out.out and "stopped by Ctrl-C" in out.err
    card = seen["card"]
    assert card["family"] == "vae" and card["test_images"] == 50 and card["classes"][0] == "T-shirt/top"
    assert card["use_for"] and {m["name"] for m in card["metrics"]} >= {"neg_elbo", "iwae_nll", "fd-fashion-v1"}


def test_interpolation_takes_uploads_and_the_fitted_mixture_samples(explorer_of):
    from vaezoo.schemas import DataConfig

    from _tiny_training import TINY_DATASET, register

    register()
    data = DataConfig.model_validate({"dataset": TINY_DATASET, "val_size": 0})
    client, _ = explorer_of(tiny_model("vae"), data=data)
    a, b = (png_upload(np.full((8, 8), v, dtype=np.uint8)) for v in (0, 255))
    path = decoded(client.json("/api/interpolate", {"a": {"upload": a}, "b": {"upload": b}, "steps": 3})["image"])
    assert path.shape == (12, 5 * 10 + 2)
    assert path[2:10, 2:10].max() == 0 and path[2:10, 42:50].min() == 255  # the two uploads at the ends
    assert client.json("/api/card")["gmm"] is True
    model_prior = decoded(client.json("/api/samples", {"seed": 0, "n": 4})["image"])
    fitted = decoded(client.json("/api/samples", {"seed": 0, "n": 4, "prior": "gmm"})["image"])
    assert not np.array_equal(model_prior, fitted)
    assert "prior: 'model' or 'gmm'" in client.json("/api/samples", {"prior": "vamp"}, status=400)["error"]
