"""Model names -> classes, so checkpoints and flows can build a model from its name and config."""
from __future__ import annotations

from torch import nn

from .adnet import ADNet

MODELS: dict[str, type[nn.Module]] = {"adnet": ADNet}


def build_model(name: str, **config) -> nn.Module:
    try:
        cls = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known: {sorted(MODELS)}") from None
    return cls(**config)
