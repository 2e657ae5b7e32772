"""Where model weights come from: `random` (explicit, seeded init), a local state_dict file, or a torchvision
weights enum name (downloaded when online). Never a silent fallback: anything else is a WeightsError."""

from __future__ import annotations

import hashlib
import os

from anomaly_models.errors import UsageError


class WeightsError(UsageError):
    """Weights that cannot be found or loaded; never replaced by a silent fallback."""


def weights_tag(weights: str, seed: int = 0) -> str:
    """The part of an extractor/detector id that names its weights."""
    if weights == "random":
        return f"random{seed}"
    if os.path.exists(weights):
        with open(weights, "rb") as f:
            return "file" + hashlib.sha256(f.read()).hexdigest()[:10]
    return weights.split(".")[-1].lower().replace("_", "")


def load_state_dict(model_name: str | None, weights: str) -> dict | None:
    """None for random init; else the state dict from the file or the torchvision enum of `model_name` (None: the
    network has no torchvision weights, only files)."""
    if weights == "random":
        return None
    if os.path.exists(weights):
        import torch  # here, not at import: ids and specs are derived without torch

        return torch.load(weights, map_location="cpu", weights_only=True)
    if weights.endswith((".pt", ".pth", ".bin")) or "/" in weights:
        raise WeightsError(f"weights file not found: {weights} (use weights='random' for random init)")
    if model_name is None:
        raise WeightsError(f"weights file not found: {weights} (this network takes a local weights file or 'random')")
    from torchvision.models import get_model_weights

    enum = get_model_weights(model_name)
    try:
        member = enum[weights.split(".")[-1]]
    except KeyError:
        raise WeightsError(
            f"unknown weights {weights!r} for {model_name}; known: {[w.name for w in enum]}, a local file, or 'random'"
        ) from None
    try:
        return member.get_state_dict(progress=False)
    except Exception as exc:
        raise WeightsError(
            f"could not download {enum.__name__}.{member.name}: {exc}; pass a local weights file instead"
        ) from exc
