"""Tiny parts for the training tests: an 8x8 generated dataset and two test objectives.

Imported by the tests and by ``training_entry.py`` (the script that subprocess and torchrun
tests run), so that every process registers the same parts.
"""

from __future__ import annotations

import torch

from vaezoo.data import ImageData
from vaezoo.parts.kinds import DATASETS, OBJECTIVES, register_dataset, register_objective
from vaezoo.parts.objectives import ELBO, BetaTCVAE, FactorVAEObjective
from vaezoo.passes import ModelOutput
from vaezoo.training import loop

TINY_DATASET = "test-tiny-8x8"


def _tiny(root=None, n_train: int = 256, n_test: int = 64) -> ImageData:
    # Smooth random blobs rather than white noise, so that a VAE has something to learn. The
    # label is the quarter of the image that is brightest: something a conditional model can use.
    gen = torch.Generator().manual_seed(0)
    coarse = torch.rand(n_train + n_test, 1, 4, 4, generator=gen)
    images = torch.nn.functional.interpolate(coarse, size=(8, 8), mode="bilinear", align_corners=False)
    labels = images.unfold(2, 4, 4).unfold(3, 4, 4).mean(dim=(-1, -2)).flatten(1).argmax(dim=1)
    images = (images * 255).round().to(torch.uint8)
    return ImageData(train_images=images[:n_train], test_images=images[n_train:], train_labels=labels[:n_train],
                     test_labels=labels[n_train:], classes=["top left", "top right", "bottom left", "bottom right"],
                     source="generated")


class MeanLatentELBO(ELBO):
    """The ELBO with z at the posterior mean: no sampling noise, so a 2-process DDP run and a
    single-process run see the same arithmetic (up to float summation order)."""

    def forward(self, model, x, y=None, context=None) -> ModelOutput:
        draw = model.latent_pass(x, torch.zeros(1, x.shape[0], *model.noise_shape), y)  # z at the means
        log_px, kl = draw.log_px[0], draw.kl()[0]
        recon, kl_mean = -log_px.mean(), kl.mean()
        return ModelOutput(loss=recon + context.kl_scale * kl_mean, terms={"recon": recon, "kl": kl_mean},
                           elbo=log_px - kl, z=draw.z[0], likelihood=draw.likelihood)


class MeanLatentTCVAE(BetaTCVAE):
    """beta-TCVAE with z at the posterior means: its estimate of q(z) is the only thing that a
    2-process run could compute differently from one process."""

    def noise(self, model, x):
        return torch.zeros(1, x.shape[0], *model.noise_shape)


class MeanLatentFactorVAE(FactorVAEObjective):
    """FactorVAE with z at the posterior means and, for the discriminator, even images as the
    joint and odd images with their dimensions reversed as the product: no sampling noise and
    no mixing across images, so a 2-process run shards the same arithmetic as one process."""

    def noise(self, model, x):
        return torch.zeros(1, x.shape[0], *model.noise_shape)

    def posterior_draw(self, model, x, y):
        return model.encode(x, y).mean

    def discriminator_batch(self, z):
        return z[0::2], z[1::2].flip(-1)


class NanAtStep(ELBO):
    """The ELBO, except that the loss of training step ``at_step`` (1-based) is NaN."""

    def __init__(self, at_step: int = 1):
        super().__init__()
        self.at_step, self.calls = at_step, 0

    def forward(self, model, x, y=None, context=None) -> ModelOutput:
        out = super().forward(model, x, y, context)
        if self.training:
            self.calls += 1
            if self.calls == self.at_step:
                self.spoil(out)
        return out

    def spoil(self, out: ModelOutput) -> None:
        out.loss = out.loss * float("nan")


class NanTermAtStep(NanAtStep):
    """The ELBO with a NaN in one reported term (not in the loss) at training step ``at_step``."""

    def __init__(self, at_step: int = 2):
        super().__init__(at_step)

    def spoil(self, out: ModelOutput) -> None:
        name = next(k for k in out.terms if k.startswith("kl"))
        out.terms[name] = out.terms[name] * float("nan")


def register() -> None:
    if TINY_DATASET not in DATASETS:
        register_dataset(TINY_DATASET)(_tiny)
    if "test-mean-latent-elbo" not in OBJECTIVES:
        register_objective("test-mean-latent-elbo")(MeanLatentELBO)
    if "test-mean-latent-tcvae" not in OBJECTIVES:
        register_objective("test-mean-latent-tcvae")(MeanLatentTCVAE)
    if "test-mean-latent-factor-vae" not in OBJECTIVES:
        register_objective("test-mean-latent-factor-vae")(MeanLatentFactorVAE)
    if "test-nan-at-step" not in OBJECTIVES:
        register_objective("test-nan-at-step")(NanAtStep)
    if "test-nan-term-at-step" not in OBJECTIVES:
        register_objective("test-nan-term-at-step")(NanTermAtStep)


TINY_FAMILIES = {  # a small model of each built-in family for the 8x8 data
    "vae": {"latent_dim": 4, "encoder": {"name": "mlp", "hidden": [32]}, "decoder": {"name": "mlp", "hidden": [32]}},
    "cvae": {"latent_dim": 4, "num_classes": 4, "features": 16, "head_hidden": 16, "conditional_prior": True,
             "encoder": {"name": "mlp", "hidden": [32]}, "decoder": {"name": "mlp", "hidden": [32]}},
    "hvae": {"latent_dims": [4, 3], "hidden": 16, "features": 16, "encoder": {"name": "gated-mlp", "hidden": [16]},
             "encoder_z1": {"name": "gated-mlp", "hidden": [], "head": "gated"},
             "decoder": {"name": "gated-mlp", "hidden": [16]}},
    "ladder": {"latent_dims": [4, 3, 2], "hidden": [32, 16, 8], "encoder": {"name": "mlp", "hidden": [32]},
               "decoder": {"name": "mlp", "hidden": [32]}},
    "categorical": {"latents": 3, "categories": 4, "encoder": {"name": "mlp", "hidden": [32]},
                    "decoder": {"name": "mlp", "hidden": [32]}, "temperature": {"anneal_rate": 0.05}},
    # 8x8 -> 4x4 -> 2x2: a grid of 2 x 2 codes from a codebook of 8
    "vqvae": {"grid": [2, 2], "code_dim": 4, "encoder": {"name": "conv", "channels": [8, 16]},
              "decoder": {"name": "conv", "channels": [8, 16]},
              "quantizer": {"name": "vq-ema", "codebook_size": 8, "dead_below": 0.5}},
}


def tiny_config(objective: str | dict = "elbo", family: str = "vae", **trainer) -> dict:
    """An experiment on the tiny data: 192 training images (256 - 64 held out), 6 steps per epoch."""
    return {
        "name": "tiny",
        "model": {"family": family, "input_shape": [1, 8, 8], **TINY_FAMILIES[family], "objective": objective},
        "data": {"dataset": TINY_DATASET, "val_size": 64},
        "trainer": {"epochs": 2, "batch_size": 32, "log_every": 2, "checkpoint_every": 4, "eval_batch_size": 64,
                    **trainer},
    }


def briefly_train(model, images: torch.Tensor, steps: int, lr: float = 2e-3, batch_size: int = 64):
    """``steps`` Adam steps on random batches of ``images``; returns the model.

    One thread: these ops are tiny, and on a busy 2-core machine a second OpenMP thread made
    such a loop ~90x slower (70 s instead of 0.8 s) by spinning against other processes.
    """
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in range(steps):
            loss = model(images[torch.randint(0, images.shape[0], (batch_size,))]).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    finally:
        torch.set_num_threads(threads)
    return model


def scripted_validation(monkeypatch, values):
    """Validation -ELBOs as scripted, epoch by epoch; every other pass (the test split) is real."""
    real, calls = loop.Trainer._evaluate, iter(values)

    def evaluate(self, run, split, tag, title):
        out = real(self, run, split, tag, title)
        return {**out, "neg_elbo": next(calls)} if tag == 1 else out

    monkeypatch.setattr(loop.Trainer, "_evaluate", evaluate)


class CrashAt:
    """A progress stream that stops the process, as a crash would, once a line starts with ``prefix``."""

    def __init__(self, prefix: str):
        self.prefix = prefix

    def write(self, text: str) -> int:
        if text.startswith(self.prefix):
            raise KeyboardInterrupt
        return len(text)

    def flush(self) -> None:
        pass
