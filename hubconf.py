"""torch.hub entry points: ``torch.hub.load(repo_dir, "fashion_conv64", source="local")``.

One entry per zoo model, its name with dashes turned into underscores. ``pretrained=True``
(the default where published weights exist) returns ``vaezoo.load(name)``: sha256-verified,
eval mode; otherwise ``vaezoo.create(name, **overrides)``: fresh weights.
"""

dependencies = ["torch", "torchvision", "pydantic", "yaml", "safetensors", "huggingface_hub"]

import vaezoo as _vaezoo  # noqa: E402 - torch.hub reads `dependencies` first


def _entry(name: str):
    has_weights = name in _vaezoo.list_models(pretrained=True)

    def entry(pretrained: bool = has_weights, **overrides):
        if pretrained:
            if overrides:
                raise ValueError(f"{name}: overrides change the architecture; use pretrained=False with them")
            return _vaezoo.load(name)
        return _vaezoo.create(name, **overrides)

    entry.__name__ = name.replace("-", "_")
    entry.__doc__ = f"vaezoo model '{name}' ({'pretrained weights available' if has_weights else 'no published weights'})."
    return entry


for _name in _vaezoo.list_models():
    globals()[_name.replace("-", "_")] = _entry(_name)
del _name
