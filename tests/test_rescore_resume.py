"""``benchmarks/rescore.py --keep``: a scoring of many hours in pieces that survive the process; a
rerun scores only the missing pieces and gives the same numbers, and a folder of another scoring is
refused before anything is scored."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUICK = ["fashion-vae40-ema", "--limit", "4", "--iw-samples", "4", "--elbo-samples", "1", "--batch-size", "2"]


def _rescore(*argv):
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / "rescore.py"), *QUICK, *map(str, argv)],
                          capture_output=True, text=True, timeout=300)


def test_kept_pieces_resume_and_refuse_another_scoring(tmp_path):
    keep = tmp_path / "kept"
    first = _rescore("--shards", "2", "--pieces", "2", "--keep", keep, "-o", tmp_path / "first.json")
    assert first.returncode == 0, first.stderr
    pieces = sorted(p.name for p in (keep / "pieces").glob("piece-*.json"))
    assert pieces == ["piece-0-2.json", "piece-2-4.json"]
    assert json.loads((keep / "settings.json").read_text())["seed"] == 0

    kept = keep / "pieces" / "piece-0-2.json"
    kept_bytes, kept_time = kept.read_bytes(), kept.stat().st_mtime_ns
    (keep / "pieces" / "piece-2-4.json").unlink()
    again = _rescore("--shards", "1", "--pieces", "2", "--keep", keep, "-o", tmp_path / "again.json")
    assert again.returncode == 0, again.stderr
    assert "1 of 2 pieces already in" in again.stdout
    assert kept.read_bytes() == kept_bytes and kept.stat().st_mtime_ns == kept_time  # not scored again
    metrics = [json.loads((tmp_path / f"{run}.json").read_text())["metrics"] for run in ("first", "again")]
    assert metrics[0]["iwae_nll"]["value"] == metrics[1]["iwae_nll"]["value"]
    assert metrics[0]["iwae_nll"]["stderr"] == metrics[1]["iwae_nll"]["stderr"]

    other = _rescore("--shards", "1", "--pieces", "2", "--seed", "1", "--keep", keep)
    assert other.returncode != 0 and "Traceback" not in other.stderr
    assert "holds pieces of another scoring (seed 0; this run: 1)" in other.stderr
    assert sorted(p.name for p in (keep / "pieces").glob("piece-*.json")) == pieces
