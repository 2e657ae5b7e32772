"""Which torch device a task runs on: CUDA when visible; a task that asked for the GPU resource but landed on a
worker without CUDA runs on CPU and says so."""

from __future__ import annotations

import logging

import torch

log = logging.getLogger(__name__)


def pick_device(gpu_requested: bool = False) -> str:
    if torch.cuda.is_available():
        return "cuda"
    if gpu_requested:
        log.warning("GPU task running on CPU: no CUDA device is visible on this worker")
    return "cpu"
