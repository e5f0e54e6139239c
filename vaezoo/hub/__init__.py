"""Checkpoints in the Hugging Face Hub layout, and loading them."""

from .layout import CARD_NAME, CONFIG_NAME, WEIGHTS_NAME, load_local, save_pretrained

__all__ = ["save_pretrained", "load_local", "CONFIG_NAME", "WEIGHTS_NAME", "CARD_NAME"]
