"""The hierarchical residual quantizer (``hrq``, HRQ-VAE) against its definition written out: the
greedy residual codes by brute force, the loss terms by hand, the initial code norms, the
temperature schedule, depth dropout's keep rates, the gradient path, and the model around it."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from pydantic import ValidationError

import vaezoo
from vaezoo.parts import QUANTIZERS
from vaezoo.parts.quantizers import HierarchicalResidualQuantizer


def hrq(dim=3, **params) -> HierarchicalResidualQuantizer:
    torch.manual_seed(0)
    return QUANTIZERS.get("hrq")(dim, **params)


def test_codes_are_the_greedy_residual_nearest_codes_and_lookup_inverts_them():
    q = hrq(3, codebook_size=4, depth=3).eval()
    z = torch.randn(2, 3, 2, 2)
    out = q(z)
    books = q.codebooks.detach()
    vectors = z.movedim(1, -1).reshape(-1, 3)
    for n, v in enumerate(vectors):  # one vector at a time, level by level, distances in a loop
        residual, total, index = v.clone(), torch.zeros(3), 0
        for d in range(3):
            distances = [float(((residual - books[d, k]) ** 2).sum()) for k in range(4)]
            k = min(range(4), key=distances.__getitem__)
            residual, total, index = residual - books[d, k], total + books[d, k], index + k * 4 ** d
        assert int(out.indices.reshape(-1)[n]) == index
        torch.testing.assert_close(out.z_q.movedim(1, -1).reshape(-1, 3)[n], total)
    torch.testing.assert_close(q.lookup(out.indices), out.z_q)
    assert q.codebook_size == 64 and out.indices.shape == (2, 2, 2)


def test_the_greedy_codes_are_close_to_the_best_sum_over_all_paths():
    # residual quantization is greedy: its error is at least the best of all K^D sums, and on
    # codebooks of decaying norms it lands near it
    q = hrq(2, codebook_size=3, depth=2).eval()
    z = torch.randn(50, 2)
    out = q(z)
    books = q.codebooks.detach()
    sums = torch.stack([books[0, a] + books[1, b] for a, b in itertools.product(range(3), range(3))])
    best = torch.cdist(z, sums).min(dim=1).values
    greedy = (z - out.z_q).norm(dim=1)
    assert (greedy >= best - 1e-6).all()


def test_each_level_starts_on_its_sphere():
    q = hrq(5, codebook_size=16, depth=4, init_scale=2.0, init_decay=0.5)
    norms = q.codebooks.detach().norm(dim=-1)
    torch.testing.assert_close(norms, (2.0 * 0.5 ** torch.arange(4.0))[:, None].expand(4, 16))


def test_loss_terms_match_a_hand_computation():
    q = hrq(2, codebook_size=3, depth=2, kl_weight=0.1, norm_weight=0.5, norm_scale=1.5).eval()
    z = torch.randn(4, 2, 1, 3)  # 4 images of 3 latent vectors
    out = q(z)
    books = q.codebooks.detach()
    kl_total, norm_total = 0.0, 0.0
    for v in z.movedim(1, -1).reshape(-1, 2):
        residual, norms = v.clone(), []
        for d in range(2):
            logits = torch.stack([-((residual - books[d, k]) ** 2).sum() for k in range(3)])
            log_q = logits - torch.logsumexp(logits, 0)
            kl_total += float(sum((1 / 3) * (math.log(1 / 3) - log_q[k]) for k in range(3)))
            k = int(logits.argmax())
            norms.append(float(books[d, k].norm()))
            residual = residual - books[d, k]
        norm_total += (max(norms[1] / norms[0] * 1.5, 1.0) - 1.0) ** 2
    assert float(out.terms["code_kl"].detach()) == pytest.approx(0.1 * kl_total / 4, rel=1e-5)  # per image: sum, batch mean
    assert float(out.terms["norm"].detach()) == pytest.approx(0.5 * norm_total / 4, rel=1e-5, abs=1e-7)


def test_the_temperature_schedule_and_its_floor():
    q = hrq(2, depth=3, temperature_steps=100.0).train()
    assert q.temperatures() == [1.0, 1.0, 1.0]
    q.step.fill_(150)
    assert q.temperatures() == pytest.approx([max(math.exp(-150 / (100 * 1.5 ** d)), 0.5) for d in range(3)])
    assert q.temperatures()[0] == 0.5  # exp(-1.5) < 0.5: the floor
    q(torch.randn(2, 2))
    assert int(q.step) == 151
    q.eval()(torch.randn(2, 2))
    assert int(q.step) == 151  # encoding never moves the schedule


def test_depth_dropout_truncates_the_sum_at_the_stated_rates():
    q = hrq(2, codebook_size=4, depth=3, depth_drop=0.3).train()
    z = torch.randn(20000, 2)
    with torch.no_grad():
        out = q(z)
    # the pass reports the path it drew; its output must be a prefix sum of that path's codes
    digits = q.digits(out.indices)
    codes = [q.codebooks.detach()[d, digits[:, d]] for d in range(3)]
    prefixes = torch.stack([torch.zeros_like(z), codes[0], codes[0] + codes[1], codes[0] + codes[1] + codes[2]])
    matches = ((prefixes - out.z_q).abs().amax(dim=-1) < 1e-6)  # (4, N)
    assert matches.any(dim=0).all()
    depth = matches.double().argmax(dim=0)  # how many levels each vector kept
    rates = torch.bincount(depth, minlength=4).double() / len(z)
    # level d survives with (1 - p)^(d + 1): kept 0 levels w.p. p, 1 w.p. (1 - p) p, ...
    torch.testing.assert_close(rates, torch.tensor([0.3, 0.21, 0.147, 0.343], dtype=torch.float64), atol=0.015, rtol=0)


def test_gradients_reach_the_encoder_and_every_level_through_the_relaxation():
    q = hrq(3, codebook_size=4, depth=3, depth_drop=0.0).train()
    z = torch.randn(8, 3, 2, 2, requires_grad=True)
    out = q(z)
    ((out.z_q * torch.randn_like(out.z_q)).sum() + sum(out.terms.values())).backward()
    assert z.grad.abs().sum() > 0
    assert (q.codebooks.grad.abs().sum(dim=(1, 2)) > 0).all()


def test_the_step_counter_is_saved_with_the_codebooks():
    q = hrq(2).train()
    for _ in range(3):
        q(torch.randn(4, 2))
    copy = hrq(2)
    copy.load_state_dict(q.state_dict())
    assert int(copy.step) == 3 and copy.temperatures() == q.temperatures()
    torch.testing.assert_close(copy.codebooks, q.codebooks)


@pytest.mark.parametrize("field, value", [("codebook_size", 1), ("depth", 0), ("depth_drop", 1.0),
                                          ("temperature_steps", 0.0)])
def test_bad_parameters_are_refused_naming_the_field(field, value):
    with pytest.raises(ValidationError, match=field):
        hrq(2, **{field: value})


def test_an_hrq_vae_trains_a_step_and_decodes_its_codes():
    model = vaezoo.create("fashion-hrqvae")
    x = torch.rand(4, 1, 28, 28)
    model.train()
    out = model(x)
    assert {"code_kl", "norm"} <= set(out.terms) and torch.isfinite(out.loss)
    out.loss.backward()
    model.eval()
    with torch.no_grad():
        codes = model.encode(x)
        torch.testing.assert_close(model.quantizer.lookup(codes.indices), codes.z_q)
        assert model.decode_indices(codes.indices).shape == x.shape


def test_the_evaluation_counts_each_levels_codes_beside_the_paths():
    model = vaezoo.create("fashion-hrqvae").eval()
    x = torch.rand(6, 1, 28, 28)
    report = vaezoo.evaluate(model, x, batch_size=4, progress=False)
    with torch.no_grad():
        codes = model.encode(x).indices
    digits = model.quantizer.digits(codes).reshape(-1, 3)  # (images x positions, levels)
    per_level = [digits[:, level].unique().numel() / 8 for level in range(3)]
    assert report["level_usage"] == pytest.approx(min(per_level))
    assert report["codebook_usage"] == pytest.approx(codes.unique().numel() / 512)
    # a path is a combination: fewer of the 512 paths are used than of any level's 8 codes
    assert report["codebook_usage"] < report["level_usage"]
