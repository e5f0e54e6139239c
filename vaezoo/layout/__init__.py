"""The Hugging Face Hub repository layout of a checkpoint: files, card, upload, and the mixin that
gives every model ``save_pretrained`` and ``push_to_hub``; beside it the crash-safe training
checkpoints (:mod:`.checkpoint`). Knows no model class."""

from .card import SAMPLES_NAME, render_card
from .client import HF_PREFIX, PushResult, push_folder, translate_hub_errors
from .files import (
    CARD_NAME, CONFIG_NAME, CONFIG_VERSION, WEIGHTS_NAME, CheckpointConfig, load_state, read_config, read_weights,
)
from .mixin import HubMixin, save_samples

__all__ = [
    "HubMixin", "save_samples", "render_card", "read_config", "read_weights", "load_state", "CheckpointConfig",
    "push_folder", "PushResult", "translate_hub_errors", "HF_PREFIX",
    "CONFIG_NAME", "WEIGHTS_NAME", "CARD_NAME", "SAMPLES_NAME", "CONFIG_VERSION",
]
