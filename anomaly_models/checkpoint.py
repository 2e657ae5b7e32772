"""Checkpoints hold weights, the model config and the feature extractor id the model was trained on.

Loaded with torch.load(weights_only=True): a checkpoint is data and must never execute code. torch is imported by
the functions that need it: the checks on ids (`require_extractor`) run where torch is never loaded.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

from .errors import RefusedJob
from .registry import build_model

if TYPE_CHECKING:
    import torch


class CheckpointError(RefusedJob):
    """A checkpoint is malformed, unsafe, or does not match the features it is asked to score."""


def model_config(model: torch.nn.Module) -> dict[str, Any]:
    """The constructor arguments every model keeps as `config` (what a checkpoint needs to rebuild it)."""
    config: dict[str, Any] = model.config  # type: ignore[assignment]
    return dict(config)


def checkpoint_bytes(
    model: torch.nn.Module, model_name: str, extractor_id: str, extra: dict[str, Any] | None = None
) -> bytes:
    import torch

    payload = {
        "format": "vad-checkpoint-1",
        "model": model_name,
        "model_config": model_config(model),
        "extractor_id": extractor_id,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "extra": dict(extra or {}),
    }
    buf = io.BytesIO()
    torch.save(payload, buf)
    return buf.getvalue()


def save_checkpoint(path, model: torch.nn.Module, model_name: str, extractor_id: str, extra=None) -> None:
    with open(path, "wb") as f:
        f.write(checkpoint_bytes(model, model_name, extractor_id, extra))


def load_checkpoint_bytes(data: bytes, map_location: str = "cpu"):
    """Returns (model, payload). Refuses pickled objects (weights_only=True) and unknown formats."""
    import torch

    try:
        payload = torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError for anything that is not plain data
        raise CheckpointError(
            f"refusing to load checkpoint: not a plain-data checkpoint ({exc.__class__.__name__}: "
            f"{str(exc).splitlines()[0]})"
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != "vad-checkpoint-1":
        raise CheckpointError("not a vad checkpoint (missing format 'vad-checkpoint-1')")
    model = build_model(payload["model"], **payload["model_config"])
    model.load_state_dict(payload["state_dict"])
    model.eval()
    return model, payload


def load_checkpoint(path, map_location: str = "cpu"):
    with open(path, "rb") as f:
        return load_checkpoint_bytes(f.read(), map_location)


def require_extractor(
    trained: dict | str, extractor_id: str, model: str = "the model", where: str = "the features"
) -> None:
    """A model only scores features from the extractor it was trained on (`trained`: its checkpoint payload or
    the extractor id recorded with it). The one place this is checked; the message names both ids."""
    trained_id = trained.get("extractor_id") if isinstance(trained, dict) else trained
    if trained_id != extractor_id:
        raise CheckpointError(
            f"{model} was trained on features of extractor '{trained_id}' but {where} holds "
            f"features of extractor '{extractor_id}'; re-extract with the model's extractor or "
            "retrain"
        )
