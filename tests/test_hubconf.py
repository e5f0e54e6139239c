"""torch.hub entry points from the repository's hubconf.py."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

import vaezoo

REPO = str(Path(__file__).resolve().parents[1])


def test_every_zoo_model_is_a_torch_hub_entry_point():
    # torch.hub.list only reads GitHub repositories; read hubconf.py the way source="local" does
    spec = importlib.util.spec_from_file_location("hubconf", Path(REPO) / "hubconf.py")
    hubconf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hubconf)
    entries = {name for name in dir(hubconf) if callable(getattr(hubconf, name)) and not name.startswith("_")}
    assert {name.replace("-", "_") for name in vaezoo.list_models()} <= entries


def test_fresh_architecture_with_overrides():
    model = torch.hub.load(REPO, "fashion_conv64", source="local", pretrained=False)
    assert model.num_parameters() == 5_997_825
    small = torch.hub.load(REPO, "fashion_conv16", source="local", pretrained=False, latent_dim=8)
    assert small.latent_dim == 8


def test_pretrained_fashion_conv64_is_the_published_model():
    model = torch.hub.load(REPO, "fashion_conv64", source="local")  # pretrained by default: weights exist
    reference = vaezoo.load("fashion-conv64")
    assert not model.training
    for (name, a), b in zip(model.state_dict().items(), reference.state_dict().values()):
        assert torch.equal(a, b), name
    with pytest.raises(ValueError, match="overrides change the architecture"):
        torch.hub.load(REPO, "fashion_conv64", source="local", latent_dim=8)
