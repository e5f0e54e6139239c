"""Scoring in shards: ``start``/``limit`` shards give one run's numbers, and the rescore script
pools their means and standard errors into the whole set's."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

import vaezoo

from _tiny_training import TINY_FAMILIES

_spec = importlib.util.spec_from_file_location("rescore", Path(__file__).parents[1] / "benchmarks" / "rescore.py")
rescore = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rescore)


def test_shards_scored_apart_equal_one_run_and_pool_to_its_standard_error():
    torch.manual_seed(0)
    model = vaezoo.create({"model": {"family": "vae", "input_shape": [1, 8, 8], **TINY_FAMILIES["vae"]}})
    x = torch.rand(23, 1, 8, 8).round()
    settings = dict(iw_samples=16, elbo_samples=3, progress=False, seed=4)
    whole = vaezoo.evaluate(model, x, batch_size=5, **settings)
    shards = [vaezoo.evaluate(model, x, start=s, limit=n, batch_size=b, **settings)
              for s, n, b in ((0, 10, 3), (10, 7, 4), (17, 6, 6))]
    assert shards[1].protocol["first_example"] == 10 and shards[2].protocol["examples"] == 6
    for name in ("neg_elbo", "iwae_nll"):
        parts = [(r.protocol["examples"], r[name], r.metrics[name].stderr) for r in shards]
        mean, se = rescore.pooled(parts)
        assert mean == pytest.approx(whole[name], rel=1e-7)
        assert se == pytest.approx(whole.metrics[name].stderr, rel=1e-6)
    with pytest.raises(ValueError, match=r"start \(--start\) must be the index of a test image, 0 to 22"):
        vaezoo.evaluate(model, x, start=23, **settings)
