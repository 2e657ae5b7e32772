"""One entry per temporal model: its class, training defaults, the per-clip inputs it reads, and how its
constructor config follows from sample input shapes. Adding a model is one module plus one line in `MODELS`."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from .adnet import ADNet
from .ador import ADOR
from .baselines import EDTCN, MLP
from .errors import UsageError


@dataclass(frozen=True)
class ModelEntry:
    name: str
    cls: type[nn.Module]
    lr: float  # default Adam learning rate (the thesis's)
    loss: str  # "mse" or "bce"

    @property
    def inputs(self) -> tuple[str, ...]:
        """Per-clip arrays the forward takes before the mask (`features`, or ADOR's tokens and objects)."""
        return input_names(self.cls)

    @property
    def needs_tokens(self) -> bool:
        return "tokens" in self.inputs

    @property
    def needs_objects(self) -> bool:
        return "objects" in self.inputs

    def config_for(self, shapes: dict[str, tuple[int, ...]], window: int, options: dict | None = None) -> dict:
        """Constructor arguments from one video's input shapes ({name: shape}); `options` override them."""
        return {**self.cls.config_for(shapes, window), **(options or {})}  # type: ignore[attr-defined]


MODELS: dict[str, ModelEntry] = {
    e.name: e
    for e in (
        ModelEntry("adnet", ADNet, lr=5e-4, loss="mse"),
        ModelEntry("ador", ADOR, lr=5e-5, loss="bce"),
        ModelEntry("mlp", MLP, lr=5e-4, loss="mse"),
        ModelEntry("edtcn", EDTCN, lr=5e-4, loss="mse"),
    )
}


def input_names(model: nn.Module | type[nn.Module]) -> tuple[str, ...]:
    """The per-clip arrays a model's forward takes before the mask; ADNet and the baselines take `features`."""
    return getattr(model, "input_names", ("features",))


def model_entry(name: str) -> ModelEntry:
    try:
        return MODELS[name]
    except KeyError:
        raise UsageError(f"model: unknown model {name!r}; known: {sorted(MODELS)}") from None


def build_model(name: str, **config) -> nn.Module:
    return model_entry(name).cls(**config)
