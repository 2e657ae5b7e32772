"""Training and inference loops over in-memory per-video clip features.

Each video is a [T, D] float array with [T] clip labels; videos are cut into windows (see windows.py), batched,
and fed to a model whose forward returns [S, B, T] stage scores. `predict` stitches window scores back to one
score per clip using the last stage.
"""
from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from .losses import ad_loss, stage_loss
from .windows import make_windows, stitch


@dataclass
class TrainConfig:
    window: int = 64
    epochs: int = 30
    batch_size: int = 8
    lr: float = 5e-4
    loss: str = "mse"
    ad_lambda: float = 0.0  # weight of the AD loss (0.5 in the thesis); 0 disables it
    ad_alpha: float = 0.5
    seed: int = 123
    device: str = "cpu"


@dataclass
class TrainResult:
    history: list[float] = field(default_factory=list)  # mean loss per epoch


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _window_dataset(videos: Sequence[np.ndarray], labels: Sequence[np.ndarray], window: int):
    feats, masks, labs = [], [], []
    for x, y in zip(videos, labels):
        wins, wl = make_windows(np.asarray(x, dtype=np.float32), window, np.asarray(y, dtype=np.float32))
        feats.append(wins.features)
        masks.append(wins.mask)
        labs.append(wl)
    return (torch.from_numpy(np.concatenate(feats)), torch.from_numpy(np.concatenate(masks)),
            torch.from_numpy(np.concatenate(labs)))


def train(model: torch.nn.Module, videos: Sequence[np.ndarray], labels: Sequence[np.ndarray], config: TrainConfig,
          on_epoch: Callable[[int, float], None] | None = None) -> TrainResult:
    """Adam over shuffled windows; returns the per-epoch mean loss."""
    if not videos:
        raise ValueError("no training videos")
    seed_everything(config.seed)
    x, m, y = _window_dataset(videos, labels, config.window)
    device = torch.device(config.device)
    model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    generator = torch.Generator().manual_seed(config.seed)
    result = TrainResult()
    for epoch in range(config.epochs):
        order = torch.randperm(len(x), generator=generator)
        losses = []
        for i in range(0, len(order), config.batch_size):
            idx = order[i : i + config.batch_size]
            xb, mb, yb = x[idx].to(device), m[idx].to(device), y[idx].to(device)
            stages = model(xb, mb)
            loss = stage_loss(stages, yb, mb, config.loss)
            if config.ad_lambda > 0:
                loss = loss + config.ad_lambda * ad_loss(stages[-1], yb, mb, config.ad_alpha)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
        result.history.append(float(np.mean(losses)))
        if on_epoch is not None:
            on_epoch(epoch, result.history[-1])
    model.eval()
    return result


@torch.no_grad()
def predict(model: torch.nn.Module, features: np.ndarray, window: int, device: str = "cpu",
            batch_size: int = 32) -> np.ndarray:
    """One anomaly score per clip: last-stage window scores averaged over every window covering the clip."""
    model.to(device).eval()
    wins = make_windows(np.asarray(features, dtype=np.float32), window)
    outs = []
    for i in range(0, len(wins.starts), batch_size):
        xb = torch.from_numpy(wins.features[i : i + batch_size]).to(device)
        mb = torch.from_numpy(wins.mask[i : i + batch_size]).to(device)
        outs.append(model(xb, mb)[-1].float().cpu().numpy())
    return stitch(np.concatenate(outs), wins.starts, wins.length)
