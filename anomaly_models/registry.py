"""One entry per temporal model: where its class lives, its training defaults, the per-clip inputs it reads, and
how its constructor config follows from sample input shapes. Adding a model is one module plus one line in
`MODELS`. The registry itself needs no torch (settings and model cards read it); a class is imported when a model
is built."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import UsageError

if TYPE_CHECKING:
    from torch import nn

FEATURES = ("features",)
RELATIONS = ("tokens", "objects", "boxes", "object_mask")  # ADOR: action tokens and centre-frame objects


@dataclass(frozen=True)
class ModelEntry:
    name: str
    network: str  # "module:Class" in anomaly_models
    lr: float  # default Adam learning rate (the thesis's)
    loss: str  # "mse" or "bce"
    inputs: tuple[str, ...] = FEATURES  # per-clip arrays the forward takes before the mask

    @property
    def cls(self) -> type[nn.Module]:
        module, name = self.network.split(":")
        return getattr(importlib.import_module(module, __package__), name)

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
        ModelEntry("adnet", ".adnet:ADNet", lr=5e-4, loss="mse"),
        ModelEntry("ador", ".ador:ADOR", lr=5e-5, loss="bce", inputs=RELATIONS),
        ModelEntry("mlp", ".baselines:MLP", lr=5e-4, loss="mse"),
        ModelEntry("edtcn", ".baselines:EDTCN", lr=5e-4, loss="mse"),
    )
}


def input_names(model: Any) -> tuple[str, ...]:
    """The per-clip arrays a model (or model class) takes before the mask; ADNet and the baselines take `features`."""
    return getattr(model, "input_names", FEATURES)


def model_entry(name: str) -> ModelEntry:
    try:
        return MODELS[name]
    except KeyError:
        raise UsageError(f"model: unknown model {name!r}; known: {sorted(MODELS)}") from None


def build_model(name: str, **config) -> nn.Module:
    return model_entry(name).cls(**config)
