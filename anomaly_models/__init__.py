"""Pure PyTorch/numpy temporal anomaly models: no Prefect, Dask or fsspec here."""

from .adnet import ADNet, layers_for_window
from .ador import ADOR
from .baselines import EDTCN, MLP
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .errors import NotFound, RefusedJob, UsageError, VadError, VideoError
from .registry import MODELS, ModelEntry, build_model, model_entry
from .training import TrainConfig, predict, train
from .windows import make_windows, stitch

__all__ = [
    "ADNet",
    "ADOR",
    "EDTCN",
    "MLP",
    "layers_for_window",
    "CheckpointError",
    "load_checkpoint",
    "save_checkpoint",
    "NotFound",
    "RefusedJob",
    "UsageError",
    "VadError",
    "VideoError",
    "MODELS",
    "ModelEntry",
    "build_model",
    "model_entry",
    "TrainConfig",
    "predict",
    "train",
    "make_windows",
    "stitch",
]
