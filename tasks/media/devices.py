"""Which torch device a task runs on: CUDA when visible; a task that asked for the GPU resource but landed on a
worker without CUDA runs on CPU and says so."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def pick_device(gpu_requested: bool = False) -> str:
    import torch  # on the worker that runs the task

    if torch.cuda.is_available():
        return "cuda"
    if gpu_requested:
        log.warning("GPU task running on CPU: no CUDA device is visible on this worker")
    return "cpu"


def configure_threads(threads: int | None) -> None:
    """Torch threads per worker process: workers x threads should not exceed the cores."""
    import torch

    if threads and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
