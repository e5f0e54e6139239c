"""A new user's second hour: progress soon, Ctrl-C in one line, a run that remembers its data,
the resolved config, short runs drawn per step, and the errors that are the product's own."""

from __future__ import annotations

import argparse
import io
import json
import re

import pytest
import torch
import yaml

import vaezoo
import vaezoo.cli.evaluate as eval_commands
from vaezoo.errors import UsageError
from vaezoo.cli import main
from vaezoo.cli.evaluate import data_config
from vaezoo.evaluation.evaluate import ramped_batches
from vaezoo import progress as passes
from vaezoo.evaluation.probe import posterior_features

from _tiny_training import register, tiny_config


@pytest.fixture(autouse=True)
def _plain_progress(monkeypatch):
    monkeypatch.setenv("CI", "1")  # progress as plain lines, as a log file gets it
    register()


def test_a_code_prior_stage_reports_after_its_first_step(tmp_path):
    """`fit-prior`'s stage says its rate and ETA after one step, not after `log_every` (50) steps."""
    vaezoo.train(tiny_config("vq", family="vqvae", epochs=1), out=tmp_path / "vq", stream=io.StringIO())
    stream = io.StringIO()
    vaezoo.train_code_prior(tmp_path / "vq", {"name": "pixelcnn", "channels": 8, "layers": 2}, out=tmp_path / "out",
                            epochs=1, batch_size=16, stream=stream)
    lines = stream.getvalue().splitlines()
    first = next(i for i, line in enumerate(lines) if " step " in line)
    assert "step 1/12 (global 1)" in lines[first] and " eta " in lines[first] and "img/s" in lines[first]
    assert lines[first - 1].startswith(("training ", "note: "))  # nothing else came before it


def test_a_slow_scoring_pass_shows_its_rate_and_eta(tmp_path, monkeypatch):
    config = tiny_config(epochs=1, eval_batch_size=16)
    quiet = io.StringIO()
    vaezoo.train(config, out=tmp_path / "fast", stream=quiet)
    assert "validation: first" not in quiet.getvalue()  # a pass of a second says nothing
    monkeypatch.setattr(passes, "SLOW_PASS_SECONDS", 0.0)  # every pass counts as slow
    shown = io.StringIO()
    vaezoo.train(config, out=tmp_path / "slow", stream=shown)
    text = shown.getvalue()
    assert re.search(r"  validation: first 16 of 64 images in \d+ s: about \d+ s in all", text), text
    assert re.search(r"  test: first 16 of 64 images", text) and "64/64 images" in text
    assert "writing the run folder: weights, model card, 64 samples" in text


def test_evaluation_batches_ramp_up_and_cover_every_image_once():
    batches = list(ramped_batches(100, 32))
    assert [size for _, size in batches] == [1, 2, 4, 8, 16, 32, 32, 5]
    assert [first for first, _ in batches] == [0, 1, 3, 7, 15, 31, 63, 95]
    assert list(ramped_batches(1, 64)) == [(0, 1)]


def test_eval_at_its_defaults_says_its_cost_and_the_flags_that_shorten_it(tmp_path, capsys, monkeypatch):
    folder = vaezoo.create(tiny_config()).save_pretrained(tmp_path / "m", experiment=vaezoo.get_config(tiny_config()))
    monkeypatch.setattr(eval_commands, "evaluate", lambda *args, **kwargs: (_ for _ in ()).throw(KeyboardInterrupt))
    assert main(["eval", str(folder)]) == 130
    err = capsys.readouterr().err.splitlines()
    assert "k=5000" in err[0] and "--limit N" in err[0] and "--iw-samples 0" in err[0]
    assert err[1:] == ["stopped by Ctrl-C: nothing was written (a command writes its files when it finishes)"]
    assert main(["eval", str(folder), "--limit", "3"]) == 130  # a short evaluation needs no warning
    assert not capsys.readouterr().err.startswith("scoring")


def test_a_run_remembers_the_data_folder_it_was_given(tmp_path):
    data = tmp_path / "my data"
    data.mkdir()
    vaezoo.train(tiny_config(epochs=1), out=tmp_path / "run", data_root=str(data), stream=io.StringIO())
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["data"]["root"] == str(data.resolve())
    args = argparse.Namespace(ref=str(tmp_path / "run"), dataset=None, binarize=None)
    assert data_config(args).root == str(data.resolve())  # what `vaezoo eval RUN` reads without --data


def test_info_resolved_prints_a_config_that_trains_as_it_is(tmp_path, capsys):
    assert main(["info", "fashion-hvae40", "--resolved", "--set", "trainer.epochs=3"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("# fashion-hvae40 --set trainer.epochs=3, validated, with every default")
    resolved = yaml.safe_load(text)
    assert resolved["trainer"]["epochs"] == 3 and resolved["trainer"]["log_every"] == 50  # a default, written out
    assert resolved["model"]["encoder_z1"]["head"] == "gated"
    path = tmp_path / "resolved.yaml"
    path.write_text(text)
    assert vaezoo.get_config(str(path)) == vaezoo.get_config("fashion-hvae40", {"trainer.epochs": 3})


def test_a_short_run_draws_its_loss_per_logged_step(tmp_path, monkeypatch):
    import vaezoo.viz.curves as curves

    drawn = {}
    real = curves._plot_per_step
    monkeypatch.setattr(curves, "_plot_per_step",
                        lambda records, steps, path, title: drawn.update(steps=list(steps)) or real(records, steps,
                                                                                                     path, title))
    vaezoo.train(tiny_config(epochs=1, log_every=2), out=tmp_path / "short", stream=io.StringIO())
    assert [step for step, _ in drawn["steps"]] == [1, 2, 4, 6]  # after the first step, then every log_every
    assert all(set(values) >= {"loss", "recon", "kl"} for _, values in drawn["steps"])
    assert (tmp_path / "short" / "loss.png").stat().st_size > 0
    drawn.clear()
    vaezoo.train(tiny_config(epochs=3, log_every=2), out=tmp_path / "long", stream=io.StringIO())
    assert not drawn  # three epochs and more: per epoch


def test_an_unknown_family_is_named_in_plain_english():
    with pytest.raises(vaezoo.ConfigError, match="Known model families: ae, categorical, cvae"):
        vaezoo.create({"model": {"family": "nosuch", "input_shape": [1, 8, 8]}})


def test_encode_refuses_nan_pixels_as_the_forward_pass_does():
    model = vaezoo.create(tiny_config())
    x = torch.rand(2, 1, 8, 8)
    x[1, 0, 3, 3] = float("nan")
    for method in (model, model.encode):
        with pytest.raises(UsageError, match="NaN or infinite pixel values"):
            method(x)


def test_the_trial_in_train_help_gives_recognisable_samples(tmp_path, fashion_mnist_dir, capsys):
    """The trial that `vaezoo train --help` prints, run as printed: its samples span the classes (a
    20-step trial's cover 0.23 of them, class coverage 0.74 after these 400 steps) and its
    Fréchet distance in fashion-v1 features is about half the 20-step trial's (46 against 89)."""
    from vaezoo.cli import build_parser

    parser = build_parser()
    train_help = parser._subparsers._group_actions[0].choices["train"].format_help()
    trial = next(line.strip() for line in train_help.splitlines() if "--out runs/trial" in line)
    argv = trial.replace("runs/trial", str(tmp_path / "trial")).split()
    assert argv[:2] == ["vaezoo", "train"] and main(argv[1:]) == 0
    assert "note:" not in capsys.readouterr().err  # nothing in the recipe makes this trial misleading
    report = vaezoo.sample_quality(vaezoo.load(tmp_path / "trial"), "fashion-mnist", samples=1000,
                                   reconstructions=False, progress=False)
    assert report["class-coverage-fashion-v1"] > 0.5 and report["fd-fashion-v1"] < 70, report.format_table()


def test_the_readme_says_next_to_its_commands_how_to_install_without_cuda():
    from pathlib import Path

    lines = (Path(__file__).resolve().parents[1] / "README.md").read_text().splitlines()
    tests_at = lines.index(next(line for line in lines if line.startswith("# set up and run the tests")))
    assert lines[tests_at + 1].startswith("python3 -m venv .venv")  # what .ci/run takes, unchanged
    assert lines[tests_at + 2].startswith("# no GPU?") and "download.pytorch.org/whl/cpu" in lines[tests_at + 2]


def test_the_own_images_example_trains_on_a_folder_and_the_run_finds_it_again(tmp_path, capsys):
    """examples/my-images.yaml as its comment says to use it, shrunk to a few steps on 16 x 16 pictures:
    train with --data, then evaluate and sample the run with no --data at all."""
    from pathlib import Path

    from PIL import Image

    pictures = tmp_path / "pictures"
    pictures.mkdir()
    gen = torch.Generator().manual_seed(0)
    for i in range(30):
        pixels = (torch.rand(8, 8, 3, generator=gen) * 255).to(torch.uint8).numpy()
        Image.fromarray(pixels).resize((20, 20)).save(pictures / f"{i:02d}.png")  # resized to 16 x 16 on load
    example = Path(__file__).resolve().parents[1] / "examples" / "my-images.yaml"
    run = tmp_path / "mine"
    shrink = ["model.input_shape=[3,16,16]", "data.dataset.size=[16,16]", "data.val_size=4", "trainer.batch_size=8",
              "trainer.max_steps=3", "trainer.epochs=1", "trainer.kl_warmup_epochs=0",
              "trainer.scheduler.warmup_steps=0"]
    argv = ["train", str(example), "--data", str(pictures), "--out", str(run)]
    assert main([*argv, *(arg for item in shrink for arg in ("--set", item))]) == 0
    assert main(["eval", str(run), "--limit", "3", "--iw-samples", "2", "--json", "-q"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["protocol"]["examples"] == 3 and report["protocol"]["dataset"] == "image-folder"
    assert main(["sample", str(run), "-n", "4", "-o", str(tmp_path / "mine.png")]) == 0


def test_training_progress_can_be_turned_off_from_python(tmp_path):
    stream = io.StringIO()
    vaezoo.train(tiny_config(epochs=1), out=tmp_path / "quiet", stream=stream, progress=False)
    assert stream.getvalue() == "" and (tmp_path / "quiet" / "model.safetensors").is_file()


def test_the_encoding_passes_of_the_probe_and_the_fitted_prior_report_progress():
    model = vaezoo.create(tiny_config())
    images = torch.rand(40, 1, 8, 8)
    seen = []
    posterior_features(model, images, batch_size=16, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(16, 40), (32, 40), (40, 40)]
    seen.clear()
    vaezoo.fit_prior(model, images, components=2, batch_size=16, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(16, 40), (32, 40), (40, 40)]
