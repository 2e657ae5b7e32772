"""Training and inference loops over in-memory per-video clip inputs.

Each video is a [T, D] feature array (ADNet, baselines) or a dict of [T, ...] arrays named by the model's
`input_names` (ADOR: tokens, objects, boxes, object_mask), with [T] clip labels. Videos are cut into windows (see
windows.py), batched, and fed to a model whose forward returns [S, B, T] stage scores. `predict` stitches window
scores back to one score per clip using the last stage.

Multi-crop features (the public 10-crop sets): a video may also carry `crops` [T, K, D]; training then feeds each
window, in each epoch, the features of one crop drawn at random (seeded) instead of the crop mean, the usual
augmentation of RTFM-style training. `predict` always uses `features` (the crop mean).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from .losses import ad_loss, stage_loss
from .registry import input_names
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


CROPS = "crops"  # optional per-crop features [T, K, D] of a video, sampled per window and epoch in training


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def as_inputs(video) -> dict[str, np.ndarray]:
    return dict(video) if isinstance(video, dict) else {"features": np.asarray(video, dtype=np.float32)}


def _windows(video, window: int, labels=None):
    """Every input array of one video cut into the same windows; returns (arrays, mask, starts, length, labels)."""
    arrays, out = as_inputs(video), {}
    first = next(iter(arrays.values()))
    base = make_windows(np.zeros(len(first), np.float32), window, labels)
    wins, wl = base if labels is not None else (base, None)
    for name, arr in arrays.items():
        out[name] = make_windows(np.asarray(arr), window).features
    return out, wins.mask, wins.starts, wins.length, wl


def _window_dataset(videos, labels, window: int):
    parts, masks, labs = [], [], []
    for x, y in zip(videos, labels):
        arrays, mask, _, _, wl = _windows(x, window, np.asarray(y, dtype=np.float32))
        parts.append(arrays)
        masks.append(mask)
        labs.append(wl)
    inputs = {n: torch.from_numpy(np.concatenate([p[n] for p in parts])) for n in parts[0]}
    return inputs, torch.from_numpy(np.concatenate(masks)), torch.from_numpy(np.concatenate(labs))


def _forward(model, inputs: dict[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
    return model(*(inputs[n] for n in input_names(model)), mask)


def train(
    model: torch.nn.Module,
    videos: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    config: TrainConfig,
    on_epoch: Callable[[int, float], None] | None = None,
) -> TrainResult:
    """Adam over shuffled windows; returns the per-epoch mean loss."""
    if not videos:
        raise ValueError("no training videos")
    seed_everything(config.seed)
    x, m, y = _window_dataset(videos, labels, config.window)
    device = torch.device(config.device)
    missing = set(input_names(model)) - set(x)
    if missing:
        raise ValueError(f"model {type(model).__name__} needs inputs {sorted(missing)}; videos have {sorted(x)}")
    model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    generator = torch.Generator().manual_seed(config.seed)
    result = TrainResult()
    for epoch in range(config.epochs):
        order = torch.randperm(len(m), generator=generator)
        losses = []
        for i in range(0, len(order), config.batch_size):
            idx = order[i : i + config.batch_size]
            xb = {n: v[idx].to(device) for n, v in x.items() if n != CROPS}
            if CROPS in x:  # one random crop per window in this epoch
                crops = x[CROPS][idx]
                pick = torch.randint(crops.shape[2], (len(idx),), generator=generator)
                xb["features"] = crops[torch.arange(len(idx)), :, pick].to(device)
            mb, yb = m[idx].to(device), y[idx].to(device)
            stages = _forward(model, xb, mb)
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
def predict(model: torch.nn.Module, video, window: int, device: str = "cpu", batch_size: int = 32) -> np.ndarray:
    """One anomaly score per clip: last-stage window scores averaged over every window covering the clip."""
    return predict_many(model, [video], window, device, batch_size)[0]


@torch.no_grad()
def predict_many(
    model: torch.nn.Module, videos: Sequence, window: int, device: str = "cpu", batch_size: int = 32
) -> list[np.ndarray]:
    """`predict` of several videos, their windows sent through the model together, `batch_size` at a time: short
    videos fill batches instead of each making its own small forward pass. Windows are independent samples, so
    each video's scores do not depend on its neighbours. Videos whose inputs have other shapes (they cannot share a
    batch) are scored one at a time."""
    model.to(device).eval()
    cut = [_windows(v, window) for v in videos]
    first = cut[0][0]
    if any(c[0].keys() != first.keys() or any(c[0][n].shape[1:] != first[n].shape[1:] for n in first) for c in cut):
        return [predict_many(model, [v], window, device, batch_size)[0] for v in videos]
    arrays = {n: np.concatenate([c[0][n] for c in cut]) for n in first}
    mask = np.concatenate([c[1] for c in cut])
    outs = []
    for i in range(0, len(mask), batch_size):
        xb = {n: torch.from_numpy(a[i : i + batch_size]).to(device) for n, a in arrays.items()}
        mb = torch.from_numpy(mask[i : i + batch_size]).to(device)
        outs.append(_forward(model, xb, mb)[-1].float().cpu().numpy())
    scores, result, offset = np.concatenate(outs), [], 0
    for _, _, starts, length, _ in cut:
        result.append(stitch(scores[offset : offset + len(starts)], starts, length))
        offset += len(starts)
    return result
