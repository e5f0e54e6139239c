"""Hardening, round two: the surfaces added since the first round, tried as a careless or hostile
user would. Each test is named by its class: paths that escape, bombs and malformed files, locks,
values taken on trust, settings that do nothing, tracebacks left on the command line."""

from __future__ import annotations

import gzip
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file

import vaezoo
from vaezoo.cli import main
from vaezoo.data import ImageData
from vaezoo.data.generic import image_folder, tensors
from vaezoo.data.idx import read_idx
from vaezoo.data.releases import _partition, _read_svhn, read_label_pixel_csv
from vaezoo import resources
from vaezoo.errors import CheckpointError, ConfigError, DataError, HubError, UsageError
from vaezoo.layout.lock import reading_run_folder, run_folder_lock
from vaezoo.maintenance.publish import add_metrics, add_rescoring, publish_run

from _tiny_training import CrashAt, register, tiny_config

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _plain(monkeypatch):
    monkeypatch.setenv("CI", "1")
    register()


def _png(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode=mode).save(path)
    return path


def _run(tmp_path: Path, name: str = "run") -> Path:
    """A small run folder as publishing reads it (config.json with the recipe, weights)."""
    experiment = vaezoo.get_config("fashion-mlp16", {"trainer.epochs": 1})
    training = {"epochs": 1, "wall_time_s": 1.0, "device": "cpu"}
    return vaezoo.create("fashion-mlp16").save_pretrained(tmp_path / name, experiment=experiment, training=training)


REPORT = {"protocol": {"model": "tiny", "dataset": "fashion-mnist", "split": "test", "examples": 10000,
                       "binarization": "none (grayscale in [0, 1])", "likelihood": "bernoulli", "elbo_samples": 10,
                       "iw_samples": 5000, "seed": 0},
          "metrics": {"neg_elbo": {"value": 250.5, "unit": "nats", "label": "-ELBO", "stderr": 0.4},
                      "iwae_nll": {"value": 241.25, "unit": "nats", "label": "NLL", "stderr": 0.4}}}


# ------------------------------------------------------------------ class 1: paths that escape their folder


@pytest.mark.parametrize("name", ["../escaped", "/tmp/abs", "a/b", ".hidden", "Upper", "", "x\\..\\y"])
def test_paths_a_published_name_is_refused_before_anything_is_written(tmp_path, name):
    registry = tmp_path / "deep" / "registry"
    with pytest.raises(HubError, match="published name .*expected lowercase letters"):
        publish_run(_run(tmp_path), name, "alice/x", config="fashion-mlp16", metrics=REPORT, registry=registry)
    assert not registry.exists() and not (tmp_path / "deep" / "escaped.json").exists()


@pytest.mark.parametrize("line", ["../../x.png 0", "/etc/passwd 0", "sub/x.png 2", ".. 0"])
def test_paths_a_celeba_partition_naming_a_file_outside_its_folder_is_refused(tmp_path, line):
    partition = tmp_path / "list_eval_partition.txt"
    partition.write_text(f"000001.jpg 0\n{line}\n")
    with pytest.raises(DataError, match=r"line 2: .* is not a file name inside img_align_celeba/"):
        _partition(partition)


def test_paths_an_image_folder_does_not_follow_a_link_loop_or_a_link_out(tmp_path):
    folder = tmp_path / "pictures"
    for cls in ("cats", "dogs"):
        for i in range(3):
            _png(folder / cls / f"{i}.png", np.full((8, 8), 40 * i, dtype=np.uint8))
    (folder / "loop").symlink_to(folder, target_is_directory=True)  # would be a third class: every image again
    outside = _png(tmp_path / "secret.png", np.zeros((8, 8), dtype=np.uint8))
    (folder / "cats" / "out.png").symlink_to(outside)
    data = image_folder(None, path=str(folder), test_fraction=0.5)
    assert data.classes == ["cats", "dogs"]
    assert data.train_images.shape[0] + data.test_images.shape[0] == 6


def test_paths_a_repo_id_with_dot_dot_is_one_line_before_any_request(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens: the id must be refused first
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    assert main(["push", str(_run(tmp_path)), "alice/../x"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'alice/../x' is not a valid Hub repository id" in err[0]


# ------------------------------------------------------------------ class 2: bombs and malformed files


def _idx(shape: tuple[int, ...], body: bytes) -> bytes:
    return bytes([0, 0, 0x08, len(shape)]) + b"".join(d.to_bytes(4, "big") for d in shape) + body


def test_bombs_a_gz_that_inflates_past_its_header_stops_at_the_header(tmp_path):
    path = tmp_path / "bomb-images-idx3-ubyte.gz"
    with gzip.open(path, "wb", compresslevel=9) as f:
        f.write(_idx((10, 28, 28), bytes(7840)))
        for _ in range(64):  # 64 MiB of zeros more, a 64 KiB file: only one byte past the header is read
            f.write(bytes(1 << 20))
    assert path.stat().st_size < 200_000
    with pytest.raises(DataError, match=r"longer than its header says: the header declares \(10, 28, 28\)"):
        read_idx(path)


def test_bombs_a_header_claiming_terabytes_is_refused_before_reading(tmp_path):
    path = tmp_path / "huge-idx3-ubyte"
    path.write_bytes(_idx((2**31, 2**20, 2), b""))
    with pytest.raises(DataError, match="declares .* more than 4 GiB"):
        read_idx(path)


@pytest.mark.parametrize("content, message", [
    (b"not gzip at all, just text", "cannot read .*gzip"),
    (gzip.compress(_idx((4, 2, 2), bytes(10))), "truncated"),
    (gzip.compress(b"\x01\x02\x03\x04"), "not an IDX file"),
])
def test_bombs_malformed_idx_files_are_one_line_naming_the_file(tmp_path, content, message):
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_bombs_an_image_count_that_does_not_match_the_label_count(tmp_path):
    with pytest.raises(DataError, match=r"the train labels are \(9,\) for 10 images: one label per image"):
        ImageData(torch.zeros(10, 1, 4, 4, dtype=torch.uint8), torch.zeros(2, 1, 4, 4, dtype=torch.uint8),
                  torch.zeros(9, dtype=torch.long), torch.zeros(2, dtype=torch.long), source="mine")


def test_bombs_a_decompression_bomb_png_is_refused_not_decoded(tmp_path, monkeypatch):
    from PIL import Image

    _png(tmp_path / "pictures" / "big.png", np.zeros((64, 64), dtype=np.uint8))
    _png(tmp_path / "pictures" / "small.png", np.zeros((8, 8), dtype=np.uint8))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 64 x 64 is then a bomb (more than twice that)
    with pytest.raises(DataError, match=r"cannot decode image .*big.png: .*decompression bomb"):
        image_folder(None, path=str(tmp_path / "pictures"), size=8)


def test_bombs_a_compressed_csv_given_as_csv_is_one_line(tmp_path):
    path = tmp_path / "fashion-mnist_train.csv"
    path.write_bytes(gzip.compress(b"label,pixel1\n1,0\n"))
    with pytest.raises(DataError, match="not a text CSV .*decompress it first"):
        read_label_pixel_csv(path)


# ------------------------------------------------------------------ class 3: one lock for every writer


def test_locks_publish_waits_for_a_training_that_holds_the_run(tmp_path):
    run = _run(tmp_path)
    with run_folder_lock(run, "vaezoo train"):
        with pytest.raises(UsageError, match=r"vaezoo publish: the run folder .* is being written \(vaezoo train"):
            publish_run(run, "tiny", "alice/tiny", config="fashion-mlp16", metrics=REPORT, registry=tmp_path / "reg")
    assert not (tmp_path / "reg").exists()
    publish_run(run, "tiny", "alice/tiny", config="fashion-mlp16", metrics=REPORT, registry=tmp_path / "reg")


def test_locks_push_with_the_training_state_waits_for_the_training(tmp_path):
    from vaezoo.layout.client import push_folder

    run = _run(tmp_path)
    with run_folder_lock(run, "vaezoo train"):
        with pytest.raises(UsageError, match="vaezoo push: the run folder .* is being written"):
            push_folder(run, "alice/tiny", include_training=True)


def test_locks_readers_share_and_a_folder_never_trained_is_read_as_it_is(tmp_path):
    run = _run(tmp_path)
    with reading_run_folder(run), reading_run_folder(run):  # no lock file: a saved model, nothing to wait for
        pass
    with run_folder_lock(run):
        pass  # now it has one
    with reading_run_folder(run), reading_run_folder(run):  # two readers at once
        with pytest.raises(UsageError, match="another command holds the run folder"):
            with run_folder_lock(run):
                pass


def test_locks_fit_prior_does_not_replace_another_runs_model(tmp_path, capsys):
    path = tmp_path / "vae.yaml"
    path.write_text(yaml.safe_dump(tiny_config(epochs=1)))
    assert main(["train", str(path), "--out", str(tmp_path / "a")]) == 0
    assert main(["train", str(path), "--out", str(tmp_path / "b")]) == 0
    before = (tmp_path / "b" / "model.safetensors").read_bytes()
    capsys.readouterr()
    into_b = ["fit-prior", str(tmp_path / "a"), "--prior", "gmm", "--components", "2", "--out", str(tmp_path / "b")]
    assert main(into_b) == 2
    assert "holds another model (its config.json): writing there would replace it" in capsys.readouterr().err
    assert (tmp_path / "b" / "model.safetensors").read_bytes() == before
    out = ["fit-prior", str(tmp_path / "a"), "--prior", "gmm", "--components", "2", "--out", str(tmp_path / "fit")]
    assert main(out) == 0 and main(out) == 0  # its own earlier output: fitted again


def test_locks_a_code_prior_is_not_continued_over_a_first_stage_that_moved(tmp_path):
    vaezoo.train(tiny_config("vq", family="vqvae", epochs=1), out=tmp_path / "vq", stream=io.StringIO())
    prior = {"name": "pixelcnn", "channels": 8, "layers": 2}
    with pytest.raises(KeyboardInterrupt):  # the stage stops after its first epoch's checkpoint
        vaezoo.train_code_prior(tmp_path / "vq", prior, out=tmp_path / "fit", epochs=2, batch_size=16,
                                stream=CrashAt("epoch 2/2"))
    vaezoo.train(resume=tmp_path / "vq", overrides={"trainer.epochs": 2}, stream=io.StringIO(),
                 allow_changes=True)  # the first stage trains on: its codebook moves
    with pytest.raises(UsageError, match="has changed since the code prior's stage .* began"):
        vaezoo.train_code_prior(tmp_path / "vq", prior, out=tmp_path / "fit", epochs=2, batch_size=16,
                                stream=io.StringIO())


# ------------------------------------------------------------------ class 4: values taken on trust


@pytest.fixture(scope="module")
def cvae():
    return vaezoo.create("fashion-cvae").eval()


_LABELLED = {
    "forward": lambda m, x, y: m(x, y),
    "elbo": lambda m, x, y: m.elbo(x, y=y),
    "iwae": lambda m, x, y: m.iwae(x, 2, y=y),
    "log_weights": lambda m, x, y: m.log_weights(x, 2, y=y),
    "reconstruct": lambda m, x, y: m.reconstruct(x, y),
}


@pytest.mark.parametrize("method", list(_LABELLED))
@pytest.mark.parametrize("labels, message", [
    (torch.tensor([2.7, 1.0]), "labels are whole class numbers; got torch.float32 values such as 2.7"),
    (torch.tensor([1, 10]), r"labels must be in 0..9, got \[1, 10\]"),
    (torch.tensor([-1, 0]), r"labels must be in 0..9"),
    (None, "the 'cvae' family is conditional: pass the class labels y"),
    (torch.tensor([1, 2, 3]), r"y must be one class or 2 labels, got shape \(3,\)"),
])
def test_values_labels_must_be_whole_classes_in_range_for_every_entry_point(cvae, method, labels, message):
    with pytest.raises(UsageError, match=message):
        _LABELLED[method](cvae, torch.rand(2, 1, 28, 28), labels)


@pytest.mark.parametrize("method", list(_LABELLED))
def test_values_labels_given_to_an_unconditional_model_are_refused_not_ignored(method):
    model = vaezoo.create(tiny_config())
    with pytest.raises(UsageError, match="the 'vae' family is not conditional: it takes no labels"):
        _LABELLED[method](model, torch.rand(2, 1, 8, 8), torch.tensor([0, 1]))


def test_values_integral_float_labels_are_taken(cvae):
    x = torch.rand(2, 1, 28, 28)
    torch.manual_seed(0)
    as_floats = cvae.elbo(x, y=torch.tensor([1.0, 3.0]))
    torch.manual_seed(0)
    torch.testing.assert_close(as_floats, cvae.elbo(x, y=torch.tensor([1, 3])))


@pytest.mark.parametrize("labels, message", [
    (torch.tensor([0.5, 1.0]), "are torch.float32: class labels are integers"),
    (torch.tensor([0, 4]), "run from 0 to 4; classes are 0-2"),
])
def test_values_dataset_labels_are_integers_in_range(labels, message):
    with pytest.raises(DataError, match=message):
        ImageData(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), torch.zeros(1, 1, 4, 4, dtype=torch.uint8), labels,
                  torch.zeros(1, dtype=torch.long), classes=["a", "b", "c"], source="mine")


def test_values_a_nan_pixel_in_a_tensors_dataset_is_refused(tmp_path):
    images = torch.rand(6, 1, 4, 4)
    images[2, 0, 1, 1] = float("nan")
    save_file({"train_images": images}, str(tmp_path / "mine.safetensors"))
    with pytest.raises(DataError, match="'train_images' holds 1 NaN or infinite pixel value"):
        tensors(None, path=str(tmp_path / "mine.safetensors"))


@pytest.mark.parametrize("key, bad, message", [
    ("quantizer.embedding", float("nan"), "NaN or inf"),
    ("decoder", float("inf"), "NaN or inf"),
])
def test_values_non_finite_weights_are_refused_where_they_are_loaded(tmp_path, key, bad, message):
    folder = vaezoo.create(tiny_config("vq", family="vqvae")).save_pretrained(tmp_path / "vq")
    weights = load_file(str(folder / "model.safetensors"))
    name = next(k for k in weights if k.startswith(key) and weights[k].is_floating_point())
    weights[name].view(-1)[0] = bad
    save_file(weights, str(folder / "model.safetensors"))
    with pytest.raises(CheckpointError, match=rf"{message}.* in {name}"):
        vaezoo.load(folder)


def _published(tmp_path) -> Path:
    registry = tmp_path / "registry"
    publish_run(_run(tmp_path), "tiny", "alice/tiny", config="fashion-mlp16", metrics=REPORT, registry=registry)
    return registry


def test_values_publish_metrics_refuses_a_report_of_another_model(tmp_path):
    registry = _published(tmp_path)
    other = {**REPORT, "protocol": {**REPORT["protocol"], "model": "runs/other"}}
    with pytest.raises(HubError, match="the report measured 'runs/other', not the published 'tiny'"):
        add_metrics("tiny", other, registry=registry)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_values_a_non_finite_measurement_is_not_published(tmp_path, value):
    registry = _published(tmp_path)
    report = {**REPORT, "metrics": {"neg_elbo": {**REPORT["metrics"]["neg_elbo"], "value": value}}}
    with pytest.raises(HubError, match="metric 'neg_elbo': .* is not a finite number"):
        add_metrics("tiny", report, registry=registry)
    json.loads((registry / "tiny.json").read_text())  # still strict JSON


def test_values_a_rescoring_at_another_k_is_not_a_re_measurement(tmp_path):
    registry = _published(tmp_path)
    again = {"protocol": {**REPORT["protocol"], "seed": 1, "iw_samples": 10}, "metrics": REPORT["metrics"]}
    with pytest.raises(HubError, match="used k=10 importance samples; tiny's iwae_nll was measured with k=5000"):
        add_rescoring("tiny", again, "cmd", registry=registry)


def test_values_a_16_bit_png_is_scaled_not_clipped(tmp_path):
    levels = np.array([[0, 257 * 64], [257 * 128, 65535]], dtype=np.uint16)
    _png(tmp_path / "pictures" / "a.png", levels)
    _png(tmp_path / "pictures" / "b.png", levels)
    data = image_folder(None, path=str(tmp_path / "pictures"), test_fraction=0.5)
    assert data.train_images[0, 0].tolist() == [[0, 64], [128, 255]]


def test_values_float_images_in_an_svhn_file_are_scaled_not_black(tmp_path):
    scipy_io = pytest.importorskip("scipy.io")  # the svhn extra
    pixels = np.random.default_rng(0).random((32, 32, 3, 4)).astype(np.float32)
    scipy_io.savemat(tmp_path / "train_32x32.mat", {"X": pixels, "y": np.array([[1], [2], [10], [3]])})
    images, labels = _read_svhn(tmp_path / "train_32x32.mat")
    expected = torch.from_numpy((pixels.transpose(3, 2, 0, 1) * 255).round().astype(np.uint8))
    assert torch.equal(images, expected) and labels.tolist() == [1, 2, 0, 3]


# ------------------------------------------------------------------ class 5: settings that would do nothing


@pytest.mark.parametrize("setting", [{"trainer.select": "best_val"}, {"trainer.patience": 3}])
def test_settings_selection_on_validation_without_a_validation_split_is_an_error(setting):
    with pytest.raises(ConfigError, match=r"reads the validation split, and data.val_size is 0"):
        vaezoo.get_config("fashion-mlp16", {"data.val_size": 0, **setting})


@pytest.mark.parametrize("key, value, expected", [
    ("trainer.ema_decay", 1.5, "expected a number > 0.0 and < 1.0 or null, got 1.5"),
    ("trainer.scheduler.min_lr_ratio", 2, "<= 1.0"),
])
def test_settings_range_errors_say_the_range(key, value, expected):
    with pytest.raises(ConfigError, match=expected.replace(".", r"\.").replace("(", r"\(")):
        vaezoo.get_config("fashion-mlp16", {key: value})


# ------------------------------------------------------------------ class 6: no tracebacks on the command line


def test_cli_eval_output_into_a_missing_folder_makes_it(tmp_path, capsys):
    folder = vaezoo.create(tiny_config()).save_pretrained(tmp_path / "m", experiment=vaezoo.get_config(tiny_config()))
    target = tmp_path / "new" / "deeper" / "r.json"
    assert main(["eval", str(folder), "--limit", "2", "--iw-samples", "2", "-q", "-o", str(target)]) == 0
    assert json.loads(target.read_text())["protocol"]["examples"] == 2


def test_cli_eval_start_past_the_end_is_one_line(tmp_path, capsys):
    folder = vaezoo.create(tiny_config()).save_pretrained(tmp_path / "m", experiment=vaezoo.get_config(tiny_config()))
    assert main(["eval", str(folder), "--start", "500", "--iw-samples", "2", "-q"]) == 2
    expected = "error: start (--start) must be the index of a test image, 0 to 63, got 500"
    assert capsys.readouterr().err.strip() == expected


@pytest.mark.parametrize("argv", [["--shards", "0"], ["--limit", "-5"], ["--iw-samples", "x"]])
def test_cli_rescore_arguments_are_checked_by_the_parser(argv):
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "rescore.py"), "fashion-vae40-ema", *argv],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr and "error: argument" in result.stderr


@pytest.mark.parametrize("source, message", [
    ("def broken(:\n", r"--import {path}: invalid syntax \({path}, line 1\)"),
    ("import vaezoo\n\n@vaezoo.register_backbone('mlp')\ndef mlp(in_shape, out_features, **kw):\n    pass\n",
     r"--import {path}: encoder 'mlp' is already registered .*choose another name \({path}, line 3\)"),
])
def test_cli_an_imported_file_with_a_syntax_error_or_a_name_clash_is_one_line(tmp_path, capsys, source, message):
    path = tmp_path / "my_parts.py"
    path.write_text(source)
    assert main(["--import", str(path), "list"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and re.fullmatch("error: " + message.format(path=re.escape(str(path))), err[0]), err


def test_cli_a_genuine_bug_in_an_imported_file_keeps_its_traceback(tmp_path):
    path = tmp_path / "buggy_parts.py"
    path.write_text("raise RuntimeError('a bug of its own')\n")
    with pytest.raises(RuntimeError, match="a bug of its own"):
        main(["--import", str(path), "list"])


def test_locks_a_crash_while_a_model_is_rewritten_leaves_the_old_model_whole(tmp_path, monkeypatch):
    """fit-prior (or any save_pretrained into a run) stopped while it writes the weights: the run's
    model.safetensors and config.json are the old ones, and it loads."""
    import vaezoo.layout.files as files

    run = vaezoo.create(tiny_config()).save_pretrained(tmp_path / "run", experiment=vaezoo.get_config(tiny_config()))
    before = {name: (run / name).read_bytes() for name in ("model.safetensors", "config.json")}
    real = files.safetensors_bytes
    monkeypatch.setattr(files, "safetensors_bytes", lambda *a, **k: (real(*a, **k), _kill())[0])
    with pytest.raises(KeyboardInterrupt):
        vaezoo.fit_prior(vaezoo.load(run), torch.rand(32, 1, 8, 8), components=2).save_pretrained(run)
    assert {name: (run / name).read_bytes() for name in before} == before
    assert vaezoo.load(run).config.prior.name == "normal" and not list(run.glob(".*.tmp"))


def _kill():
    raise KeyboardInterrupt  # as a SIGKILL would stop the process at this point


def test_locks_eval_writing_into_a_training_run_waits_for_no_training(tmp_path, capsys):
    vaezoo.train(tiny_config(epochs=1), out=tmp_path / "run", stream=io.StringIO())
    with run_folder_lock(tmp_path / "run", "vaezoo train"):
        assert main(["eval", str(tmp_path / "run"), "--limit", "2", "--iw-samples", "2", "-q",
                     "-o", str(tmp_path / "run" / "eval.json")]) == 2
    assert "another command holds the run folder" in capsys.readouterr().err
    assert not (tmp_path / "run" / "eval.json").exists()
    assert main(["eval", str(tmp_path / "run"), "--limit", "2", "--iw-samples", "2", "-q",
                 "-o", str(tmp_path / "run" / "eval.json")]) == 0


def test_locks_a_crash_while_publishing_leaves_the_registry_as_it_was(tmp_path, monkeypatch):
    import vaezoo.maintenance.publish as publish

    registry = _published(tmp_path)
    before = {p.relative_to(registry): p.read_bytes() for p in registry.rglob("*") if p.is_file()}
    monkeypatch.setattr(publish, "write_entry", lambda *a, **k: _kill())
    other = vaezoo.create("fashion-mlp16")
    torch.nn.init.zeros_(next(other.parameters()))  # other weights: a new shipped file, then the crash
    other.save_pretrained(tmp_path / "run2", experiment=vaezoo.get_config("fashion-mlp16", {"trainer.epochs": 1}),
                          training={"epochs": 1})
    with pytest.raises(KeyboardInterrupt):
        publish_run(tmp_path / "run2", "tiny", "alice/tiny", config="fashion-mlp16", metrics=REPORT, registry=registry)
    assert (registry / "tiny.json").read_bytes() == before[Path("tiny.json")]  # the entry: whole, the old one
    assert not list(registry.rglob(".*.tmp"))
    monkeypatch.setattr(resources, "registry_dir", lambda: registry)
    # the new weights file beside it is refused by the entry's pin: nothing torn loads
    with pytest.raises(HubError, match="shipped weights were altered .* do not have sha256"):
        vaezoo.load("tiny", local_files_only=True)
