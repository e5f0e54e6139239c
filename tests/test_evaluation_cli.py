"""The evaluation and picture commands, end to end on a briefly trained checkpoint."""

from __future__ import annotations

import json

import pytest
import torch
from torchvision.io import read_image

import vaezoo
from vaezoo.cli import main
from vaezoo.cli.evaluate import parse_dims
from vaezoo.data import fashion_mnist

from _tiny_training import briefly_train

LATENT = 8


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, fashion_mnist_dir):
    """An mlp VAE after 200 Adam steps on 2,000 Fashion-MNIST training images, saved in Hub layout."""
    torch.manual_seed(0)
    images = fashion_mnist(None).train_images[:2000].float() / 255
    model = vaezoo.create({"model": {"input_shape": [1, 28, 28], "latent_dim": LATENT,
                                     "encoder": {"name": "mlp", "hidden": [128]},
                                     "decoder": {"name": "mlp", "hidden": [128]}}})
    briefly_train(model, images, steps=200)
    return model.save_pretrained(tmp_path_factory.mktemp("mlp-vae"))


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_eval_json_carries_metrics_and_protocol(checkpoint, capsys):
    code, out, _ = run(capsys, "eval", checkpoint, "--iw-samples", 50, "--elbo-samples", 2, "--limit", 40,
                       "--refine-steps", 20, "--json", "-q")
    assert code == 0
    report = json.loads(out)
    p = report["protocol"]
    assert (p["dataset"], p["split"], p["examples"], p["iw_samples"]) == ("fashion-mnist", "test", 40, 50)
    assert p["likelihood"] == "bernoulli" and p["binarization"].startswith("none")
    m = {k: v["value"] for k, v in report["metrics"].items()}
    assert m["iwae_nll"] <= m["neg_elbo"]  # the k=50 bound is tighter than the ELBO
    assert m["amortization_gap"] > 0  # refinement raised the ELBO of a briefly trained encoder
    assert 0 < m["active_units"] <= LATENT
    assert 100 < m["neg_elbo"] < 400  # trained: far below an untrained model's ~545 nats per image


def test_eval_table_prints_the_protocol(checkpoint, capsys, tmp_path):
    code, out, err = run(capsys, "eval", checkpoint, "--iw-samples", 10, "--limit", 20, "-o", tmp_path / "r.json")
    assert code == 0
    assert "k=10" in out and "fashion-mnist, test split, 20 examples" in out and "binarization" in out
    assert "NLL bits/dim" in out and "active units" in out
    assert "20/20 examples" in err  # progress goes to stderr, results to stdout
    assert json.loads((tmp_path / "r.json").read_text())["protocol"]["iw_samples"] == 10


@pytest.mark.parametrize("command, args, tiles_hw", [
    ("sample", ["-n", 16], (4, 4)),
    ("interpolate", ["--pairs", 3, "--steps", 6], (3, 8)),
])
def test_picture_commands_write_grids(checkpoint, capsys, tmp_path, command, args, tiles_hw):
    out_png = tmp_path / f"{command}.png"
    code, out, _ = run(capsys, command, checkpoint, *args, "-o", out_png)
    assert code == 0 and str(out_png) in out
    picture = read_image(str(out_png))
    rows, cols = tiles_hw
    assert picture.shape == (1, rows * 30 + 2, cols * 30 + 2)  # grayscale: 28x28 tiles, 2-pixel padding


def test_traversal_and_reconstruction_pictures_say_what_each_row_and_column_is(checkpoint, capsys, tmp_path,
                                                                              monkeypatch):
    import vaezoo.cli.evaluate as commands

    drawn = []
    real = commands.labelled_grid
    monkeypatch.setattr(commands, "labelled_grid", lambda grid, tile, path, **labels: (
        drawn.append((grid, labels)), real(grid, tile, path, **labels))[1])
    code, out, _ = run(capsys, "traverse", checkpoint, "--dims", "0-3", "--range", "-3", "3", "--steps", 7,
                       "-o", tmp_path / "t.png")
    assert code == 0
    grid, labels = drawn[-1]
    assert grid.shape == (3, 5 * 30 + 2, 7 * 30 + 2)  # the input row, then one row per dimension
    assert labels["row_labels"][0] == "input, recon" and len(labels["row_labels"]) == 5
    assert all(label.startswith("z[") and " KL " in label for label in labels["row_labels"][1:])
    assert labels["column_labels"] == ["-3", "-2", "-1", "0", "1", "2", "3"]
    test_image = fashion_mnist(None).test_images[0].float() / 255
    torch.testing.assert_close(grid[0, 2:30, 2:30], test_image[0])  # the first tile is the input itself
    assert read_image(str(tmp_path / "t.png")).shape[2] > grid.shape[2]  # labels beside the grid
    code, _, _ = run(capsys, "reconstruct", checkpoint, "-n", 8, "--pairs-per-row", 4, "-o", tmp_path / "r.png")
    grid, labels = drawn[-1]
    assert code == 0 and grid.shape == (3, 2 * 30 + 2, 8 * 30 + 2)
    assert labels["column_labels"] == ["input", "recon"] * 4


def test_traverse_prints_rows_in_kl_order(checkpoint, capsys, tmp_path):
    code, out, _ = run(capsys, "traverse", checkpoint, "--dims", "0-3", "-o", tmp_path / "t.png")
    assert code == 0
    kls = [float(item.split(":")[1]) for item in out.splitlines()[0].split("): ", 1)[1].split(", ")]
    assert len(kls) == 4 and kls == sorted(kls, reverse=True)


def test_embed_writes_a_latent_map(checkpoint, capsys, tmp_path):
    code, _, _ = run(capsys, "embed", checkpoint, "--limit", 500, "-o", tmp_path / "latents.png")
    assert code == 0
    picture = read_image(str(tmp_path / "latents.png"))
    assert picture.shape[0] == 3 and picture.shape[1] > 300


@pytest.mark.parametrize("argv, message", [
    (["eval", "no/such/folder"], "no/such/folder"),
    (["traverse", "{ckpt}", "--dims", "a-b"], "--dims"),
    (["traverse", "{ckpt}", "--dims", "0-99"], "out of range"),
])
def test_errors_are_one_line_on_stderr_with_status_2(checkpoint, capsys, argv, message):
    code, out, err = run(capsys, *[a.format(ckpt=checkpoint) for a in argv])
    assert code == 2 and out == ""
    assert err.startswith("error:") and message in err and len(err.strip().splitlines()) == 1


def test_parse_dims():
    assert parse_dims("0-3,8") == [0, 1, 2, 3, 8]
    with pytest.raises(ValueError):
        parse_dims("3-1")
