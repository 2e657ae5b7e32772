"""Pure PyTorch/numpy temporal anomaly models: no Prefect, Dask or fsspec here."""
from .adnet import ADNet, layers_for_window
from .ador import ADOR
from .baselines import EDTCN, MLP
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .registry import MODELS, build_model
from .training import TrainConfig, predict, train
from .windows import make_windows, stitch

__all__ = ["ADNet", "ADOR", "EDTCN", "MLP", "layers_for_window", "CheckpointError", "load_checkpoint", "save_checkpoint", "MODELS",
           "build_model", "TrainConfig", "predict", "train", "make_windows", "stitch"]
