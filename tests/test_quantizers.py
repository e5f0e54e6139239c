"""The quantizer parts on their own: straight-through gradients, the EMA codebook against a hand
computation, dead-code restarts, FSQ's codebook, saved state, and refused parameters."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError
from safetensors.torch import load_file, save_file

from vaezoo.parts import QUANTIZERS
from vaezoo.parts.quantizers import FiniteScalarQuantizer, VectorQuantizerEMA


def vq(dim=1, **params) -> VectorQuantizerEMA:
    return QUANTIZERS.get("vq-ema")(dim, **params)


def test_both_are_registered_parts():
    import vaezoo

    assert {"vq-ema", "fsq"} <= set(QUANTIZERS)
    assert vaezoo.register_quantizer is vaezoo.parts.register_quantizer


@pytest.mark.parametrize("build", [lambda: vq(3, codebook_size=8), lambda: FiniteScalarQuantizer(3, levels=[5, 4, 3])])
def test_the_straight_through_gradient_reaches_the_encoder(build):
    quantizer = build().train()
    z = torch.randn(2, 3, 4, 4, requires_grad=True)
    out = quantizer(z)
    weights = torch.randn_like(out.z_q)
    (out.z_q * weights).sum().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
    if isinstance(quantizer, VectorQuantizerEMA):  # the identity: the decoder's gradient, unchanged
        torch.testing.assert_close(z.grad, weights)


def test_the_ema_update_matches_a_hand_computation():
    q = vq(1, codebook_size=2, decay=0.5, dead_below=0.0, epsilon=1e-5, init="normal").train()
    q.embedding.copy_(torch.tensor([[0.0], [10.0]]))
    q.embed_sum.copy_(q.embedding)
    q.cluster_size.fill_(1.0)
    z = torch.tensor([1.0, 2.0, 9.0]).reshape(3, 1)  # two vectors go to code 0, one to code 1
    out = q(z)
    assert out.indices.tolist() == [0, 0, 1]
    # N = 0.5 * 1 + 0.5 * n ; m = 0.5 * e + 0.5 * sum
    counts, sums = torch.tensor([1.5, 1.0]), torch.tensor([[0.5 * 0 + 0.5 * 3.0], [0.5 * 10 + 0.5 * 9.0]])
    torch.testing.assert_close(q.cluster_size, counts)
    torch.testing.assert_close(q.embed_sum, sums)
    total, k, eps = counts.sum(), 2, 1e-5
    smoothed = (counts + eps) / (total + k * eps) * total
    torch.testing.assert_close(q.embedding, sums / smoothed[:, None])
    # the commitment loss is beta * ||z - sg(e)||^2 per image (before the update moved the codes)
    assert out.terms["commitment"].item() == pytest.approx(0.25 * (1 + 4 + 1) / 3)


def test_a_dead_code_is_restarted_at_a_vector_of_the_batch():
    torch.manual_seed(0)
    q = vq(2, codebook_size=4, dead_below=0.5, init="normal").train()
    q.embedding.copy_(torch.tensor([[0.0, 0.0], [1.0, 1.0], [100.0, 100.0], [-1.0, 1.0]]))
    q.embed_sum.copy_(q.embedding)
    q.cluster_size.copy_(torch.tensor([5.0, 5.0, 0.01, 5.0]))  # code 2 is far from everything: dead
    z = torch.randn(64, 2) * 0.3
    q(z)
    assert q.embedding[2].norm() < 5  # moved in among the data
    assert any(torch.allclose(q.embed_sum[2], row) for row in z)  # at one of the batch's vectors
    assert q.cluster_size[2] == pytest.approx(1.0)  # counted once, then averaged like the others
    alive = vq(2, codebook_size=4, dead_below=0.0, init="normal").train()
    alive.embedding.copy_(torch.tensor([[0.0, 0.0], [1.0, 1.0], [100.0, 100.0], [-1.0, 1.0]]))
    alive.embed_sum.copy_(alive.embedding)
    alive.cluster_size.copy_(torch.tensor([5.0, 5.0, 0.01, 5.0]))
    before = alive.embed_sum[2].clone()
    alive(z)
    assert torch.allclose(alive.embed_sum[2], before * alive.decay)  # dead_below 0: never restarted


def test_the_codebook_starts_at_the_first_training_batch_and_encoding_never_moves_it():
    torch.manual_seed(0)
    q = vq(2, codebook_size=16)
    z = torch.randn(64, 2) * 0.01 + 50.0  # far from N(0, I): a normal codebook would use one code
    before = q.state_dict()
    q.eval()(z)
    q.train()(z, update=False)
    for key, value in q.state_dict().items():  # neither eval mode nor update=False touches the state
        assert torch.equal(value, before[key]), key
    out = q(z)
    assert bool(q.initialized)
    assert (q.embedding - 50.0).abs().max() < 1.0  # every code moved in among the data
    assert out.stats["usage"] > 0.5
    normal = vq(2, codebook_size=16, init="normal").train()
    assert normal(z).stats["usage"] == pytest.approx(1 / 16)


def test_fsq_levels_give_the_stated_codebook_and_every_code_round_trips():
    q = FiniteScalarQuantizer(3, levels=[8, 5, 3])
    assert q.codebook_size == 120
    indices = torch.arange(120).reshape(1, 120)  # a (B=1, grid=120) map of every code
    vectors = q.lookup(indices)
    assert vectors.shape == (1, 3, 120) and vectors.abs().max() <= 1
    assert torch.equal(q.vectors_to_indices(vectors), indices)  # each code's vector is that code
    # and a latent at each code's vector (through the inverse of the bound) quantizes to it
    out = q(torch.atanh(vectors.clamp(-0.999, 0.999)))
    assert torch.equal(out.indices, indices)
    z = torch.randn(16, 3, 6, 6) * 4
    assert q(z).indices.unique().numel() <= 120


@pytest.mark.parametrize("levels", [[2, 2], [3, 2, 4], [8, 5, 3]])
def test_fsq_uses_exactly_its_levels_even_two(levels):
    q = FiniteScalarQuantizer(len(levels), levels=levels)
    out = q(torch.rand(20000, len(levels), generator=torch.Generator().manual_seed(0)) * 6 - 3)
    assert torch.isfinite(out.z_q).all()
    assert out.indices.unique().numel() == q.codebook_size  # every code reachable, none outside


def test_the_codebook_is_saved_and_continues_bit_for_bit(tmp_path):
    torch.manual_seed(0)
    q = vq(4, codebook_size=8).train()
    for _ in range(3):
        q(torch.randn(32, 4))
    save_file(q.state_dict(), str(tmp_path / "q.safetensors"))
    assert set(q.state_dict()) == {"embedding", "cluster_size", "embed_sum", "initialized"}
    restored = vq(4, codebook_size=8).train()
    restored.load_state_dict(load_file(str(tmp_path / "q.safetensors")))
    batch = torch.randn(32, 4)
    torch.manual_seed(1)
    q(batch)
    torch.manual_seed(1)
    restored(batch)
    for key, value in q.state_dict().items():
        assert torch.equal(restored.state_dict()[key], value), key


@pytest.mark.parametrize("build, field, message", [
    (lambda: vq(4, codebook_size=0), "codebook_size", "greater than 0"),
    (lambda: vq(4, decay=1.0), "decay", "less than 1"),
    (lambda: FiniteScalarQuantizer(2, levels=[8, 2.5]), "levels.1", "fractional part"),
    (lambda: FiniteScalarQuantizer(2, levels=[8, 1]), "levels.1", "greater than or equal to 2"),
    (lambda: FiniteScalarQuantizer(2, levels=[]), "levels", "at least 1 item"),
])
def test_bad_quantizer_parameters_are_refused_naming_the_field(build, field, message):
    with pytest.raises(ValidationError) as info:
        build()
    text = str(info.value)
    assert field in text and message in text


def test_fsq_needs_one_level_per_latent_channel():
    with pytest.raises(ValueError, match=r"the latent grid has 3 channels but levels has 4 entries"):
        FiniteScalarQuantizer(3, levels=[8, 5, 5, 5])


def _ddp_worker(rank: int, port: int, out: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        torch.manual_seed(0)  # the same initial codebook on both ranks
        q = vq(3, codebook_size=6, dead_below=0.0, init="normal").train()
        data = torch.randn(40, 3, generator=torch.Generator().manual_seed(1))
        for step in range(3):
            q(data[rank * 20:(rank + 1) * 20] + step)  # each rank quantizes its half of the batch
        save_file(q.state_dict(), f"{out}/rank{rank}.safetensors")
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not built in")
def test_under_ddp_the_codebook_statistics_are_those_of_the_global_batch(tmp_path):
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_ddp_worker, args=(port, str(tmp_path)), nprocs=2, join=True)
    rank0, rank1 = (load_file(str(tmp_path / f"rank{r}.safetensors")) for r in (0, 1))
    torch.manual_seed(0)
    single = vq(3, codebook_size=6, dead_below=0.0, init="normal").train()
    data = torch.randn(40, 3, generator=torch.Generator().manual_seed(1))
    for step in range(3):
        single(data + step)  # one process, the whole batch
    for key, value in single.state_dict().items():
        torch.testing.assert_close(rank0[key], rank1[key], rtol=0, atol=0, msg=key)  # the same codebook everywhere
        torch.testing.assert_close(rank0[key], value, msg=key)  # and the single process's
