"""Sliding windows over a clip sequence and stitching window scores back to one score per clip.

Windows have W clips and stride W/2; the tail window is padded with zero features and mask 0. At inference each
clip's score is the mean over every window that covers it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Windows:
    features: np.ndarray  # [N, W, D] float32, zero where padded
    mask: np.ndarray  # [N, W] bool
    starts: np.ndarray  # [N] first clip index of each window
    length: int  # T, clips in the sequence


def window_starts(length: int, window: int) -> list[int]:
    """Start indices so that every clip is covered; the last window may run past the end (padded)."""
    if length <= 0:
        raise ValueError("a sequence needs at least one clip")
    stride = max(1, window // 2)
    starts = list(range(0, max(length - window, 0) + 1, stride))
    if starts[-1] + window < length:
        starts.append(starts[-1] + stride)
    return starts


def make_windows(features: np.ndarray, window: int, labels: np.ndarray | None = None):
    """Split [T, ...] features (and optional [T] labels) into padded windows."""
    length = len(features)
    starts = window_starts(length, window)
    out = np.zeros((len(starts), window, *features.shape[1:]), dtype=features.dtype)
    mask = np.zeros((len(starts), window), dtype=bool)
    out_labels = np.zeros((len(starts), window), dtype=np.float32) if labels is not None else None
    for i, s in enumerate(starts):
        n = min(window, length - s)
        out[i, :n] = features[s : s + n]
        mask[i, :n] = True
        if labels is not None and out_labels is not None:
            out_labels[i, :n] = labels[s : s + n]
    wins = Windows(out, mask, np.asarray(starts), length)
    return (wins, out_labels) if labels is not None else wins


def stitch(window_scores: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    """Average [N, W] window scores into [T] clip scores over every window covering each clip."""
    total = np.zeros(length, dtype=np.float64)
    count = np.zeros(length, dtype=np.int64)
    window = window_scores.shape[1]
    for scores, s in zip(window_scores, starts):
        n = min(window, length - int(s))
        total[s : s + n] += scores[:n]
        count[s : s + n] += 1
    if (count == 0).any():
        raise ValueError("windows do not cover every clip")
    return (total / count).astype(np.float32)
