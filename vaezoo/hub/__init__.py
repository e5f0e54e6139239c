"""Pretrained names, ``vaezoo.load`` and pushing: the Hub side of vaezoo, above the model families.

The folder layout itself and the Hub client live in :mod:`vaezoo.layout`, which the models use
to save themselves; here a reference (a pretrained name, ``hf-hub:org/repo@rev``, a folder)
becomes a model, sha256-checked against the pretrained index in ``registry/``.
"""

from ..layout import CARD_NAME, CONFIG_NAME, SAMPLES_NAME, WEIGHTS_NAME, PushResult
from .index import PretrainedEntry, PublishedMetric, get_entry, list_entries
from .local import load_local
from .remote import load, load_from_hub, load_pretrained, pull, push_to_hub

__all__ = [
    "load", "load_local", "load_pretrained", "load_from_hub", "pull", "push_to_hub", "PushResult",
    "PretrainedEntry", "PublishedMetric", "get_entry", "list_entries",
    "CONFIG_NAME", "WEIGHTS_NAME", "CARD_NAME", "SAMPLES_NAME",
]
