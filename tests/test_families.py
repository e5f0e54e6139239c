"""The model families: exact bounds against quadrature, named terms, labels, configs, the whole way."""

from __future__ import annotations

import io
import json
import math

import pytest
import torch
from PIL import Image

import vaezoo
from vaezoo.cli import main
from vaezoo.errors import ConfigError, UsageError
from vaezoo.evaluation import evaluate

from _tiny_training import TINY_FAMILIES, register, tiny_config

register()

FAMILIES = ["vae", "cvae", "hvae", "ladder"]


def tiny(family: str, shape=(1, 8, 8), **model) -> vaezoo.BaseVAE:
    return vaezoo.create({"model": {"family": family, "input_shape": list(shape), **TINY_FAMILIES[family], **model}})


def labels_for(model, n: int):
    return torch.arange(n) % model.config.num_classes if model.conditional else None


# ------------------------------------------------------------------ exact math, against quadrature
#
# With one latent number per level and 1x2 binary images, log p(x) = log of an integral over a
# grid of every level, which quadrature gives to ~1e-6: a known answer for any family, nonlinear
# networks included. The generative densities come from the family's own conditionals; the
# importance weights must then converge to it, which holds only if q and the joint over all
# levels are right. The 4 binary images' p(x) must also sum to 1 (the generative model is normalized).

GRID = torch.linspace(-10.0, 10.0, 801, dtype=torch.float64)
STEP = float(GRID[1] - GRID[0])
IMAGES = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]], dtype=torch.float64).view(4, 1, 1, 2)


def _log_joint_on_grid(model, x: torch.Tensor) -> torch.Tensor:
    """log p(x, z) on every grid point of every level (1-d each): shape (points,) per image in x."""
    family = model.family
    with torch.no_grad():
        if family in ("vae", "cvae"):
            z = GRID.view(-1, 1)
            y = torch.zeros(z.shape[0], dtype=torch.long) if model.conditional else None
            prior = model.level_prior(y).log_prob(z) if model.conditional else model.prior.log_prob(z)
            return torch.stack([prior + model.decode(z, y).log_prob(xi.expand(z.shape[0], *xi.shape)) for xi in x])
        if family == "hvae":
            z1, z2 = torch.meshgrid(GRID, GRID[::4], indexing="ij")
            z1, z2 = z1.reshape(-1, 1), z2.reshape(-1, 1)
            log_p = model.prior.log_prob(z2) + model.p_z1_given(z2).log_prob(z1)
            return torch.stack([log_p + model.decode({"z1": z1, "z2": z2}).log_prob(xi.expand(z1.shape[0], *xi.shape))
                                for xi in x])
        assert family == "ladder"
        coarse = GRID[::8]
        z1, z2, z3 = (g.reshape(-1, 1) for g in torch.meshgrid(GRID[::4], coarse, coarse, indexing="ij"))
        log_p = model.prior.log_prob(z3) + model.prior_of_level(1, z3).log_prob(z2) + \
            model.prior_of_level(0, z2).log_prob(z1)
        return torch.stack([log_p + model.decode(z1).log_prob(xi.expand(z1.shape[0], *xi.shape)) for xi in x])


def _cell(family: str) -> float:
    """The volume of one grid cell of the family's quadrature."""
    return {"vae": STEP, "cvae": STEP, "hvae": STEP * 4 * STEP, "ladder": 4 * STEP * (8 * STEP) ** 2}[family]


def _one_number_per_level(family: str) -> dict:
    small = {"vae": {"latent_dim": 1}, "cvae": {"latent_dim": 1, "num_classes": 2},
             "hvae": {"latent_dims": [1, 1]}, "ladder": {"latent_dims": [1, 1, 1]}}[family]
    # variances that the grid resolves: no level narrower than exp(-1.5) = 0.22
    clamp = {} if family in ("vae", "cvae") else {"logvar_range": [-3.0, 1.0]}
    return {**small, **clamp}


@pytest.mark.parametrize("family", FAMILIES)
def test_iwae_converges_to_the_exact_log_likelihood(family):
    torch.manual_seed(0)
    model = tiny(family, shape=(1, 1, 2), **_one_number_per_level(family)).double()
    y = torch.zeros(4, dtype=torch.long) if model.conditional else None
    # A few hundred steps on the ELBO make q a good proposal, so that k = 20,000 weights settle
    # to within 0.02 nats (an untrained encoder's weights are heavy-tailed).
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    data = IMAGES.repeat(8, 1, 1, 1)
    for _ in range(300):
        optimizer.zero_grad()
        model(data, None if y is None else y.repeat(8)).loss.backward()
        optimizer.step()
    model.eval()
    log_joint = _log_joint_on_grid(model, IMAGES)
    exact = torch.logsumexp(log_joint, dim=1) + math.log(_cell(family))
    assert float(torch.logsumexp(exact, 0).exp()) == pytest.approx(1.0, abs=1e-4)  # sum over x of p(x) is 1
    with torch.no_grad():
        iwae = model.iwae(IMAGES, k=20000, y=y, seed=1)
        elbo = model.elbo(IMAGES, samples=2000, y=y)
    torch.testing.assert_close(iwae, exact, atol=0.02, rtol=0)
    assert (elbo <= exact + 0.01).all() and (elbo <= iwae + 0.01).all()  # up to the ELBO estimate's noise


@pytest.mark.parametrize("family,posterior", [
    ("vae", {"name": "planar", "steps": 4}), ("vae", {"name": "radial", "steps": 4}),
    ("vae", {"name": "iaf", "blocks": 2, "hidden": [8]}), ("hvae", {"name": "planar", "steps": 2}),
    ("ladder", {"name": "radial", "steps": 2})])
def test_iwae_of_a_flow_posterior_converges_to_the_exact_log_likelihood(family, posterior):
    """The same quadrature check for a VAE whose posterior is a flow (each level's, in a hierarchy):
    its log q(z|x) comes from the draw (the change of variables), and the weights must still
    settle on log p(x)."""
    torch.manual_seed(0)
    model = tiny(family, shape=(1, 1, 2), **_one_number_per_level(family), posterior=posterior).double()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    data = IMAGES.repeat(8, 1, 1, 1)
    for _ in range(300):
        optimizer.zero_grad()
        model(data).loss.backward()
        optimizer.step()
    model.eval()
    exact = torch.logsumexp(_log_joint_on_grid(model, IMAGES), dim=1) + math.log(_cell(family))
    with torch.no_grad():
        iwae = model.iwae(IMAGES, k=20000, seed=1)
        elbo = model.elbo(IMAGES, samples=2000)
    torch.testing.assert_close(iwae, exact, atol=0.02, rtol=0)
    assert (elbo <= exact + 0.01).all() and (elbo <= iwae + 0.01).all()


@pytest.mark.parametrize("family", ["hvae", "ladder"])
def test_closed_form_kl_of_each_level_is_its_monte_carlo_average(family):
    torch.manual_seed(0)
    model = tiny(family).double()
    x = torch.rand(3, 1, 8, 8, dtype=torch.float64).round()
    eps = torch.randn(1, 3, *model.noise_shape, dtype=torch.float64)
    draw = model.latent_pass(x, eps)
    for level in draw.levels[:-1]:  # below the top, KL(q(z_l | ...) || p(z_l | z_above)) given the draw above
        samples = level.q.reparameterize(torch.randn(40000, 1, 3, level.z.shape[-1], dtype=torch.float64))
        monte_carlo = (level.q.log_prob(samples) - level.p.log_prob(samples)).mean(dim=0)
        torch.testing.assert_close(level.kl(), monte_carlo, atol=0.05, rtol=0.02)


# ------------------------------------------------------------------ the contract, for every family


@pytest.mark.parametrize("family", FAMILIES)
def test_terms_are_named_per_level_and_sum_to_the_negative_elbo(family):
    torch.manual_seed(0)
    model = tiny(family)
    x = torch.rand(5, 1, 8, 8).round()
    out = model(x, labels_for(model, 5))
    levels = [name for name, _ in model.latent_levels]
    expected = ["recon", "kl"] if len(levels) == 1 else ["recon", *(f"kl/{name}" for name in levels)]
    assert list(out.terms) == expected
    assert all(t.shape == () for t in out.terms.values()) and out.elbo.shape == (5,)
    torch.testing.assert_close(-out.elbo.mean(), out.recon + out.kl)
    torch.testing.assert_close(out.kl, sum(v for k, v in out.terms.items() if k.startswith("kl")))
    torch.testing.assert_close(out.loss, out.recon + out.kl)  # beta = 1: the loss is the negative ELBO
    assert out.x_hat.shape == x.shape


@pytest.mark.parametrize("name", ["fashion-hvae40", "fashion-ladder", "fashion-cvae", "fashion-convhvae40"])
def test_zoo_family_steps_bounds_and_saves(name, tmp_path):
    torch.manual_seed(0)
    model = vaezoo.create(name)
    x = torch.rand(4, 1, 28, 28).round()
    y = labels_for(model, 4)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model(x, y).loss.backward()
    optimizer.step()
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
    with torch.no_grad():
        assert model.iwae(x, k=64, y=y).mean() >= model.elbo(x, samples=64, y=y).mean()
    folder = model.save_pretrained(tmp_path / name)
    assert json.loads((folder / "config.json").read_text())["family"] == model.family
    loaded = vaezoo.load(folder)
    assert type(loaded) is type(model)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))


@pytest.mark.parametrize("family", ["hvae", "ladder"])
def test_hierarchies_encode_every_level_and_sample_ancestrally(family):
    torch.manual_seed(0)
    model = tiny(family).eval()
    x = torch.rand(3, 1, 8, 8)
    posterior = model.encode(x)
    dims = model.level_dims()
    assert set(posterior.levels) == set(dims) and all(posterior[n].mu.shape == (3, d) for n, d in dims.items())
    torch.testing.assert_close(posterior.top.mu, model.encode_top(x).mu)
    z = model.sample_latents(6)
    assert {n: v.shape for n, v in z.items()} == {n: (6, d) for n, d in dims.items()}
    assert model.sample(6).shape == (6, 1, 8, 8) and model.reconstruct(x).shape == x.shape


def test_a_hierarchy_takes_a_vampprior_over_its_top_level():
    torch.manual_seed(0)
    model = tiny("hvae", prior={"name": "vamp", "pseudo_inputs": 7})
    assert model.prior.pseudo_inputs.shape == (7, 1, 8, 8)
    out = model(torch.rand(4, 1, 8, 8).round())
    assert torch.isfinite(out.loss) and out.terms["kl/z2"] > -1e-3  # Monte Carlo KL at the top level
    assert model.sample(3).shape == (3, 1, 8, 8)


# ------------------------------------------------------------------ labels


def test_labels_reach_the_encoder_the_decoder_and_the_prior():
    torch.manual_seed(0)
    model = tiny("cvae").eval()
    with torch.no_grad():
        for parameter in model.parameters():  # a trained-looking model: labels matter everywhere
            parameter.add_(0.3 * torch.randn_like(parameter))
    x = torch.rand(4, 1, 8, 8)
    a, b = torch.zeros(4, dtype=torch.long), torch.full((4,), 2)
    assert not torch.allclose(model.encode(x, a).mu, model.encode(x, b).mu)
    torch.manual_seed(1)
    samples_a = model.sample(4, y=0)
    torch.manual_seed(1)
    samples_b = model.sample(4, y=2)
    assert not torch.allclose(samples_a, samples_b)  # the same noise, another class: other images
    z = torch.randn(4, 4)
    assert not torch.allclose(model.decode(z, a).mean, model.decode(z, b).mean)
    torch.testing.assert_close(model.level_prior(b).mu, model.prior_means[b])
    assert model.sample(10, y=torch.arange(10) % 4).shape == (10, 1, 8, 8)
    with pytest.raises(UsageError, match="conditional: pass the class labels"):
        model(x)
    with pytest.raises(UsageError, match=r"labels must be in 0..3"):
        model.sample(2, y=7)
    with pytest.raises(UsageError, match="not conditional"):
        tiny("vae").sample(2, y=1)


def test_a_conditional_model_trains_on_the_batches_labels(tmp_path, monkeypatch):
    monkeypatch.setenv("CI", "1")
    seen = []
    model_class = vaezoo.ConditionalVAE
    original = model_class.encode

    def spy(self, x, y=None):
        seen.append(y)
        return original(self, x, y)

    monkeypatch.setattr(model_class, "encode", spy)
    model, metrics = vaezoo.train(tiny_config(family="cvae", epochs=1), out=tmp_path / "cvae", stream=io.StringIO())
    assert seen and all(y is not None and y.dtype == torch.long and 0 <= int(y.min()) and int(y.max()) < 4
                        for y in seen)
    assert metrics["train_term/kl"] > 0 and metrics["test_neg_elbo"] > 0
    report = evaluate(vaezoo.load(tmp_path / "cvae"), vaezoo.get_config(tiny_config(family="cvae")).data,
                      iw_samples=8, elbo_samples=2)
    assert "log p(x | y)" in report.protocol["conditioned_on"]


# ------------------------------------------------------------------ configs


@pytest.mark.parametrize("model, path, words", [
    ({"family": "hvea"}, "model.family", "unknown model family 'hvea'. Did you mean 'hvae'?"),
    ({"family": "hvae", "latent_dim": 40}, "model.latent_dim",
     "unknown field 'latent_dim' for model family 'hvae'. Did you mean 'latent_dims'?"),
    ({"family": "hvae", "latent_dims": [40]}, "model.latent_dims", "expected a list of 2 int > 0, got [40]"),
    ({"family": "ladder", "latent_dims": [8, 4, 2], "hidden": [64, 32]}, "model",
     "hidden has 2 entries but latent_dims has 3"),
    ({"family": "cvae", "latent_dim": 8, "encoder": "mlp", "decoder": "mlp"}, "model.num_classes",
     "required field is missing"),
    ({"family": "cvae", "latent_dim": 8, "num_classes": 3, "encoder": "mlp", "decoder": "mlp", "prior": "vamp"},
     "model.prior", "a class-conditional encoder does not have"),
])
def test_family_specific_bad_configs_name_the_field(model, path, words):
    with pytest.raises(ConfigError) as info:
        vaezoo.create({"model": {"input_shape": [1, 8, 8], **model}})
    lines = info.value.lines()
    assert any(line.startswith(f"{path}: ") and words in line for line in lines), lines


def test_list_and_info_show_families(capsys):
    assert main(["list", "--family", "hvae"]) == 0
    assert capsys.readouterr().out.split() == ["fashion-convhvae40", "fashion-convhvae40-vamp", "fashion-hvae40",
                                                "fashion-hvae40-ema", "fashion-hvae40-vamp", "fashion-hvae40-vamp-ft"]
    assert vaezoo.list_models(family=["ladder", "cvae"]) == ["fashion-cvae", "fashion-ladder"]
    assert main(["list", "--families"]) == 0
    listing = capsys.readouterr().out
    assert [line.split()[0] for line in listing.splitlines()] == sorted(
        FAMILIES + ["vqvae", "categorical", "ae", "svae", "pvae", "joint", "hamiltonian", "gamma", "vnd"])
    assert "``" not in listing and ":class:" not in listing  # plain text, not the docstrings' reST
    assert main(["info", "fashion-ladder"]) == 0
    rows = dict(line.split(None, 1) for line in capsys.readouterr().out.splitlines())
    assert rows["family"] == "ladder" and rows["latent"] == "64 / 32 / 16 (bottom to top)"
    assert main(["list", "--family", "nope"]) == 2


# ------------------------------------------------------------------ tools that need a family's latents


def test_tools_that_do_not_apply_say_so_in_one_line(capsys):
    hierarchy = tiny("hvae")
    x = torch.rand(2, 1, 8, 8)
    with pytest.raises(UsageError, match="the 'hvae' family has 2 latent levels"):
        hierarchy.refine(x, steps=2)
    with pytest.raises(UsageError, match="refinement .* is for one-level families"):
        evaluate(hierarchy, x, iw_samples=0, elbo_samples=1, refine_steps=2)
    with pytest.raises(UsageError, match="priors and tools that encode images alone"):
        vaezoo.fit_prior(tiny("cvae"), x)
    fitted = vaezoo.fit_prior(hierarchy, torch.rand(40, 1, 8, 8), components=3)
    assert fitted.config.prior.name == "mog" and fitted.prior.means.shape == (3, 3)  # over the top level, z2


@pytest.mark.parametrize("family", FAMILIES)
def test_evaluate_reports_every_level(family):
    torch.manual_seed(0)
    model = tiny(family)
    x = torch.rand(12, 1, 8, 8).round()
    data = x if not model.conditional else _labelled(x)
    report = evaluate(model, data, iw_samples=16, elbo_samples=2)
    levels = [name for name, _ in model.latent_levels]
    kl_names = ["kl"] if len(levels) == 1 else [f"kl/{n}" for n in levels]
    assert report["neg_elbo"] == pytest.approx(report["recon"] + sum(report[n] for n in kl_names), rel=1e-9)
    assert report["iwae_nll"] <= report["neg_elbo"] + 1e-6
    assert report.protocol["family"] == family and report.protocol["latent_levels"] == dict(model.latent_levels)
    if len(levels) > 1:
        assert sum(report[f"active_units/{n}"] for n in levels) == report["active_units"]


def _labelled(x):
    from vaezoo.data.splits import DataSplits

    images = (x * 255).to(torch.uint8)
    labels = torch.arange(x.shape[0]) % 4
    return DataSplits(train=images, val=images[:0], test=images, train_labels=labels, test_labels=labels,
                      source="labelled tensors")


def test_family_pictures_through_the_cli(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CI", "1")
    for family in ("hvae", "cvae"):
        vaezoo.train(tiny_config(family=family, max_steps=2), out=tmp_path / family, stream=io.StringIO())
    hvae, cvae = tmp_path / "hvae", tmp_path / "cvae"
    assert main(["traverse", str(hvae), "--level", "z2", "--dims", "0-2", "-o", str(tmp_path / "z2.png")]) == 0
    assert "level z2" in capsys.readouterr().out
    assert main(["traverse", str(hvae), "--level", "z9", "-o", str(tmp_path / "x.png")]) == 2
    assert "latent level 'z9' is not one of this hvae model's levels: z1, z2" in capsys.readouterr().err
    assert main(["sample", str(cvae), "--class", "3", "-n", "5", "-o", str(tmp_path / "three.png")]) == 0
    assert main(["sample", str(cvae), "-n", "8", "-o", str(tmp_path / "grid.png")]) == 0
    assert "one row per class" in capsys.readouterr().out
    assert main(["sample", str(hvae), "--class", "1", "-o", str(tmp_path / "no.png")]) == 2
    assert "--class needs a conditional model" in capsys.readouterr().err
    for picture in ("z2.png", "three.png", "grid.png"):
        assert (tmp_path / picture).read_bytes()[:4] == b"\x89PNG"
    # one class's samples fill a square grid (3 x 3 tiles for 9), not a strip; all classes: a row each
    assert main(["sample", str(cvae), "--class", "3", "-n", "9", "-o", str(tmp_path / "nine.png")]) == 0
    tile = 8 + 2  # the tiny images and the grid's padding
    assert Image.open(tmp_path / "nine.png").size == (3 * tile + 2, 3 * tile + 2)
    assert Image.open(tmp_path / "grid.png").size == (2 * tile + 2, 4 * tile + 2)  # 4 classes, 8 // 4 each
    assert main(["embed", str(hvae), "--level", "z1", "-o", str(tmp_path / "map.png")]) == 0
    assert main(["reconstruct", str(cvae), "-n", "4", "-o", str(tmp_path / "recon.png")]) == 0
    assert main(["interpolate", str(cvae), "--pairs", "2", "-o", str(tmp_path / "interp.png")]) == 0
