"""Model names -> classes, so checkpoints and flows can build a model from its name and config."""
from __future__ import annotations

from torch import nn

from .adnet import ADNet
from .ador import ADOR
from .baselines import EDTCN, MLP

MODELS: dict[str, type[nn.Module]] = {"adnet": ADNet, "ador": ADOR, "mlp": MLP, "edtcn": EDTCN}


def input_names(model: nn.Module) -> tuple[str, ...]:
    """The per-clip arrays a model's forward takes before the mask; ADNet and the baselines take `features`."""
    return getattr(model, "input_names", ("features",))


def build_model(name: str, **config) -> nn.Module:
    try:
        cls = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known: {sorted(MODELS)}") from None
    return cls(**config)
