"""Benchmark: vaezoo and pythae 0.1.2 trained side by side on the same model, data, budget and seed, both scored by vaezoo.

    pip install pythae==0.1.2
    python benchmarks/peer_pythae.py                       # every pair, 10 epochs each
    python benchmarks/peer_pythae.py --models iwae miwae --epochs 50 --record

For each model both libraries have, in one process and one after the other on one thread:

- the same architecture: the networks of a zoo config (the MLP 784-300-300-40 of the
  ``fashion-*40`` models), built once by vaezoo with the seed; pythae trains *those modules*,
  wrapped in its encoder and decoder classes, from the same initial weights, and the parts beyond
  them set to vaezoo's (flows, pseudo-inputs, discriminators, codebooks: ``pythae_flows.py``,
  ``pythae_parts.py``);
- the same data: vaezoo's split of Fashion-MNIST (55,000 training and 5,000 validation images,
  grey levels in [0, 1], Bernoulli likelihood / pythae's ``bce``; the autoencoders and the VQ-VAE,
  whose only loss in pythae is the summed squared error, on vaezoo's Gaussian of variance 1/2, the
  same loss up to a constant), the same batch size, optimizer (Adam, constant rate), epochs and seed;
- each library's own selection on the validation images (vaezoo: the lowest validation -ELBO, or
  loss for an autoencoder; pythae: the lowest validation loss, its training objective), the
  selected epochs recorded;
- one scoring, vaezoo's, of both: pythae's selected weights are loaded into the vaezoo model
  (the same modules, so nothing is converted), then the IWAE NLL and -ELBO on the first
  ``--nll-images`` test images with k = ``--k``, the Fréchet distance of 10,000 samples in
  ``fashion-v1`` features, and the linear-probe accuracy; an autoencoder has no bound: its test
  squared error instead, and the FD through a 10-component mixture fitted to its codes as well;
  a VQ-VAE has neither bound nor samples before a code prior is fitted: its squared error, the
  usage and perplexity of its codebook, and the probe.

Prints one row per model with both libraries' figures, the difference, and the training time
ratio (noisy: the machine is shared; the figures, not the times, are the point). ``--record``
writes the results with their protocol to ``registry/references/peer_pythae.json``, which
``python -m vaezoo.maintenance.models_doc`` renders in docs/models.md.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import logging
import math
import os

# pythae's per-batch progress bars, thousands of lines: tqdm reads this once, when it is first imported
os.environ.setdefault("TQDM_DISABLE", "1")

import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Optional

import torch

import vaezoo
from pythae_flows import flows_from_pythae, flows_to_pythae, iaf_from_pythae, iaf_to_pythae
from pythae_networks import pythae_networks
from pythae_parts import (codebook_from_pythae, codebook_to_pythae, critic_for_pythae, factor_discriminator_to_pythae,
                          image_critic_for_pythae, vamp_from_pythae, vamp_to_pythae)
from vaezoo.data.splits import load_splits
from vaezoo.evaluation.codes import evaluate_codes
from vaezoo.models import VQVAE, PointLatents
from vaezoo.parts.priors import VampPrior
from vaezoo.maintenance.peer_table import peer_path

RESULTS = peer_path()


# pythae's autoencoders (AE, WAE_MMD, RAE_*) have one reconstruction loss, the summed squared error:
# a fixed Gaussian with variance 1/2 is that loss up to a constant, so both libraries follow one gradient
SQUARED_ERROR = {"name": "gaussian", "variance": "fixed", "sigma": 0.5 ** 0.5}


@dataclass(frozen=True)
class Pair:
    """A model both libraries have: the vaezoo config it trains, and pythae's model with its settings."""

    config: str  # a zoo config: the architecture, data and optimizer
    objective: dict[str, Any]  # vaezoo's objective, replacing the config's
    pythae_model: str  # the class in pythae.models
    pythae_settings: dict[str, Any]  # its config's fields beyond the shared ones
    pythae_config: str = ""  # its config class, when not the model's name + "Config"
    model: Optional[dict[str, Any]] = None  # vaezoo model settings (the likelihood, ...), replacing the config's
    select_from: int = 1  # vaezoo's first selectable epoch: after a warm-up that changes the objective
    trainer: Optional[dict[str, Any]] = None  # vaezoo trainer settings, replacing the config's


PAIRS = {
    "vae": Pair("fashion-iwae40", {"name": "elbo"}, "VAE", {}),
    "beta": Pair("fashion-beta40", {"name": "elbo", "beta": 4.0}, "BetaVAE", {"beta": 4.0}),
    # both estimate the total correlation by minibatch-weighted sampling over the 55,000 training images
    "betatc": Pair("fashion-betatc40", {"name": "beta-tcvae", "beta": 6.0}, "BetaTCVAE",
                   {"alpha": 1.0, "beta": 6.0, "gamma": 1.0, "use_mss": False}),
    # the capacity reaches 50 nats after 5 of the 10 epochs: pythae in five epoch-long stairs
    # (C * epoch / (warmup_epoch + 1)), vaezoo on a line over the same 2,750 steps; vaezoo selects
    # after it, as its config does after its own 25 epochs (the -ELBO prefers a model whose KL is
    # still below the capacity). pythae holds each image's KL at C: per_image
    "annealed": Pair("fashion-annealed40", {"name": "annealed-capacity", "gamma": 10.0, "capacity_max": 50.0,
                                            "capacity_steps": 2750, "per_image": True},
                     "DisentangledBetaVAE", {"beta": 10.0, "C": 50.0, "warmup_epoch": 4}, select_from=6),
    "iwae": Pair("fashion-iwae40", {"name": "iwae", "k": 5}, "IWAE", {"number_samples": 5}),
    # pythae 0.1.2's MIWAE and PIWAE normalize the weights over their gradient-estimates axis and average
    # over the samples axis: its (number_gradient_estimates, number_samples) = (K, M) is MIWAE(M, K)
    "miwae": Pair("fashion-miwae40", {"name": "miwae", "m": 2, "k": 4}, "MIWAE",
                  {"number_gradient_estimates": 4, "number_samples": 2}),
    "piwae": Pair("fashion-piwae40", {"name": "piwae", "m": 2, "k": 4}, "PIWAE",
                  {"number_gradient_estimates": 4, "number_samples": 2}),
    "ciwae": Pair("fashion-ciwae40", {"name": "ciwae", "k": 8, "beta": 0.5}, "CIWAE",
                  {"number_samples": 8, "beta": 0.5}),
    "infovae": Pair("fashion-infovae40", {"name": "info-vae", "alpha": 0.0, "lam": 1000.0}, "INFOVAE_MMD",
                    {"kernel_choice": "imq", "alpha": 0.0, "lbd": 1000.0, "kernel_bandwidth": 1.0}, "INFOVAE_MMD_Config"),
    "svae": Pair("fashion-svae10", {"name": "elbo"}, "SVAE", {}),
    "pvae": Pair("fashion-pvae10", {"name": "elbo"}, "PoincareVAE",
                 {"prior_distribution": "wrapped_normal", "posterior_distribution": "wrapped_normal", "curvature": 1.0}),
    "planar": Pair("fashion-planar40", {"name": "elbo"}, "VAE_LinNF", {"flows": ["Planar"] * 10}, "VAE_LinNF_Config"),
    "radial": Pair("fashion-radial40", {"name": "elbo"}, "VAE_LinNF", {"flows": ["Radial"] * 10}, "VAE_LinNF_Config"),
    # the same uniform mixture of the encoder's posteriors at 500 pseudo-inputs, the config's KL warm-up
    # off on both sides (pythae's linear_scheduling_steps is stairs of epochs, vaezoo's a line of steps)
    "vamp": Pair("fashion-vamp40", {"name": "elbo"}, "VAMP", {"number_components": 500, "linear_scheduling_steps": 0},
                 trainer={"kl_warmup_epochs": 0}),
    # five hidden layers: pythae's FactorVAE builds that discriminator and takes no other
    "factorvae": Pair("fashion-factorvae", {"name": "factor-vae", "gamma": 6.4, "hidden": [1000] * 5}, "FactorVAE",
                      {"gamma": 6.4}),
    # pythae's defaults for the dynamics but the config's step size, 3 tempered leapfrog steps, neither
    # the step size nor beta0 trained (pythae learns one step size, vaezoo one per dimension)
    "hamiltonian": Pair("fashion-hamiltonian40", {"name": "elbo"}, "HVAE",
                        {"n_lf": 3, "eps_lf": 0.01, "beta_zero": 0.3, "learn_eps_lf": False, "learn_beta_zero": False},
                        model={"step_size": 0.01, "beta_zero": 0.3, "learn_step_size": False}),
    # the similarity and the KL weighed alike: pythae's 1 : beta at beta = 1/784 is vaezoo's default
    # 784 : 1 (the similarity as a sum over pixels), divided by 784
    "msssim": Pair("fashion-msssim40", {"name": "msssim-vae", "beta": 1.0, "window_size": 11}, "MSSSIM_VAE",
                   {"beta": 1 / 784, "window_size": 11}),
    # pythae's IAF: two MADE blocks of three 128-unit ReLU layers, the affine step; the config's KL
    # warm-up and weight average off (pythae has neither)
    "iaf": Pair("fashion-vae-iaf", {"name": "elbo"}, "VAE_IAF", {"n_made_blocks": 2, "n_hidden_in_made": 3,
                                                                 "hidden_size": 128}, "VAE_IAF_Config",
                model={"posterior": {"name": "iaf", "blocks": 2, "hidden": [128, 128, 128], "step": "affine",
                                     "activation": "relu", "first_order": "reversed"}},
                trainer={"kl_warmup_epochs": 0, "ema_decay": None}),
    # pythae's VAEGAN has no pixel likelihood term: vaezoo's pixel_weight 0 (its config's is 1); the same
    # discriminator (512-256, features at layer 2) and the same balance; what differs is in the note
    "vaegan": Pair("fashion-vaegan40", {"name": "vae-gan", "scale": 0.5, "hidden": [512, 256], "feature_layer": 2,
                                        "balance": True, "equilibrium": 0.68, "margin": 0.4, "pixel_weight": 0.0},
                   "VAEGAN", {"adversarial_loss_scale": 0.5, "reconstruction_layer": 2, "equilibrium": 0.68,
                              "margin": 0.4}),
    # pythae's VQ-VAE has the summed squared error only, and its commitment loss is a mean over every
    # element of the 7 x 7 x 32 grid where vaezoo's sums over an image's: 0.25 / 1568 is pythae's 0.25.
    # Both EMA codebooks start at vaezoo's codes (N(0, I)) without its data init and dead-code restarts
    "vqvae": Pair("fashion-vqvae", {"name": "vq"}, "VQVAE", {"num_embeddings": 512, "commitment_loss_factor": 0.25,
                                                            "use_ema": True, "decay": 0.99},
                  model={"likelihood": SQUARED_ERROR,
                         "quantizer": {"name": "vq-ema", "codebook_size": 512, "decay": 0.99,
                                       "commitment": 0.25 / (7 * 7 * 32), "dead_below": 0.0, "init": "normal"}}),
    "ae": Pair("fashion-ae", {"name": "ae"}, "AE", {}, model={"likelihood": SQUARED_ERROR}),
    # the same multi-scale inverse multiquadratic kernel (C = 2 d s for s in 0.1 ... 10)
    "wae": Pair("fashion-wae", {"name": "wae-mmd", "lam": 10.0, "kernel": "imq"}, "WAE_MMD",
                {"kernel_choice": "imq", "reg_weight": 10.0, "kernel_bandwidth": 1.0}, "WAE_MMD_Config",
                model={"likelihood": SQUARED_ERROR}),
    # pythae puts the decoder's L2 in Adam's weight_decay, the gradient of (reg_weight / 2) ||theta||^2:
    # vaezoo's loss term lam ||theta||^2 at half the weight is the same gradient
    "rae-l2": Pair("fashion-rae-l2", {"name": "rae", "regularizer": "l2", "beta": 1e-4, "lam": 0.5e-7}, "RAE_L2",
                   {"embedding_weight": 1e-4, "reg_weight": 1e-7}, "RAE_L2_Config", model={"likelihood": SQUARED_ERROR}),
    # the same weights on two definitions of the penalty (the docs table's note says which)
    "rae-gp": Pair("fashion-rae-gp", {"name": "rae", "regularizer": "gp", "beta": 1e-4, "lam": 1e-7}, "RAE_GP",
                   {"embedding_weight": 1e-4, "reg_weight": 1e-7}, "RAE_GP_Config", model={"likelihood": SQUARED_ERROR}),
    # the deterministic encoder (the paper's first variant) on the config's Bernoulli likelihood, which
    # pythae's bce is; vaezoo's critic of two 1000-unit layers is pythae's discriminator
    "aae": Pair("fashion-aae", {"name": "aae", "scale": 0.5, "hidden": [1000, 1000], "deterministic": True},
                "Adversarial_AE", {"adversarial_loss_scale": 0.5, "reconstruction_loss_scale": 1.0,
                                   "deterministic_posterior": True}, "Adversarial_AE_Config"),
}
COUPLED_OPTIMIZERS = ("RAE_L2", "PIWAE")  # pythae trains these with an encoder and a decoder optimizer
ADVERSARIAL = ("Adversarial_AE", "FactorVAE")  # ... and these with a model and a discriminator optimizer
DECODER_LOGITS = ("HVAE",)  # pythae reads these decoders' outputs as Bernoulli logits, the others' as the mean


def experiment(pair: Pair, epochs: int, seed: int) -> dict[str, Any]:
    config = vaezoo.get_config(pair.config).model_dump(mode="json")
    config["model"]["objective"] = pair.objective
    config["model"].update(pair.model or {})
    # the protocol's budget whatever the config's own: a constant rate, 5,000 validation images,
    # the pair's own warm-up (a config's is sized to its own, longer run)
    config["data"].update(val_size=5000, binarize="none")  # pythae's pipeline trains on fixed tensors
    # float32 as pythae trains: vaezoo's "auto" would take bf16 for a convolutional model on a CPU with bf16 units
    config["trainer"].update(epochs=epochs, seed=seed, select="best_val", select_from=min(pair.select_from, epochs),
                             test="never", scheduler={"name": "constant"}, precision="fp32", **(pair.trainer or {}))
    config["name"] = f"peer-{pair.pythae_model.lower()}"
    return config


def train_vaezoo(config: dict[str, Any], folder: Path) -> tuple[torch.nn.Module, float, int]:
    started = time.perf_counter()
    _, final = vaezoo.train(config, out=folder, progress=False)
    return vaezoo.load(folder), time.perf_counter() - started, final["selected_epoch"]


def pythae_model(pair: Pair, model) -> torch.nn.Module:
    """pythae's model of ``pair`` around vaezoo ``model``'s own encoder and decoder (and flows), so that
    both start from the same weights."""
    import pythae.models

    encoder, decoder = pythae_networks(model, logits=pair.pythae_model in DECODER_LOGITS)
    config_class = getattr(pythae.models, pair.pythae_config or f"{pair.pythae_model}Config")
    # a VQ-VAE's code size is its code_dim (pythae reads it off the encoder's output)
    shared = {"input_dim": tuple(model.input_shape), "latent_dim": getattr(model, "latent_dim", None)
              or model.config.code_dim}
    if "reconstruction_loss" in {field.name for field in dataclasses.fields(config_class)}:
        shared["reconstruction_loss"] = "bce"  # the VAEs' choice; the autoencoders have the squared error only
    networks = {"encoder": encoder, "decoder": decoder}
    if pair.pythae_model == "Adversarial_AE":
        networks["discriminator"] = critic_for_pythae(model.objective.discriminator)
    elif pair.pythae_model == "VAEGAN":
        networks["discriminator"] = image_critic_for_pythae(model.objective.discriminator)
    peer = getattr(pythae.models, pair.pythae_model)(config_class(**shared, **pair.pythae_settings), **networks)
    # the parts beyond the encoder and decoder start where vaezoo's start
    if pair.pythae_model == "VAE_IAF":
        iaf_to_pythae(model.flow.steps, peer.iaf_flow)
    elif getattr(model, "flow", None) is not None:
        flows_to_pythae(model.flow.steps, peer.net)
    if isinstance(getattr(model, "prior", None), VampPrior):
        vamp_to_pythae(model.prior, peer)
    if pair.pythae_model == "FactorVAE":
        factor_discriminator_to_pythae(model.objective.discriminator, peer)
    if isinstance(model, VQVAE):
        codebook_to_pythae(model.quantizer, peer)
    return peer


def _validation_losses():
    """A pythae callback keeping each epoch's validation loss, the figure its trainer selects on."""
    from pythae.trainers.training_callbacks import TrainingCallback

    class ValidationLosses(TrainingCallback):
        def __init__(self):
            self.by_epoch: dict[int, float] = {}

        def on_log(self, training_config, logs, **kwargs):
            self.by_epoch[kwargs["global_step"]] = logs["eval_epoch_loss"]

        def selected_epoch(self) -> int:  # the first of the lowest, as pythae's strict < keeps it
            return min(self.by_epoch, key=lambda epoch: (self.by_epoch[epoch], epoch))

    return ValidationLosses()


def train_pythae(pair: Pair, config: dict[str, Any], folder: Path) -> tuple[torch.nn.Module, float, int]:
    """pythae's pipeline on the vaezoo model's own encoder and decoder modules, from the weights
    vaezoo starts from with this seed; its selected weights loaded back into a vaezoo model, its
    selected epoch."""
    from pythae.pipelines import TrainingPipeline
    from pythae.trainers import (AdversarialTrainerConfig, BaseTrainerConfig, CoupledOptimizerAdversarialTrainerConfig,
                                 CoupledOptimizerTrainerConfig)

    torch.manual_seed(config["trainer"]["seed"])
    model = vaezoo.create(config)
    peer = pythae_model(pair, model)
    trainer, recipe = config["trainer"], vaezoo.get_config(config)
    critic = recipe.trainer.optimizers.get("discriminator")  # the config's, or its objective's default
    shared = dict(output_dir=str(folder), num_epochs=trainer["epochs"],
                  per_device_train_batch_size=trainer["batch_size"], per_device_eval_batch_size=trainer["batch_size"],
                  seed=trainer["seed"], no_cuda=True)
    if pair.pythae_model in COUPLED_OPTIMIZERS:  # its pipeline adds RAE_L2's decoder weight decay itself
        training = CoupledOptimizerTrainerConfig(encoder_learning_rate=trainer["optimizer"]["lr"],
                                                 decoder_learning_rate=trainer["optimizer"]["lr"], **shared)
    elif pair.pythae_model in ADVERSARIAL:
        training = AdversarialTrainerConfig(autoencoder_learning_rate=trainer["optimizer"]["lr"],
                                            discriminator_learning_rate=critic.lr,
                                            discriminator_optimizer_params={"betas": tuple(critic.betas)}, **shared)
    elif pair.pythae_model == "VAEGAN":  # an encoder, a decoder and a discriminator optimizer
        training = CoupledOptimizerAdversarialTrainerConfig(
            encoder_learning_rate=trainer["optimizer"]["lr"], decoder_learning_rate=trainer["optimizer"]["lr"],
            discriminator_learning_rate=critic.lr, discriminator_optimizer_params={"betas": tuple(critic.betas)},
            **shared)
    else:
        training = BaseTrainerConfig(learning_rate=trainer["optimizer"]["lr"], optimizer_cls="Adam", **shared)
    splits = load_splits(recipe.data)
    started = time.perf_counter()
    pipeline = TrainingPipeline(training_config=training, model=peer)
    losses = _validation_losses()
    pipeline(train_data=splits.train.float() / 255, eval_data=splits.val.float() / 255, callbacks=[losses])
    elapsed = time.perf_counter() - started
    best = pipeline.trainer._best_model  # pythae keeps the epoch with the lowest validation loss
    selected = copy.deepcopy(model)
    selected.encoder.load_state_dict(best.encoder.net.state_dict())
    selected.decoder.load_state_dict(best.decoder.net.state_dict())
    if pair.pythae_model == "VAE_IAF":
        iaf_from_pythae(best.iaf_flow, selected.flow.steps)
    elif getattr(selected, "flow", None) is not None:
        flows_from_pythae(best.net, selected.flow.steps)
    if isinstance(getattr(selected, "prior", None), VampPrior):
        vamp_from_pythae(best, selected.prior)
    if isinstance(selected, VQVAE):
        codebook_from_pythae(best, selected.quantizer)
    return selected.eval(), elapsed, losses.selected_epoch()


def score(model, data, nll_images: int, k: int, seed: int) -> dict[str, float]:
    probe = vaezoo.linear_probe(model, data, progress=False)["probe-accuracy"]
    if isinstance(model, VQVAE):  # codes: no density before a code prior is fitted, no FD without one
        codes = evaluate_codes(model, load_splits(data).test, progress=False, metrics=["mse"]).metrics
        pixels = math.prod(model.input_shape)  # the per-pixel MSE of the same pass, summed over an image's pixels
        return {"squared_error": codes["mse"].value * pixels,
                "codebook_usage": codes["codebook_usage"].value, "perplexity": codes["perplexity"].value,
                "probe-accuracy": probe}
    quality = vaezoo.sample_quality(model, data, seed=seed, reconstructions=False, progress=False)["fd-fashion-v1"]
    if isinstance(model, PointLatents):  # no density: the test images' squared error, samples through a mixture too
        test = load_splits(data).test.float() / 255
        with torch.no_grad():
            mean = torch.cat([model.decode(model.encode(x).mean).mean for x in test.split(500)])
        mixture = vaezoo.sample_quality(model, data, prior="gmm", seed=seed, reconstructions=False, progress=False)
        return {"squared_error": float((mean - test).pow(2).flatten(1).sum(1).mean()), "fd-fashion-v1": quality,
                "fd-gmm-fashion-v1": mixture["fd-fashion-v1@gmm"], "probe-accuracy": probe}
    test = load_splits(data).test[:nll_images]
    bounds = vaezoo.evaluate(model, test, iw_samples=k, elbo_samples=10, precision="float32", seed=seed,
                             progress=False, metrics=[])
    return {"iwae_nll": bounds["iwae_nll"], "neg_elbo": bounds["neg_elbo"], "fd-fashion-v1": quality,
            "probe-accuracy": probe}


def run_pair(name: str, pair: Pair, args, scratch: Path, say: Callable[[str], None]) -> dict[str, Any]:
    config = experiment(pair, args.epochs, args.seed)
    data = vaezoo.get_config(config).data
    results = {}
    for library, train in (("vaezoo", lambda: train_vaezoo(config, scratch / f"{name}-vaezoo")),
                           ("pythae", lambda: train_pythae(pair, config, scratch / f"{name}-pythae"))):
        say(f"{name}: training with {library} ({args.epochs} epochs)")
        model, seconds, epoch = train()
        say(f"{name}: scoring {library}'s model (epoch {epoch})")
        results[library] = {**score(model, data, args.nll_images, args.k, args.seed), "train_s": seconds,
                            "selected_epoch": epoch}
    return {"model": name, "config": pair.config, "vaezoo_objective": pair.objective,
            "pythae_model": pair.pythae_model, "pythae_settings": pair.pythae_settings, **results}


def print_rows(rows: list[dict[str, Any]]) -> None:
    print(f"{'model':8} {'metric':17} {'vaezoo':>10} {'pythae':>10} {'pythae - vaezoo':>16}")
    for row in rows:
        for metric in (m for m in row["vaezoo"] if m not in ("train_s", "selected_epoch")):
            ours, theirs = row["vaezoo"][metric], row["pythae"][metric]
            print(f"{row['model']:8} {metric:17} {ours:10.3f} {theirs:10.3f} {theirs - ours:+16.3f}")
        print(f"{row['model']:8} {'selected epoch':17} {row['vaezoo']['selected_epoch']:10d} "
              f"{row['pythae']['selected_epoch']:10d}")
        ratio = row["pythae"]["train_s"] / row["vaezoo"]["train_s"]
        print(f"{row['model']:8} {'train time':17} {row['vaezoo']['train_s']:9.0f}s {row['pythae']['train_s']:9.0f}s "
              f"{'x' + format(ratio, '.2f'):>16}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", choices=sorted(PAIRS), default=list(PAIRS))
    parser.add_argument("--epochs", type=int, default=10, help="training epochs, both libraries (default 10)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--nll-images", type=int, default=1000, help="test images for the bounds (default 1000)")
    parser.add_argument("-k", type=int, default=1000, help="importance samples of the NLL (default 1000)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--record", action="store_true", help=f"write the results to {RESULTS}")
    args = parser.parse_args(argv)
    try:
        import pythae  # noqa: F401 - the peer must be there before anything trains
        logging.getLogger("pythae").setLevel(logging.WARNING)
    except ImportError:
        parser.error("pythae is not installed: pip install pythae==0.1.2")
    torch.set_num_threads(args.threads)
    # pythae's HVAE scores grey levels with a torch Bernoulli, which refuses values other than 0 and 1
    # unless distributions skip that check; the log-density is then the cross-entropy bce takes
    torch.distributions.Distribution.set_default_validate_args(False)

    def say(text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)

    protocol = {
        "data": "Fashion-MNIST, vaezoo's split (55,000 training, 5,000 validation), grey levels in [0, 1], "
                "Bernoulli likelihood (pythae: reconstruction_loss bce); the autoencoders (pythae's AE, WAE_MMD, "
                "RAE_L2, RAE_GP) and the VQ-VAE on the summed squared error, vaezoo's Gaussian of variance 1/2",
        "training": f"{args.epochs} epochs, the config's batch, Adam at the config's rate, constant, float32, seed "
                    f"{args.seed}, each library's selection on the validation images, {args.threads} thread(s)",
        "scoring": f"vaezoo's, for both: IWAE NLL and -ELBO (10 draws) on the first {args.nll_images} test "
                   f"images with k = {args.k}, float32; FD of 10,000 samples (fashion-v1 features, seed "
                   f"{args.seed}) against the 10,000 test images; the linear probe's test accuracy; for an "
                   f"autoencoder (no density) the squared error per test image, of all 10,000, instead of the "
                   f"bounds, and the FD through a 10-component mixture fitted to the training codes too; for a VQ-VAE "
                   f"the squared error, the codebook's usage and perplexity over the 10,000 test images and the probe",
        "versions": {"vaezoo": vaezoo.__version__, "pythae": metadata.version("pythae"), "torch": torch.__version__,
                     "python": platform.python_version()},
        # every row of the table under this budget (each pair is trained and scored on its own)
        "command": f"python benchmarks/peer_pythae.py --epochs {args.epochs} --seed {args.seed} "
                   f"--nll-images {args.nll_images} -k {args.k} --threads {args.threads} --record",
        "date": time.strftime("%Y-%m-%d"),
    }
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for name in args.models:
            rows.append(run_pair(name, PAIRS[name], args, Path(scratch), say))
            if args.record:  # each pair as soon as it is scored: a crash later loses nothing
                record(protocol, rows[-1])
    print_rows(rows)
    if args.record:
        print(f"wrote {RESULTS}")
    return 0


def record(protocol: dict[str, Any], row: dict[str, Any]) -> None:
    """``row`` into RESULTS, replacing the same model's; rows measured under another budget are dropped
    (they do not compare), the hand-written ``notes`` are kept."""
    old = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    same_budget = old.get("protocol", {}).get("training") == protocol["training"]
    kept = [r for r in old.get("rows", []) if r["model"] != row["model"]] if same_budget else []
    notes = old.get("notes", {})
    RESULTS.write_text(json.dumps({"protocol": protocol, "rows": kept + [row], "notes": notes}, indent=1) + "\n")


if __name__ == "__main__":
    sys.exit(main())
