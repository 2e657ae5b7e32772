"""Generated clip-feature sequences with anomalous stretches drawn from a shifted distribution.

Used by the learning test and the early demo: an honest check that the model can localise anomalies when the
features carry them, without any video decoding.
"""
from __future__ import annotations

import numpy as np


def generated_sequences(n_videos: int, dim: int = 32, min_len: int = 40, max_len: int = 120, seed: int = 0,
                        shift: float = 1.5):
    """Returns (features list of [T, D], labels list of [T]); about half the videos hold 1-2 anomalous stretches."""
    rng = np.random.default_rng(seed)
    direction = np.random.default_rng(dim).normal(size=dim)  # the same anomaly direction for every seed
    direction /= np.linalg.norm(direction)
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
