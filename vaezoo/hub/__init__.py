"""Checkpoints in the Hugging Face Hub layout; pretrained names; push to and load from the Hub."""

from .errors import CheckpointError, ChecksumError, HubError
from .layout import CARD_NAME, CONFIG_NAME, SAMPLES_NAME, WEIGHTS_NAME, load_local, save_pretrained
from .registry import RegistryEntry, get_entry, list_entries
from .remote import PushResult, load, load_from_hub, load_pretrained, pull, push_to_hub

__all__ = [
    "save_pretrained", "load_local", "load", "load_pretrained", "load_from_hub", "pull", "push_to_hub",
    "PushResult", "RegistryEntry", "get_entry", "list_entries", "HubError", "CheckpointError", "ChecksumError",
    "CONFIG_NAME", "WEIGHTS_NAME", "CARD_NAME", "SAMPLES_NAME",
]
