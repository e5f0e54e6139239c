"""The families with other latents (svae, pvae, joint, hamiltonian) through the tools every model
meets: the browser explorer's session, reconstruction and the evaluation's bounds."""

from __future__ import annotations

import math

import pytest
import torch

import vaezoo
from vaezoo.explore.session import Explorer

TINY = {"input_shape": [1, 28, 28], "encoder": {"name": "mlp", "hidden": [32]}, "decoder": {"name": "mlp", "hidden": [32]}}
FAMILIES = [{"family": "svae", "latent_dim": 4}, {"family": "pvae", "latent_dim": 3},
            {"family": "joint", "latent_dim": 3, "latents": 1, "categories": 4},
            {"family": "hamiltonian", "latent_dim": 3}]


@pytest.mark.parametrize("config", FAMILIES, ids=[c["family"] for c in FAMILIES])
def test_the_explorer_reconstruction_and_the_bounds_work_for_each(config):
    torch.manual_seed(0)
    model = vaezoo.create({**TINY, **config}).eval()
    test = (torch.rand(12, 1, 28, 28) * 255).to(torch.uint8)
    explorer = Explorer(model, config["family"], test)
    assert {level["name"] for level in explorer.card()["levels"]} == set(model.level_dims())
    assert explorer.samples({"seed": 0, "n": 4})["image"].startswith("data:image/png")
    state = explorer.base({"source": "test", "index": 1})
    assert explorer.decode(state)["image"].startswith("data:image/png")
    assert explorer.interpolate({"a": {"index": 0}, "b": {"index": 1}, "steps": 3})["image"].startswith("data:image")
    x = test[:4].float() / 255
    assert model.reconstruct(x).shape == x.shape
    report = vaezoo.evaluate(model, x, iw_samples=20, elbo_samples=2, progress=False)
    assert math.isfinite(report["iwae_nll"]) and report["iwae_nll"] <= report["neg_elbo"] + 1.0
