"""Segmental F1@k (the MS-TCN evaluation algorithm), frame AUC, and turning frame scores into segments (clip scores
become frame scores in `anomaly_models.ground_truth`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

VIEWS = {"abnormal": (1,), "normal": (0,), "all": (0, 1)}


def label_segments(labels: Sequence[int] | np.ndarray) -> list[tuple[int, int, int]]:
    """Runs of equal label as (label, start, end) with end exclusive."""
    values = np.asarray(labels).astype(int)
    if len(values) == 0:
        return []
    change = np.flatnonzero(np.diff(values)) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [len(values)]])
    return [(int(values[s]), int(s), int(e)) for s, e in zip(starts, ends)]


def segment_counts(prediction, target, overlap: float, counted: tuple[int, ...]) -> tuple[int, int, int]:
    """TP, FP, FN of one video at IoU threshold `overlap`, counting only segments whose label is in `counted`."""
    pred = [s for s in label_segments(prediction) if s[0] in counted]
    gt = [s for s in label_segments(target) if s[0] in counted]
    used = [False] * len(gt)
    tp = fp = 0
    for label, start, end in pred:
        best, best_iou = -1, 0.0
        for j, (g_label, g_start, g_end) in enumerate(gt):
            if g_label != label:
                continue
            inter = min(end, g_end) - max(start, g_start)
            union = max(end, g_end) - min(start, g_start)
            iou = max(inter, 0) / union
            if iou > best_iou or best < 0:
                best, best_iou = j, iou
        if best >= 0 and best_iou >= overlap and not used[best]:
            tp += 1
            used[best] = True
        else:
            fp += 1
    return tp, fp, len(gt) - sum(used)


def f1_score(tp: int, fp: int, fn: int) -> float:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return 0.0 if precision + recall == 0 else 200.0 * precision * recall / (precision + recall)


def f1_at_k(predictions, targets, overlaps=(0.1, 0.25, 0.5)) -> dict[str, dict[float, float]]:
    """F1@k in percent for the abnormal, normal and all views; TP/FP/FN summed over videos before F1."""
    if len(predictions) != len(targets):
        raise ValueError(f"{len(predictions)} predictions but {len(targets)} targets")
    result: dict[str, dict[float, float]] = {}
    for view, counted in VIEWS.items():
        result[view] = {}
        for k in overlaps:
            tp = fp = fn = 0
            for pred, target in zip(predictions, targets):
                if len(pred) != len(target):
                    raise ValueError(f"prediction has {len(pred)} frames, target {len(target)}")
                a, b, c = segment_counts(pred, target, k, counted)
                tp, fp, fn = tp + a, fp + b, fn + c
            result[view][k] = f1_score(tp, fp, fn)
    return result


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of `values`, tied values sharing the mean of their ranks."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    first = np.r_[True, ordered[1:] != ordered[:-1]]  # the first of each run of equal values
    starts = np.flatnonzero(first)
    ends = np.r_[starts[1:], len(values)]
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = ((starts + ends + 1) / 2.0)[np.cumsum(first) - 1]
    return ranks


def roc_auc(labels, scores) -> float | None:
    """Area under the ROC curve (0..1) of binary `labels` by `scores`: the Mann-Whitney U statistic, the chance
    that a random positive scores above a random negative, ties counting one half (equal to scikit-learn's
    `roc_auc_score`). None when only one class is present."""
    y = np.asarray(labels).ravel() > 0
    s = np.asarray(scores, dtype=np.float64).ravel()
    positives, negatives = int(y.sum()), int((~y).sum())
    if not positives or not negatives:
        return None
    rank_sum = average_ranks(s)[y].sum()
    return float((rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives))


def frame_auc(scores, targets) -> float | None:
    """ROC AUC (percent) over all frames of all videos; None when only one class is present."""
    y = np.concatenate([np.asarray(t).ravel() for t in targets])
    s = np.concatenate([np.asarray(p, dtype=np.float64).ravel() for p in scores])
    auc = roc_auc(y, s)
    return None if auc is None else auc * 100.0


def score_segments(scores, threshold: float = 0.5) -> list[tuple[int, int]]:
    """Index ranges [start, end) where score > threshold."""
    binary = (np.asarray(scores) > threshold).astype(int)
    return [(s, e) for label, s, e in label_segments(binary) if label == 1]
