"""Pure PyTorch/numpy temporal anomaly models: no Prefect, Dask or fsspec here.

Names are imported on first use (PEP 562), so light modules (`anomaly_models.errors`) load without torch: a
decoder process or a scan with nothing to do never pays for it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "ADNet": "adnet", "layers_for_window": "adnet", "ADOR": "ador", "EDTCN": "baselines", "MLP": "baselines",
    "CheckpointError": "checkpoint", "load_checkpoint": "checkpoint", "save_checkpoint": "checkpoint",
    "NotFound": "errors", "RefusedJob": "errors", "UsageError": "errors", "VadError": "errors",
    "VideoError": "errors", "MODELS": "registry", "ModelEntry": "registry", "build_model": "registry",
    "model_entry": "registry", "TrainConfig": "training", "predict": "training", "train": "training",
    "make_windows": "windows", "stitch": "windows",
}  # fmt: skip
__all__ = [
    "ADNet", "layers_for_window", "ADOR", "EDTCN", "MLP", "CheckpointError", "load_checkpoint", "save_checkpoint",
    "NotFound", "RefusedJob", "UsageError", "VadError", "VideoError", "MODELS", "ModelEntry", "build_model",
    "model_entry", "TrainConfig", "predict", "train", "make_windows", "stitch",
]  # fmt: skip

if TYPE_CHECKING:
    from .adnet import ADNet, layers_for_window
    from .ador import ADOR
    from .baselines import EDTCN, MLP
    from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
    from .errors import NotFound, RefusedJob, UsageError, VadError, VideoError
    from .registry import MODELS, ModelEntry, build_model, model_entry
    from .training import TrainConfig, predict, train
    from .windows import make_windows, stitch


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'anomaly_models' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
