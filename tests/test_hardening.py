"""Hostile and careless input meets a clear refusal: each case asserts the message, and each
fails if its guard is removed. (More classes join this battery as they are hardened.)"""

from __future__ import annotations

import io
import json
import os
import re
import time

import pytest
import torch
import yaml

import vaezoo
import vaezoo.cli.evaluate
import vaezoo.cli.train
from vaezoo.cli import main
from vaezoo.config import parse_set_args
from vaezoo.errors import CheckpointError, ConfigError, UsageError
from vaezoo.safe_text import MAX_DEPTH, MAX_NODES

from _tiny_training import register, tiny_config

register()

# ------------------------------------------------------------------ config files

# Nine levels of ten aliases each: a few hundred bytes that expand to 10^9 values.
BOMB = 'a: &a ["x","x","x","x","x","x","x","x","x","x"]\n' + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 10) + "]\n" for i in range(8))

YAML_CASES = {
    "alias bomb": (BOMB, f"expands to more than {MAX_NODES:,} values"),
    "recursive alias": ("a: &a [*a]\n", "an alias refers to a value that holds it"),
    "deep nesting": ("a: " + "[" * 3000 + "]" * 3000 + "\n", f"nests deeper than {MAX_DEPTH} levels"),
    "deep but within recursion": ("a: " + "[" * 100 + "]" * 100 + "\n", f"nests deeper than {MAX_DEPTH} levels"),
    "duplicate key": ("trainer:\n  epochs: 3\n  batch_size: 4\n  epochs: 5\n",
                      "line 4, column 3: the key 'epochs' is given twice in one mapping, on line 2 and on line 4"),
    "duplicate top-level section": ("model: fashion-conv64\ntrainer: {}\nmodel: x\n",
                                    "the key 'model' is given twice in one mapping, on line 1 and on line 3"),
    "duplicate key in a flow mapping": ("trainer: {epochs: 1, epochs: 2}\n", "the key 'epochs' is given twice"),
    "a python tag": ("trainer: !!python/object/apply:os.system ['true']\n", "could not determine a constructor"),
}


@pytest.mark.parametrize("case", list(YAML_CASES))
def test_hostile_yaml_is_refused_quickly_with_the_reason(tmp_path, case):
    text, message = YAML_CASES[case]
    path = tmp_path / "x.yaml"
    path.write_text(text)
    start = time.perf_counter()
    with pytest.raises(ConfigError) as info:
        vaezoo.get_config(path)
    assert time.perf_counter() - start < 10
    assert message in str(info.value)


def test_a_config_that_is_not_utf8_says_so(tmp_path):
    path = tmp_path / "latin.yaml"
    path.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"is not UTF-8 text \(byte 0xe9 on line 1\): save it as UTF-8"):
        vaezoo.get_config(path)


def test_a_file_larger_than_any_config_is_not_read(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text("a: [" + "1," * 600_000 + "1]\n")
    with pytest.raises(ConfigError, match=r"bytes; a config is at most 1,048,576"):
        vaezoo.get_config(path)


def test_aliases_within_reason_still_work(tmp_path):
    config = vaezoo.get_config("fashion-mlp16").model_dump(mode="json")
    text = yaml.safe_dump(config).replace("  checkpoint_every: 200", "  checkpoint_every: &every 7")
    path = tmp_path / "ok.yaml"
    path.write_text(text.replace("  log_every: 50", "  log_every: *every"))
    trainer = vaezoo.get_config(path).trainer
    assert trainer.log_every == trainer.checkpoint_every == 7


@pytest.mark.parametrize("value, message", [
    ("{a: 1, a: 2}", "the key 'a' is given twice"),
    ("[" * 200 + "]" * 200, "nests deeper"),
    ("!!python/name:os.system", "could not determine a constructor"),
])
def test_set_values_are_read_with_the_same_limits(value, message):
    with pytest.raises(ConfigError, match=message):
        parse_set_args([f"trainer.epochs={value}"])


def test_the_cli_shows_a_message_not_a_traceback_for_a_bad_file(tmp_path, capsys):
    path = tmp_path / "dup.yaml"
    path.write_text("trainer:\n  epochs: 3\n  epochs: 5\n")
    assert main(["train", str(path), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "the key 'epochs' is given twice" in err and "Traceback" not in err


# ------------------------------------------------------------------ checkpoint files

def _saved(tmp_path):
    folder = tmp_path / "model"
    vaezoo.create("fashion-mlp16").save_pretrained(folder)
    return folder


def test_config_json_with_a_key_twice_is_refused(tmp_path):
    folder = _saved(tmp_path)
    text = (folder / "config.json").read_text()
    (folder / "config.json").write_text(text.replace('{\n', '{\n  "family": "hvae",\n', 1))
    assert json.loads((folder / "config.json").read_text())["family"] == "vae"  # json alone keeps the last
    with pytest.raises(CheckpointError, match="the key 'family' is given twice in one object"):
        vaezoo.load(folder)


def test_config_json_that_is_not_utf8_is_refused(tmp_path):
    folder = _saved(tmp_path)
    (folder / "config.json").write_bytes(b'{"name": "caf\xe9"}')
    with pytest.raises(CheckpointError, match=r"not a valid config.json: config.json is not UTF-8 text"):
        vaezoo.load(folder)


# ------------------------------------------------------------------ the model boundary

@pytest.fixture(scope="module")
def mlp():
    torch.manual_seed(0)
    return vaezoo.create("fashion-mlp16").eval()


GOOD = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(0))
BAD_INPUTS = {
    "one image, no batch": (torch.rand(1, 28, 28), "x has shape (1, 28, 28): one image without the batch dimension; "
                                                   "this model takes a batch (B, 1, 28, 28): use x.unsqueeze(0)"),
    "flat vectors": (torch.rand(4, 784), "x has shape (4, 784); this model takes a batch of images (B, 1, 28, 28)"),
    "three channels": (torch.rand(4, 3, 28, 28), "x holds images of shape (3, 28, 28) (C, H, W); this model takes "
                                                 "(1, 28, 28)"),
    "another size": (torch.rand(4, 1, 32, 32), "x holds images of shape (1, 32, 32)"),
    "empty batch": (torch.rand(0, 1, 28, 28), "x is an empty batch (shape (0, 1, 28, 28)); give at least one image"),
    "a list": ([[0.0] * 28] * 28, "x must be a torch.Tensor batch of images (B, 1, 28, 28), got list"),
    "a NumPy array": (GOOD.numpy(), "got ndarray (torch.from_numpy turns a NumPy array into one)"),
    "int64 pixels": (torch.randint(0, 2, (4, 1, 28, 28)), "x has dtype torch.int64; give float images with values "
                                                          "in [0, 1], or uint8 images"),
    "complex pixels": (GOOD.to(torch.complex64), "x has dtype torch.complex64"),
    "0-255 floats": (GOOD * 255, "the bernoulli likelihood scores values in [0, 1] (divide 0-255 images by 255, "
                                 "or pass them as uint8)"),
    "negative pixels": (GOOD - 0.5, "the bernoulli likelihood scores values in [0, 1]"),
    "a NaN pixel": (torch.where(torch.arange(784).reshape(1, 1, 28, 28) == 300, float("nan"), GOOD),
                    "x holds NaN or infinite pixel values"),
    "an infinite pixel": (torch.where(torch.arange(784).reshape(1, 1, 28, 28) == 5, float("inf"), GOOD),
                          "x holds NaN or infinite pixel values"),
}
METHODS = {
    "forward": lambda m, x: m(x),
    "elbo": lambda m, x: m.elbo(x),
    "iwae": lambda m, x: m.iwae(x, 4),
    "log_weights": lambda m, x: m.log_weights(x, 2),
    "reconstruct": lambda m, x: m.reconstruct(x),
    "refine": lambda m, x: m.refine(x, steps=1),
}


@pytest.mark.parametrize("method", list(METHODS))
@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_every_public_method_refuses_bad_images_in_one_line(mlp, method, case):
    x, message = BAD_INPUTS[case]
    with pytest.raises(UsageError) as info:
        METHODS[method](mlp, x)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_encode_refuses_nan_pixels_but_reads_nothing_inside_a_step(mlp, monkeypatch):
    """encode refuses NaN pixels as model(x) does (it scores nothing, so no range binds it); inside
    forward, a training or evaluation step whose images are checked already, it reads no value back."""
    with pytest.raises(UsageError, match="x holds images of shape"):
        mlp.encode(torch.rand(2, 3, 28, 28))
    nan = torch.where(GOOD > 0.5, float("nan"), GOOD)
    mlp.train()
    with pytest.raises(UsageError, match="NaN or infinite"):
        mlp.encode(nan)  # in training mode, with autograd, as a user might call it
    mlp.eval()
    assert mlp.encode(GOOD * 255).mean.shape == (GOOD.shape[0], mlp.latent_dim)  # encoding scores no likelihood
    reads = []
    monkeypatch.setattr(torch.Tensor, "__bool__", lambda self: reads.append(1) or True)
    mlp(GOOD, context=vaezoo.passes.StepContext())  # a step: its encode reads nothing back
    assert reads == []


def test_uint8_and_bool_images_are_converted(mlp):
    pixels = torch.randint(0, 256, (3, 1, 28, 28), dtype=torch.uint8)
    torch.testing.assert_close(mlp.reconstruct(pixels), mlp.reconstruct(pixels.float() / 255))
    binary = pixels > 127
    torch.testing.assert_close(mlp.iwae(binary, 8, seed=1), mlp.iwae(binary.float(), 8, seed=1))
    assert mlp.reconstruct(GOOD.double()).dtype == torch.float32


def test_a_gaussian_likelihood_takes_any_real_values():
    config = vaezoo.get_config("fashion-mlp16").model_dump(mode="json")
    config["model"]["likelihood"] = "gaussian"
    model = vaezoo.create(config)
    assert torch.isfinite(model.elbo(GOOD * 255 - 10)).all()
    with pytest.raises(UsageError, match="NaN or infinite"):
        model.elbo(GOOD * float("inf"))


@pytest.mark.parametrize("call, message", [
    (lambda m: m.sample(0), "n (the number of samples) must be at least 1, got 0"),
    (lambda m: m.sample(-3), "n (the number of samples) must be at least 1, got -3"),
    (lambda m: m.sample(2.5), "n (the number of samples) must be a whole number, got 2.5"),
    (lambda m: m.sample(True), "n (the number of samples) must be a whole number, got True"),
    (lambda m: m.iwae(GOOD, 0), "k (the number of importance samples) must be at least 1, got 0"),
    (lambda m: m.iwae(GOOD, 8, chunk_size=0), "chunk_size must be at least 1, got 0"),
    (lambda m: m.elbo(GOOD, samples=0), "samples must be at least 1, got 0"),
    (lambda m: m.log_weights(GOOD, -1), "samples must be at least 1, got -1"),
    (lambda m: m.refine(GOOD, steps=-1), "steps must be at least 0, got -1"),
])
def test_counts_that_are_zero_negative_or_not_whole_are_refused(mlp, call, message):
    with pytest.raises(UsageError, match=re.escape(message)):
        call(mlp)


def test_evaluate_refuses_data_outside_the_likelihoods_range(mlp):
    with pytest.raises(UsageError, match=r"the data has pixel values in \[[0-9.e-]+, 2\.\d+\]; the bernoulli "
                                         r"likelihood scores values in \[0, 1\]$"):
        vaezoo.evaluate(mlp, GOOD * 2.5, iw_samples=0, progress=False)


# ------------------------------------------------------------------ the command line

@pytest.mark.parametrize("argv, message", [
    (["sample", "fashion-conv64", "-n", "0"], "argument -n: must be at least 1, got 0"),
    (["sample", "fashion-conv64", "-n", "-5"], "argument -n: must be at least 1, got -5"),
    (["sample", "fashion-conv64", "-n", "many"], "argument -n: expected a whole number, got 'many'"),
    (["sample", "fashion-conv64", "--nrow", "0"], "argument --nrow: must be at least 1, got 0"),
    (["sample", "fashion-cvae", "--class", "-1"], "argument --class: must be at least 0, got -1"),
    (["eval", "fashion-conv64", "--iw-samples", "-1"], "argument --iw-samples: must be at least 0, got -1"),
    (["eval", "fashion-conv64", "--elbo-samples", "0"], "argument --elbo-samples: must be at least 1, got 0"),
    (["eval", "fashion-conv64", "--limit", "0"], "argument --limit: must be at least 1, got 0"),
    (["eval", "fashion-conv64", "--batch-size", "0"], "argument --batch-size: must be at least 1, got 0"),
    (["eval", "fashion-conv64", "--chunk-size", "0"], "argument --chunk-size: must be at least 1, got 0"),
    (["eval", "fashion-conv64", "--refine-lr", "0"], "argument --refine-lr: must be a finite number above 0, got 0"),
    (["eval", "fashion-conv64", "--refine-lr", "nan"], "argument --refine-lr: must be a finite number above 0"),
    (["reconstruct", "fashion-conv64", "-n", "0"], "argument -n: must be at least 1, got 0"),
    (["traverse", "fashion-conv64", "--steps", "1"], "argument --steps: must be at least 2, got 1"),
    (["interpolate", "fashion-conv64", "--pairs", "0"], "argument --pairs: must be at least 1, got 0"),
    (["sample", "fashion-conv64", "--device", "tpu"], "argument --device: 'tpu' is not a device name; available here: "),
    (["train", "fashion-mlp16", "--device", "gpu:0"], "argument --device: 'gpu:0' is not a device name"),
    (["sample", "fashion-conv64", "-o", "samples.txt"], "argument -o/--output: 'samples.txt' has no picture "
                                                        "extension Pillow writes; use .png"),
    (["traverse", "fashion-conv64", "-o", "grid"], "argument -o/--output: 'grid' has no picture extension"),
])
def test_cli_ranges_and_devices_are_checked_before_any_work(argv, message, capsys, monkeypatch):
    loads = []  # nothing is loaded or trained before the arguments are checked
    monkeypatch.setattr(vaezoo.cli.evaluate, "load", lambda *a, **k: loads.append(a))
    monkeypatch.setattr(vaezoo.cli.train, "train", lambda *a, **k: loads.append(a))
    with pytest.raises(SystemExit) as info:
        main(argv)
    err = capsys.readouterr().err
    assert info.value.code == 2 and message in err and "Traceback" not in err
    assert loads == []


def test_a_gpu_this_machine_lacks_is_named_with_what_it_has(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # the same message on a GPU machine
    with pytest.raises(SystemExit):
        main(["sample", "fashion-conv64", "--device", "cuda:1"])
    assert "'cuda:1': CUDA is not available on this machine; available here: auto, cpu" in capsys.readouterr().err
    # the same name from a config is a one-line error too, not a traceback
    assert main(["train", "fashion-mlp16", "--set", "trainer.device=cuda", "--out", str(tmp_path / "r")]) == 2
    assert "error: trainer.device 'cuda': CUDA is not available" in capsys.readouterr().err


def _timm_checkpoint(tmp_path):
    config = {"model": {"input_shape": [1, 28, 28], "latent_dim": 4, "decoder": "mlp",
                        "encoder": {"name": "timm", "model": "test_resnet", "out_index": -1}}}
    folder = vaezoo.create(config).save_pretrained(tmp_path / "timm")
    return folder


def test_a_checkpoint_asking_for_timm_pretrained_weights_gets_none(tmp_path, monkeypatch):
    import timm

    folder = _timm_checkpoint(tmp_path)
    saved = json.loads((folder / "config.json").read_text())
    saved["model"]["encoder"]["pretrained"] = True
    (folder / "config.json").write_text(json.dumps(saved))
    asked, create = [], timm.create_model
    monkeypatch.setattr(timm, "create_model", lambda *a, **k: (asked.append(k.get("pretrained")), create(*a, **k))[1])
    with pytest.warns(UserWarning, match=r"model.encoder.pretrained is True; ignored \(set to false\): a checkpoint's "
                                         r"weights come from its model.safetensors"):
        model = vaezoo.load(folder)
    assert asked and not any(asked)  # timm was never asked to download
    assert model.config.encoder.params["pretrained"] is False


@pytest.mark.parametrize("key", ["checkpoint_path", "pretrained_cfg_overlay", "pretrained", "cache_dir"])
def test_timm_arguments_that_read_files_or_the_network_are_refused(tmp_path, key):
    folder = _timm_checkpoint(tmp_path)
    saved = json.loads((folder / "config.json").read_text())
    saved["model"]["encoder"]["model_kwargs"] = {key: "/etc/passwd"}
    (folder / "config.json").write_text(json.dumps(saved))
    with pytest.raises(ConfigError, match=rf"model.encoder.model_kwargs: '{key}' is not allowed in model_kwargs: it "
                                          rf"makes timm read files or download weights"):
        vaezoo.load(folder)


def test_an_integer_tensor_where_a_float_was_saved_is_refused_not_cast(tmp_path):
    from safetensors.torch import load_file, save_file

    folder = _saved(tmp_path)
    tensors = load_file(str(folder / "model.safetensors"))
    key = next(k for k, v in tensors.items() if v.is_floating_point())
    tensors[key] = tensors[key].round().to(torch.int32)
    save_file(tensors, str(folder / "model.safetensors"))
    with pytest.raises(CheckpointError, match=rf"wrong dtypes: {re.escape(key)} is int32, the model expects float32"):
        vaezoo.load(folder)  # a local folder: no registry hash to check first


# ------------------------------------------------------------------ training checkpoints

@pytest.fixture
def run(tmp_path, monkeypatch):
    """A tiny run of 2 epochs (12 steps, checkpoints every 4): last and previous checkpoints."""
    monkeypatch.setenv("CI", "1")
    out = tmp_path / "run"
    vaezoo.train(tiny_config(epochs=2), out=out, stream=io.StringIO())
    return out


def _rewrite(path, edit_tensors=None, edit_meta=None):
    """Write the checkpoint at ``path`` again after editing its tensors or header metadata."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(path), framework="pt") as f:
        meta, tensors = dict(f.metadata()), {k: f.get_tensor(k) for k in f.keys()}
    if edit_tensors:
        edit_tensors(tensors)
    if edit_meta:
        edit_meta(meta)
    save_file(tensors, str(path), metadata=meta)


def _resume(out, **kwargs):
    return vaezoo.train(tiny_config(epochs=3), resume=out, stream=io.StringIO(), **kwargs)


def _drop_checksums(meta):
    meta.pop("vaezoo.tensors_sha256"), meta.pop("vaezoo.state_sha256")


def _first_model_tensor(tensors):
    return next(k for k in tensors if k.startswith("model."))


CORRUPTIONS = {
    "a flipped weight": (dict(edit_tensors=lambda t: t[_first_model_tensor(t)].view(-1)[0].add_(1.0)),
                         "its tensors do not match their checksum (corrupted bytes)"),
    "edited trainer state": (dict(edit_meta=lambda m: m.update({"vaezoo.trainer_state": m["vaezoo.trainer_state"]
                                                                .replace('"global_step": 12', '"global_step": 11')})),
                             "its trainer state does not match its checksum"),
    "truncated JSON": (dict(edit_meta=lambda m: (_drop_checksums(m), m.update(
        {"vaezoo.trainer_state": m["vaezoo.trainer_state"][:-40]}))), "its trainer state is not valid JSON"),
    "no optimizer state": (dict(edit_tensors=lambda t: [t.pop(k) for k in [k for k in t if k.startswith("optim.")]],
                                edit_meta=_drop_checksums),
                           "its optimizer state does not fit this run (no optimizer state at all after 12 steps)"),
    "a missing weight": (dict(edit_tensors=lambda t: t.pop(_first_model_tensor(t)), edit_meta=_drop_checksums),
                         "does not match the architecture in its config: missing tensors"),
    "an extra tensor": (dict(edit_tensors=lambda t: t.update({"model.planted": torch.zeros(3)}),
                             edit_meta=_drop_checksums), "unexpected tensors: planted"),
}


@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_resume_refuses_a_damaged_checkpoint_and_names_the_way_out(run, case):
    edits, message = CORRUPTIONS[case]
    last = run / "checkpoints" / "last.safetensors"
    _rewrite(last, **edits)
    with pytest.raises(CheckpointError) as info:
        _resume(run)
    text = str(info.value)
    assert message in text and "\n" not in text
    if "checksum" in message or "JSON" in message:
        assert f"`mv {run / 'checkpoints' / 'previous.safetensors'} {last}`" in text


def test_a_truncated_checkpoint_file_is_refused(run):
    last = run / "checkpoints" / "last.safetensors"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="is not a readable safetensors checkpoint .*The checkpoint before it "
                                              "is kept"):
        _resume(run)


def test_the_previous_checkpoint_is_kept_and_read_when_the_last_is_gone(run):
    from vaezoo.layout.checkpoint import load_checkpoint

    checkpoints = run / "checkpoints"
    assert load_checkpoint(checkpoints / "previous.safetensors").step < load_checkpoint(run).step == 12
    (checkpoints / "last.safetensors").unlink()  # a crash between the two renames of a write
    assert load_checkpoint(run).step == load_checkpoint(checkpoints / "previous.safetensors").step


@pytest.mark.parametrize("override, message", [
    ({"trainer.batch_size": 16}, "trainer.batch_size: 16 here, 32 in the checkpoint"),
    ({"trainer.seed": 1}, "trainer.seed: 1 here, 0 in the checkpoint"),
    ({"trainer.optimizer.lr": 0.01}, "trainer.optimizer.lr: 0.01 here, 0.001 in the checkpoint"),
    ({"data.val_size": 32}, "data.val_size: 32 here, 64 in the checkpoint"),
    ({"model.objective": "iwae"}, 'model.objective.name: "iwae" here, "elbo" in the checkpoint'),
])
def test_a_resume_with_another_recipe_is_refused_unless_asked_for(run, override, message):
    with pytest.raises(CheckpointError, match=re.escape(message) + r".*pass --allow-changes"):
        vaezoo.train(tiny_config(epochs=3), override, resume=run, stream=io.StringIO())


def test_allow_changes_continues_with_the_new_recipe(run):
    _, metrics = vaezoo.train(tiny_config(epochs=3), {"trainer.optimizer.lr": 0.01}, resume=run,
                              stream=io.StringIO(), allow_changes=True)
    assert metrics["epoch"] == 3 and metrics["lr"] == pytest.approx(0.01)
    _, metrics = vaezoo.train(tiny_config(epochs=4), {"trainer.optimizer.lr": 0.01, "trainer.log_every": 3},
                              resume=run, stream=io.StringIO())
    assert metrics["epoch"] == 4  # longer, and other logging: not a recipe change


# ------------------------------------------------------------------ one run folder, one writer

def test_a_second_training_into_a_held_folder_is_refused(tmp_path, monkeypatch):
    from vaezoo.layout.lock import run_folder_lock

    monkeypatch.setenv("CI", "1")
    out = tmp_path / "run"
    with run_folder_lock(out):
        with pytest.raises(UsageError, match=rf"another command holds the run folder {re.escape(str(out))} \(vaezoo, "
                                             rf"process {os.getpid()}, since .*\): wait for it to end, or pick "
                                             rf"another folder"):
            vaezoo.train(tiny_config(epochs=1), out=out, stream=io.StringIO())
    vaezoo.train(tiny_config(epochs=1), out=out, stream=io.StringIO())  # released: the folder is free again


def test_a_killed_training_leaves_no_stuck_lock(tmp_path, monkeypatch):
    import signal
    import subprocess
    import sys
    from pathlib import Path

    monkeypatch.setenv("CI", "1")
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_config(epochs=2)))
    out = tmp_path / "run"
    entry = Path(__file__).with_name("training_entry.py")
    proc = subprocess.Popen([sys.executable, str(entry), "train", str(config), "--out", str(out)],
                            env={**os.environ, "VAEZOO_TEST_HANG_AT_STEP": "4"}, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout.readline().strip() == "CHECKPOINTED 4"
        with pytest.raises(UsageError, match=f"another command holds the run folder .*vaezoo train, process {proc.pid}"):
            vaezoo.train(resume=out, stream=io.StringIO())  # the hanging run still holds it
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
    _, metrics = vaezoo.train(resume=out, stream=io.StringIO())  # the kernel dropped the dead run's lock
    assert metrics["epoch"] == 2


def test_an_out_that_is_a_file_or_cannot_be_written_fails_before_any_work(tmp_path, monkeypatch):
    import vaezoo.layout.lock as lock

    monkeypatch.setenv("CI", "1")
    monkeypatch.setattr("vaezoo.training.loop.prepare_run", lambda *a, **k: pytest.fail("work started"))
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="is a file, not a folder: pick a folder for the run"):
        vaezoo.train(tiny_config(), out=tmp_path / "file", stream=io.StringIO())

    def read_only(*args, **kwargs):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(lock.os, "open", read_only)  # root ignores chmod, so the file system is faked
    with pytest.raises(UsageError, match="cannot write the run folder .*: Read-only file system; pick a folder you "
                                         "can write"):
        vaezoo.train(tiny_config(), out=tmp_path / "ro", stream=io.StringIO())
