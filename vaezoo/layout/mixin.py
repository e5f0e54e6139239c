"""``save_pretrained`` and ``push_to_hub`` for every model family, as template methods.

Like ``huggingface_hub.PyTorchModelHubMixin``, the mixin sits below the models: it knows the
folder layout and the Hub client, and asks the model only for what the contract gives (its
``config``, ``published_state_dict``, ``num_parameters`` and ``sample``). Loading needs the factory that
builds a family from its config, so it lives above the models, in :mod:`vaezoo.hub`.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

import torch

from .._version import __version__
from ..png import save_image_png
from .card import SAMPLES_NAME, render_card
from .client import PushResult, push_folder
from .files import CARD_NAME, CONFIG_NAME, CONFIG_VERSION, WEIGHTS_NAME, write_config, write_weights

__all__ = ["HubMixin", "save_samples"]


class HubMixin:
    """What every vaezoo model inherits to write its Hub-layout folder and to push it."""

    def save_pretrained(
        self,
        directory: str | Path,
        *,
        experiment: Any = None,
        metrics: Any = None,
        training: Optional[Mapping[str, Any]] = None,
        samples: int | torch.Tensor | None = None,
        dtype: Optional[torch.dtype] = None,
        repo_id: Optional[str] = None,
        license: Optional[str] = None,
        tags: Iterable[str] = (),
    ) -> Path:
        """Write ``config.json``, ``model.safetensors`` and a ``README.md`` model card to ``directory``.

        ``experiment``: the ExperimentConfig it was trained from (its data and trainer sections are
        recorded). ``metrics``: ``{name: value}`` or records with their protocol. ``training``: what
        the run took (epochs, time, hardware). ``samples``: an image batch or a count to draw from
        the model, saved as ``samples.png`` and shown in the card (an existing ``samples.png`` is
        kept; a count is skipped for a model with no prior to sample from, a VQ-VAE before its
        code prior is fitted). ``dtype=torch.float16`` halves the file; loading casts back to float32. ``repo_id``
        makes the card's snippet ``hf-hub:repo_id``. ``license``: the card names it when given.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        name = (experiment.name if experiment else None) or (repo_id.split("/")[-1] if repo_id else None)
        config: dict[str, Any] = {
            "config_version": CONFIG_VERSION,
            "family": self.config.family,
            "vaezoo_version": __version__,
            "name": name,
            "model": self.config.model_dump(mode="json"),
        }
        if experiment is not None:
            config["data"] = experiment.data.model_dump(mode="json")
            config["trainer"] = experiment.trainer.model_dump(mode="json")
        if metrics:
            config["metrics"] = metrics.model_dump(mode="json") if hasattr(metrics, "model_dump") else metrics
        if training:
            config["training"] = dict(training)
        # weights first, each file replaced atomically: a crash leaves the old model whole or the new weights
        # beside the old config, which loading refuses by name, never a torn file
        write_weights(directory / WEIGHTS_NAME, self.published_state_dict(), dtype=dtype)
        write_config(directory / CONFIG_NAME, config)
        if samples is not None and (not isinstance(samples, int) or self.can_sample):
            save_samples(self, directory / SAMPLES_NAME, samples)
        card = render_card(
            name=name or directory.resolve().name, config=config, num_parameters=self.num_parameters(),
            load_ref=f"hf-hub:{repo_id}" if repo_id else str(directory), metrics=config.get("metrics"),
            license=license, tags=tags, has_samples=(directory / SAMPLES_NAME).is_file(), training=training,
            latent=self.config.latent_summary(),
        )
        (directory / CARD_NAME).write_text(card)
        return directory

    def push_to_hub(
        self,
        repo_id: str,
        *,
        tag: Optional[str] = None,
        private: bool = False,
        token: Optional[str] = None,
        commit_message: Optional[str] = None,
        revision: Optional[str] = None,
        samples: Optional[int] = 64,
        license: Optional[str] = None,
    ) -> PushResult:
        """Save this model to a temporary folder and upload it as one commit; optionally tag it."""
        with tempfile.TemporaryDirectory(prefix="vaezoo-push-") as tmp:
            self.save_pretrained(tmp, repo_id=repo_id, samples=samples, license=license)
            return push_folder(Path(tmp), repo_id, tag=tag, private=private, token=token,
                               commit_message=commit_message, revision=revision)


def save_samples(model, path: str | Path, samples: int | torch.Tensor, nrow: int = 8, seed: int = 0) -> Path:
    """A grid of images as PNG; an int draws that many from the model with a fixed seed."""
    from torchvision.utils import make_grid  # torchvision only for the pictures: importing vaezoo stays light

    if isinstance(samples, int):
        # a fixed seed makes the card's picture reproducible; fork_rng leaves the caller's RNG alone
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            was_training = model.training
            model.eval()
            images = model.sample(samples)
            model.train(was_training)
    else:
        images = samples
    images = images.detach().float().cpu().clamp(0, 1)
    return save_image_png(make_grid(images, nrow=nrow, padding=2, pad_value=1.0), path)
