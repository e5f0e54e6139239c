"""The fast scoring path: the decoder's arithmetic, the prepared decoder, the timed pass sizes."""

import json

import pytest
import torch

import vaezoo
from vaezoo.errors import UsageError
from vaezoo.evaluation import resolve_data
from vaezoo.fastpath import FastDecoder, ScoringPlan, calibration, plan, plan_scoring, scoring_dtype
from vaezoo.models.bounds import planned_iwae_bound
from vaezoo.ops.noise import IWAE_STREAM, NoiseSource

CPU = torch.device("cpu")
# The stated bound: a bf16 decoder moves no test image's NLL by more than this. The largest move
# benchmarks/iwae_precision.py saw on 1,000 fashion-conv64 test images at k = 5000 was 0.062 nats,
# the mean +0.0003 (docs/performance.md).
PER_IMAGE_BOUND = 0.1


def tiny_conv(**model):
    torch.manual_seed(0)
    return vaezoo.create({"model": {"input_shape": [1, 12, 12], "latent_dim": 4, "encoder": "seed-conv",
                                    "decoder": "seed-conv", **model}}).eval()


def tiny_mlp():
    return vaezoo.create({"model": {"input_shape": [1, 8, 8], "latent_dim": 2, "encoder": "linear",
                                    "decoder": "linear"}}).eval()


def scores(model, x, k, precision, chunk=None, seed=0):
    with torch.no_grad():
        scoring = plan_scoring(model, x, precision=precision, decodes=k * x.shape[0],
                               decodes_per_pass=chunk and chunk * x.shape[0])
        noise = NoiseSource(seed, IWAE_STREAM, range(x.shape[0]), model.noise_shape)
        with model.decoding_with(scoring.decoder(model)):
            return planned_iwae_bound(model, x, noise, k, scoring)


# -- the arithmetic ------------------------------------------------------------------------

def test_auto_takes_bf16_only_for_conv_decoders_on_cpus_with_native_bf16(monkeypatch):
    conv, mlp = tiny_conv(), tiny_mlp()
    monkeypatch.setattr(plan, "native_cpu_bf16", lambda: True)
    assert scoring_dtype(conv, CPU, "auto") == torch.bfloat16
    assert scoring_dtype(mlp, CPU, "auto") == torch.float32  # dense decoders gain too little
    assert scoring_dtype(conv, torch.device("cuda"), "auto") == torch.float32  # not measured on GPUs
    assert scoring_dtype(conv, CPU, "float32") == torch.float32
    monkeypatch.setattr(plan, "native_cpu_bf16", lambda: False)  # emulated bf16 is slower than float32
    assert scoring_dtype(conv, CPU, "auto") == torch.float32
    assert scoring_dtype(conv, CPU, "bfloat16") == torch.bfloat16  # asked for: given, emulated or not


def test_a_likelihood_that_needs_float32_parameters_is_never_scored_in_bf16(monkeypatch):
    monkeypatch.setattr(plan, "native_cpu_bf16", lambda: True)
    model = tiny_conv(likelihood="discretized-logistic")
    assert scoring_dtype(model, CPU, "auto") == torch.float32
    with pytest.raises(UsageError, match="float32 parameters"):
        scoring_dtype(model, CPU, "bfloat16")
    with pytest.raises(UsageError, match="auto, float32, bfloat16"):
        scoring_dtype(model, CPU, "half")


# -- the prepared decoder ------------------------------------------------------------------

def test_fast_decoder_matches_the_model_decoder_within_bf16_rounding_and_keeps_the_model_intact():
    model = tiny_conv()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    h = torch.randn(37, 4)
    fast = FastDecoder(model.decoder, torch.bfloat16, pass_size=16, channels_last=True, compile=False)
    with torch.no_grad():
        reference, out = model.decoder(h), fast(h)
    assert out.dtype == torch.float32 and out.shape == reference.shape
    assert torch.allclose(out, reference, atol=0.02, rtol=0.02)
    assert not torch.equal(out, reference)  # bf16 did run
    assert all(torch.equal(v, before[k]) and v.dtype == torch.float32 for k, v in model.state_dict().items())
    float32 = FastDecoder(model.decoder, torch.float32, pass_size=16, channels_last=False, compile=False)
    with torch.no_grad():
        assert torch.allclose(float32(h), reference, atol=1e-6)  # 37 rows in passes of 16: nothing lost


def test_the_compiled_decoder_serves_every_size_with_one_graph():
    """Compiled for one pass shape: a short last pass is padded, and the values stay the eager
    ones (inductor fuses, the arithmetic is the same)."""
    model = tiny_conv()
    eager = FastDecoder(model.decoder, torch.float32, pass_size=32, channels_last=False, compile=False)
    compiled = FastDecoder(model.decoder, torch.float32, pass_size=32, channels_last=False, compile=True)
    with torch.no_grad():
        for rows in (32, 5, 70):
            h = torch.randn(rows, 4)
            assert torch.allclose(compiled(h), eager(h), atol=1e-4)
    assert compiled.compiled  # it compiled (a failure would have warned and left it eager)


# -- the bound -----------------------------------------------------------------------------

def test_the_bound_does_not_depend_on_the_pass_size_and_bf16_moves_it_little():
    model = tiny_conv()
    x = torch.rand(6, 1, 12, 12)
    reference = scores(model, x, 300, "float32")
    for chunk in (7, 64, 300):
        assert torch.allclose(scores(model, x, 300, "float32", chunk), reference, atol=1e-5, rtol=0)
    assert torch.allclose(scores(model, x, 300, "bfloat16", 50), reference, atol=PER_IMAGE_BOUND, rtol=0)


def test_bf16_stays_within_the_stated_bound_per_test_image_of_a_trained_model(fashion_mnist_dir):
    model = vaezoo.load("fashion-conv64")
    x = resolve_data("fashion-mnist", limit=8).images
    difference = scores(model, x, 256, "bfloat16") - scores(model, x, 256, "float32")
    assert difference.abs().max().item() < PER_IMAGE_BOUND
    assert difference.abs().max().item() > 0  # bf16 did run


def test_model_iwae_takes_the_precision_and_refuses_bf16_gradients():
    model = tiny_conv()
    x = torch.rand(3, 1, 12, 12)
    float32 = model.iwae(x, 64, seed=1, precision="float32")
    assert torch.allclose(model.iwae(x, 64, seed=1, precision="bfloat16"), float32, atol=PER_IMAGE_BOUND)
    assert torch.allclose(model.iwae(x, 64, seed=1, chunk_size=5, precision="float32"), float32, atol=1e-5)
    with pytest.raises(UsageError, match="own float32 decoder"):
        model.iwae(x, 4, grad=True, precision="bfloat16")


def test_the_report_records_the_decoders_arithmetic():
    model = tiny_conv()
    report = vaezoo.evaluate(model, torch.rand(4, 1, 12, 12), iw_samples=20, elbo_samples=1, precision="bfloat16",
                             progress=False)
    assert report.protocol["decoder_arithmetic"] == "bfloat16"
    assert report.protocol["densities_arithmetic"].startswith("float32")
    assert "decoder in bfloat16" in report.format_table()
    float32 = vaezoo.evaluate(model, torch.rand(4, 1, 12, 12), iw_samples=20, elbo_samples=1, precision="float32",
                              progress=False)
    assert float32.protocol["decoder_arithmetic"] == "float32"


# -- the shapes ----------------------------------------------------------------------------

def test_a_short_job_takes_the_static_default_a_long_one_is_timed_and_compiled():
    model = tiny_conv()
    asked = []

    def calibrate(base):
        asked.append(base)
        return 512

    short = plan.plan_shape(model, CPU, "float32", 1000, None, calibrate)
    assert (short.decodes_per_pass, short.compile, asked) == (128, False, [])
    medium = plan.plan_shape(model, CPU, "float32", plan.COMPILE_MIN_DECODES, None, calibrate)
    assert medium.compile and not asked
    long = plan.plan_shape(model, CPU, "float32", plan.LONG_JOB_DECODES, None, calibrate)
    assert long.decodes_per_pass == 512 and long.compile and len(asked) == 1
    given = plan.plan_shape(model, CPU, "float32", plan.LONG_JOB_DECODES, 96, calibrate)
    assert given.decodes_per_pass == 96 and len(asked) == 1
    assert ScoringPlan(torch.float32, 128, False, False, "").images_per_pass(64) == 4  # 32 samples each
    assert ScoringPlan(torch.float32, 128, False, False, "").images_per_pass(2) == 2


def test_pass_sizes_are_timed_once_per_model_and_machine_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("VAEZOO_CACHE", str(tmp_path))
    monkeypatch.setattr(calibration, "CANDIDATES", (16, 64))
    monkeypatch.setattr(calibration, "SECONDS_PER_CANDIDATE", 0.01)
    model, said = tiny_conv(), []
    x = torch.rand(1, 1, 12, 12)
    base = ScoringPlan(torch.float32, 128, False, False, "")
    chosen = calibration.calibrated_decodes_per_pass(model, x, None, base, said.append)
    assert chosen in (16, 64) and len(said) == 2
    entry = next(iter(json.loads((tmp_path / "scoring-shapes.json").read_text()).values()))
    assert entry["decodes_per_pass"] == chosen and set(entry["decodes_per_s"]) == {"16", "64"}
    assert "thread" in entry["device"]

    def must_not_time(*args):
        raise AssertionError("timed again")

    monkeypatch.setattr(calibration, "_decodes_per_second", must_not_time)
    assert calibration.calibrated_decodes_per_pass(model, x, None, base) == chosen
    path = tmp_path / "scoring-shapes.json"
    table = json.loads(path.read_text())
    path.write_text(json.dumps({key: {**value, "decodes_per_pass": 10**9} for key, value in table.items()}))
    with pytest.raises(AssertionError, match="timed again"):  # a size no timing gave is not trusted
        calibration.calibrated_decodes_per_pass(model, x, None, base)
    path.write_text(json.dumps(table))
    other = tiny_conv(latent_dim=6)  # another architecture is timed on its own
    with pytest.raises(AssertionError, match="timed again"):
        calibration.calibrated_decodes_per_pass(other, x, None, base)
    threads = torch.get_num_threads()
    key = calibration.cache_key(model, CPU, base)
    torch.set_num_threads(threads + 1)
    try:
        assert calibration.cache_key(model, CPU, base) != key  # other threads: another machine for a timing
    finally:
        torch.set_num_threads(threads)


def test_a_published_iwae_figure_records_the_arithmetic_and_the_card_says_so():
    from vaezoo.layout.card import describe_protocol
    from vaezoo.maintenance.publish import normalize_metrics

    model = tiny_conv()
    report = vaezoo.evaluate(model, torch.rand(4, 1, 12, 12), iw_samples=20, elbo_samples=1, precision="bfloat16",
                             progress=False).to_dict()
    records = {m.name: m for m in normalize_metrics(report, likelihood="bernoulli", binarization="none",
                                                    weights_dtype="float32", name="tiny")}
    assert records["iwae_nll"].protocol.decoder_arithmetic == "bfloat16"
    assert records["neg_elbo"].protocol.decoder_arithmetic is None  # the ELBO is scored in float32
    card = describe_protocol({"name": "iwae_nll", **records["iwae_nll"].protocol.model_dump()})
    assert "decoder in bf16" in card
    del report["protocol"]["decoder_arithmetic"]  # a report from before the plan: float32
    old = {m.name: m for m in normalize_metrics(report, likelihood="bernoulli", binarization="none",
                                                weights_dtype="float32", name="tiny")}
    assert old["iwae_nll"].protocol.decoder_arithmetic == "float32"


def test_the_prepared_decoder_is_kept_until_the_weights_change():
    model = tiny_conv()
    scoring = ScoringPlan(torch.bfloat16, 64, False, False, "")
    first = scoring.decoder(model)
    assert scoring.decoder(model) is first  # a loop of model.iwae calls prepares (compiles) once
    with torch.no_grad():
        model.decoder.deconv2.bias.add_(1.0)  # an optimizer step writes in place
    again = scoring.decoder(model)
    assert again is not first
    assert torch.allclose(again.module.deconv2.bias.float(), model.decoder.deconv2.bias, atol=1e-2)
    assert ScoringPlan(torch.float32, 64, False, False, "").decoder(model) is None  # the model's own decoder
