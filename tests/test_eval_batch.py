"""trainer.eval_batch_size: auto — the validation and test passes' batch size timed once per model and
machine (cached), kept for the whole run, resumes included, and never a change to the numbers' seed."""

from __future__ import annotations

import io
import json

import pytest
import torch

import vaezoo
from vaezoo.fastpath import calibration
from vaezoo.layout.checkpoint import load_checkpoint
from vaezoo.training import eval_batch, loop
from vaezoo.training.eval_batch import CANDIDATES, choose_eval_batch_size

from _tiny_training import TINY_DATASET, register, tiny_config

register()


class FakeClock:
    """perf_counter for the chooser: a forward of n images costs ``seconds_per_image[n] * n``."""

    def __init__(self, seconds_per_image):
        self.now, self.cost = 0.0, seconds_per_image

    def perf_counter(self) -> float:
        return self.now

    def forward(self, n: int) -> None:
        self.now += self.cost[n] * n


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VAEZOO_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "scoring-shapes.json"


def test_the_fastest_size_is_chosen_once_and_cached(cache, monkeypatch):
    # 64 images per batch is the fastest; 256 and beyond are two slower sizes in a row after it
    clock = FakeClock({32: 2e-3, 64: 1e-3, 128: 1.5e-3, 256: 2e-3, 512: 3e-3, 1024: 3e-3})
    monkeypatch.setattr(eval_batch, "time", clock)
    sizes = []

    def forward(n):
        sizes.append(n)
        clock.forward(n)

    lines = []
    assert choose_eval_batch_size("key-a", 10_000, forward, device=torch.device("cpu"), say=lines.append) == 64
    assert set(sizes) == {32, 64, 128, 256}, "timing stops once two larger sizes in a row are slower"
    record = json.loads(cache.read_text())["key-a"]
    assert record["images_per_pass"] == 64 and set(record["images_per_s"]) == {"32", "64", "128", "256"}
    assert "64 images per pass" in lines[-1]

    def must_not_time(n):
        raise AssertionError("the cached choice is used")

    assert choose_eval_batch_size("key-a", 10_000, must_not_time, device=torch.device("cpu")) == 64
    # a split that fits in one batch of the largest candidate stays one batch: nothing is timed
    assert choose_eval_batch_size("key-b", CANDIDATES[-1], must_not_time, device=torch.device("cpu")) == CANDIDATES[-1]
    assert "key-b" not in json.loads(cache.read_text())


def _config(**trainer):
    config = tiny_config(**{"eval_batch_size": "auto", **trainer})
    # 1,100 validation images: more than one batch of the largest candidate, so auto times the sizes
    config["data"] = {"dataset": {"name": TINY_DATASET, "n_train": 1300}, "val_size": 1100}
    return config


def test_a_run_times_its_evaluation_batch_once_and_keeps_it_on_resume(tmp_path, cache, monkeypatch):
    used = []
    real_batches = loop.eval_batches

    def recording(images, batch_size, **kwargs):
        used.append(batch_size)
        return real_batches(images, batch_size, **kwargs)

    monkeypatch.setattr(loop, "eval_batches", recording)
    out = tmp_path / "run"
    stream = io.StringIO()
    _, first = vaezoo.train(_config(epochs=1, test="never"), out=out, stream=stream)
    chosen = load_checkpoint(out).state["progress"]["eval_batch_size"]
    assert chosen in CANDIDATES and set(used[-1:]) == {chosen}
    assert "timing evaluation batch sizes" in stream.getvalue()
    (record,) = json.loads(cache.read_text()).values()
    assert record["images_per_pass"] == chosen

    # the resume keeps the run's size even when this machine's cache says otherwise, and times nothing
    cache.write_text(json.dumps({key: {**value, "images_per_pass": 32 if chosen != 32 else 64}
                                 for key, value in json.loads(cache.read_text()).items()}))
    monkeypatch.setattr(calibration, "_read", lambda path: pytest.fail("a resumed run does not look again"))
    used.clear()
    vaezoo.train(overrides={"trainer.epochs": 2}, resume=out, stream=io.StringIO())
    assert used and set(used) == {chosen}
    assert load_checkpoint(out).state["progress"]["eval_batch_size"] == chosen

    # the timing draws noise, the validation's stream is seeded after it: a second run of the same
    # recipe, whose size comes from the cache untimed, scores the same validation -ELBO
    monkeypatch.undo()
    monkeypatch.setenv("VAEZOO_CACHE", str(cache.parent))
    cache.write_text(json.dumps({key: {**value, "images_per_pass": chosen}
                                 for key, value in json.loads(cache.read_text()).items()}))
    stream = io.StringIO()
    _, again = vaezoo.train(_config(epochs=1, test="never"), out=tmp_path / "again", stream=stream)
    assert "timing evaluation batch sizes" not in stream.getvalue()
    assert isinstance(first["val_neg_elbo"], float) and again["val_neg_elbo"] == first["val_neg_elbo"]


def test_a_fixed_size_is_used_as_given(tmp_path, cache, monkeypatch):
    monkeypatch.setattr(loop, "choose_eval_batch_size", lambda *a, **k: pytest.fail("a fixed size is not timed"))
    vaezoo.train(_config(epochs=1, test="never", eval_batch_size=100), out=tmp_path / "run", stream=io.StringIO())
    assert not cache.exists()


def test_on_a_gpu_the_clock_is_read_after_the_forward_has_run(cache, monkeypatch):
    # a GPU forward returns before it runs: the timing waits for the device at each reading
    clock = FakeClock({size: 1e-3 for size in CANDIDATES})
    monkeypatch.setattr(eval_batch, "time", clock)
    monkeypatch.setattr(eval_batch, "describe_device", lambda device: "a GPU")
    queued = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device: [clock.forward(n) for n in queued] and queued.clear())
    chosen = choose_eval_batch_size("key-gpu", 10_000, queued.append, device=torch.device("cuda", 0))
    record = json.loads(cache.read_text())["key-gpu"]
    # every size ran at 1,000 images/s once its queued work was counted (without the waits: infinitely fast)
    assert chosen in CANDIDATES and all(abs(rate - 1000) <= 1 for rate in record["images_per_s"].values())
