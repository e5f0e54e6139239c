"""Scoring in shards: ``start``/``limit`` shards give one run's numbers, ``merge_shards`` (``vaezoo
merge-evals``) pools their means and standard errors into the whole set's, and refuses shards that
are not one evaluation over consecutive ranges."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

import vaezoo
from vaezoo.errors import UsageError
from vaezoo.evaluation.report import EvalReport
from vaezoo.evaluation.shards import merge_shards

from _tiny_training import TINY_FAMILIES

SETTINGS = dict(iw_samples=16, elbo_samples=3, progress=False, seed=4)


def _model():
    torch.manual_seed(0)
    return vaezoo.create({"model": {"family": "vae", "input_shape": [1, 8, 8], **TINY_FAMILIES["vae"]}})


def _shards(model, x, ranges=((0, 10, 3), (10, 7, 4), (17, 6, 6)), **settings):
    return [vaezoo.evaluate(model, x, start=s, limit=n, batch_size=b, **{**SETTINGS, **settings}) for s, n, b in ranges]


def test_shards_scored_apart_merge_into_one_runs_report():
    model = _model()
    x = torch.rand(23, 1, 8, 8).round()
    whole = vaezoo.evaluate(model, x, batch_size=5, **SETTINGS)
    shards = _shards(model, x)
    assert shards[1].protocol["first_example"] == 10 and shards[2].protocol["examples"] == 6
    merged, left_out = merge_shards(list(reversed(shards)))  # in any order
    assert left_out == ["active_units"]  # needs every posterior mean at once
    assert set(merged.metrics) == set(whole.metrics) - {"active_units"}
    for name, m in merged.metrics.items():
        assert m.value == pytest.approx(whole[name], rel=1e-7), name
        assert m.stderr == pytest.approx(whole.metrics[name].stderr, rel=1e-6), name
    assert merged.protocol["examples"] == 23 and "first_example" not in merged.protocol
    for level, values in merged.kl_per_dim.items():
        assert values == pytest.approx(whole.kl_per_dim[level], rel=1e-6)
    with pytest.raises(ValueError, match=r"start \(--start\) must be the index of a test image, 0 to 22"):
        vaezoo.evaluate(model, x, start=23, **SETTINGS)


def test_merge_refuses_gaps_and_other_evaluations():
    model = _model()
    x = torch.rand(12, 1, 8, 8).round()
    first, second = _shards(model, x, ((0, 5, 5), (5, 7, 7)))
    with pytest.raises(UsageError, match="starts at image 5, the next expected at 0"):
        merge_shards([second])
    gap = _shards(model, x, ((6, 6, 6),))[0]
    with pytest.raises(UsageError, match="--start 5"):
        merge_shards([first, gap])
    other_seed = _shards(model, x, ((5, 7, 7),), seed=5)[0]
    with pytest.raises(UsageError, match="differs in seed"):
        merge_shards([first, other_seed])


def test_the_cli_merges_shard_files(tmp_path):
    model = _model()
    x = torch.rand(9, 1, 8, 8).round()
    whole = vaezoo.evaluate(model, x, batch_size=9, **SETTINGS)
    paths = []
    for i, shard in enumerate(_shards(model, x, ((0, 4, 4), (4, 5, 5)))):
        paths.append(tmp_path / f"shard{i}.json")
        paths[-1].write_text(shard.to_json())
    out = tmp_path / "merged" / "iwae.json"
    done = subprocess.run([sys.executable, "-m", "vaezoo", "merge-evals", *map(str, paths), "-o", str(out)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "active_units" in done.stderr
    merged = EvalReport.from_dict(json.loads(out.read_text()))
    assert merged["iwae_nll"] == pytest.approx(whole["iwae_nll"], rel=1e-7)
    bad = subprocess.run([sys.executable, "-m", "vaezoo", "merge-evals", str(paths[1]), "-o", str(out)],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "--start 0" in bad.stderr
