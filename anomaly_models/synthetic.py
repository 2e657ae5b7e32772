"""Generated clip-feature sequences with anomalous stretches drawn from a shifted distribution.

Used by the learning test and the early demo: an honest check that the model can localise anomalies when the
features carry them, without any video decoding.
"""

from __future__ import annotations

import numpy as np


def anomaly_direction(dim: int) -> np.ndarray:
    """A unit vector fixed by the dimension: the same anomaly direction for every seed (train and test agree)."""
    direction = np.random.default_rng(dim).normal(size=dim)
    return direction / np.linalg.norm(direction)


def generated_sequences(
    n_videos: int, dim: int = 32, min_len: int = 40, max_len: int = 120, seed: int = 0, shift: float = 1.5
):
    """Returns (features list of [T, D], labels list of [T]); about half the videos hold 1-2 anomalous stretches."""
    rng = np.random.default_rng(seed)
    direction = anomaly_direction(dim)
    feats, labels = [], []
    for v in range(n_videos):
        length = int(rng.integers(min_len, max_len + 1))
        y = np.zeros(length, dtype=np.float32)
        if v % 2 == 0:
            for _ in range(int(rng.integers(1, 3))):
                seg = int(rng.integers(max(3, length // 10), max(4, length // 4)))
                start = int(rng.integers(0, length - seg))
                y[start : start + seg] = 1
        base = rng.normal(size=(length, dim)).astype(np.float32)
        smooth = np.cumsum(base, axis=0) * 0.05  # slow drift, like a real scene
        x = base * 0.8 + smooth + (y[:, None] * shift * direction * np.sqrt(dim) / 2)
        feats.append(x.astype(np.float32))
        labels.append(y)
    return feats, labels


def generated_relation_sequences(
    n_videos: int,
    anomaly: str = "relation",
    token_dim: int = 16,
    n_tokens: int = 4,
    object_dim: int = 16,
    max_objects: int = 6,
    min_len: int = 40,
    max_len: int = 100,
    seed: int = 0,
):
    """ADOR-style inputs per video: dict(tokens [T,Na,Ca], objects [T,M,Do], boxes [T,M,4], object_mask [T,M])
    and pooled action `features` [T,Ca] (what ADNet sees), with [T] labels.

    anomaly="relation": two objects overlap during anomalies and stay apart otherwise; object features and action
    tokens have the same distribution in both, so only the boxes' relative geometry tells them apart.
    anomaly="action": the action tokens shift during anomalies; objects carry no signal.
    """
    rng = np.random.default_rng(seed)
    direction = anomaly_direction(token_dim)
    videos, labels = [], []
    for v in range(n_videos):
        length = int(rng.integers(min_len, max_len + 1))
        y = np.zeros(length, dtype=np.float32)
        if v % 2 == 0:
            seg = int(rng.integers(max(3, length // 8), max(4, length // 3)))
            start = int(rng.integers(0, length - seg))
            y[start : start + seg] = 1
        tokens = rng.normal(size=(length, n_tokens, token_dim)).astype(np.float32)
        if anomaly == "action":
            tokens += (y[:, None, None] * 2.0 * direction).astype(np.float32)
        objects = rng.normal(size=(length, max_objects, object_dim)).astype(np.float32)
        n_obj = rng.integers(2, max_objects + 1, size=length)
        mask = np.arange(max_objects)[None, :] < n_obj[:, None]
        size = rng.uniform(0.1, 0.2, size=(length, max_objects, 2))
        centre = rng.uniform(0.15, 0.85, size=(length, max_objects, 2))
        # objects 0 and 1: apart (normal) or overlapping (relation anomaly), anywhere in the frame
        c0 = rng.uniform(0.2, 0.8, size=(length, 2))
        offset = rng.uniform(0.35, 0.5, size=(length, 1)) * np.sign(rng.uniform(-1, 1, size=(length, 2)))
        if anomaly == "relation":
            offset = np.where(y[:, None] > 0, rng.uniform(-0.03, 0.03, size=(length, 2)), offset)
        centre[:, 0], centre[:, 1] = c0, np.clip(c0 + offset, 0.1, 0.9)
        boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=-1).clip(0, 1).astype(np.float32)
        videos.append(
            {
                "tokens": tokens,
                "objects": objects * mask[..., None],
                "boxes": boxes * mask[..., None],
                "object_mask": mask,
                "features": tokens.mean(axis=1),
            }
        )
        labels.append(y)
    return videos, labels
