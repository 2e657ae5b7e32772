"""Benchmark metrics beyond frame AUC and F1@k: average precision, the trapezoidal PR area used by most UCF-Crime
and XD-Violence repositories, false alarm rate, temporal-IoU detection mAP, bootstrap intervals, per-class helpers
and the AUC over abnormal videos only. numpy only (no scikit-learn/scipy at import time)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np

from anomaly_models.metrics import label_segments, roc_auc, score_segments

T = TypeVar("T")
V = TypeVar("V")


def precision_recall_points(labels, scores) -> tuple[np.ndarray, np.ndarray] | None:
    """Precision and recall exactly as `sklearn.metrics.precision_recall_curve` (drop_intermediate=False) returns
    them: one point per distinct score threshold, all samples with a score >= that threshold predicted positive (so
    tied samples enter together), ordered by decreasing threshold and then reversed to decreasing recall, with the
    final point precision 1, recall 0 appended. None when there are no positives."""
    y = np.asarray(labels).ravel() > 0
    s = np.asarray(scores, dtype=np.float64).ravel()
    if len(y) != len(s):
        raise ValueError(f"{len(y)} labels but {len(s)} scores")
    if not y.any():
        return None
    order = np.argsort(s, kind="mergesort")[::-1]
    s, y_sorted = s[order], y[order].astype(np.float64)
    threshold_idxs = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # the last sample of each run of equal scores
    tps = np.cumsum(y_sorted)[threshold_idxs]
    fps = 1 + threshold_idxs - tps
    precision = tps / (tps + fps)
    recall = tps / tps[-1]
    return np.r_[precision[::-1], 1.0], np.r_[recall[::-1], 0.0]


def average_precision(labels, scores) -> float | None:
    """Average precision (0..1) with scikit-learn's `average_precision_score` definition:
    AP = sum_n (R_n - R_{n-1}) * P_n over the distinct score thresholds taken in decreasing order, where P_n and R_n
    are the precision and recall when every sample scoring >= the n-th threshold is called positive (R_0 = 0).
    Step-wise, no interpolation; tied scores enter together as one threshold. None when there are no positives."""
    points = precision_recall_points(labels, scores)
    if points is None:
        return None
    precision, recall = points
    return float(-np.sum(np.diff(recall) * precision[:-1]))


def pr_auc_trapezoid(labels, scores) -> float | None:
    """Area (0..1) under the precision-recall curve by the trapezoidal rule over recall, as most UCF-Crime and
    XD-Violence repositories compute it: `precision, recall, _ = precision_recall_curve(y, s); auc(recall,
    precision)`. The curve has the points of `precision_recall_curve` (one per distinct threshold, tied scores
    entering together, plus the point precision 1, recall 0), joined by straight lines:
    area = sum_n (R_n - R_{n-1}) * (P_n + P_{n-1}) / 2 with (R_0, P_0) = (0, 1). This linear interpolation of
    precision between thresholds differs from the step-wise `average_precision` in general.
    None when there are no positives."""
    points = precision_recall_points(labels, scores)
    if points is None:
        return None
    precision, recall = points
    # recall is decreasing, so the trapezoid sum over it is negative: flip the sign as sklearn's `auc` does
    return float(-(np.diff(recall) * (precision[1:] + precision[:-1]) / 2.0).sum())


def roc_points(labels, scores) -> tuple[np.ndarray, np.ndarray] | None:
    """False- and true-positive rates of the ROC curve, one point per distinct score threshold (tied samples enter
    together) from (0, 0) to (1, 1), as `sklearn.metrics.roc_curve(drop_intermediate=False)`; its trapezoidal area is
    `roc_auc`. None when only one class is present."""
    y = np.asarray(labels).ravel() > 0
    s = np.asarray(scores, dtype=np.float64).ravel()
    if len(y) != len(s):
        raise ValueError(f"{len(y)} labels but {len(s)} scores")
    if y.all() or not y.any():
        return None
    order = np.argsort(s, kind="mergesort")[::-1]
    s, y_sorted = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    tps = np.cumsum(y_sorted)[last]
    fps = 1 + last - tps
    return np.r_[0.0, fps / fps[-1]], np.r_[0.0, tps / tps[-1]]


def thin(xs: np.ndarray, ys: np.ndarray, max_points: int = 300) -> tuple[list[float], list[float]]:
    """At most `max_points` points of a curve (evenly by index, first and last kept), rounded to 4 decimals: enough
    to draw it and small enough to keep in evaluation.json."""
    index = np.unique(np.linspace(0, len(xs) - 1, min(len(xs), max_points)).round().astype(int))
    return [round(float(v), 4) for v in xs[index]], [round(float(v), 4) for v in ys[index]]


def false_alarm_rate(normal_frame_scores: Sequence[Any], threshold: float = 0.5) -> float | None:
    """Fraction (0..1) of the frames of normal videos whose score is strictly above `threshold`, pooled over all
    frames of all the given videos. None when there are no frames."""
    arrays = [np.asarray(s, dtype=np.float64).ravel() for s in normal_frame_scores]
    total = sum(len(a) for a in arrays)
    if total == 0:
        return None
    return float(sum(int((a > threshold).sum()) for a in arrays) / total)


def _iou(a: tuple[int, int], b: tuple[int, int]) -> float:
    inter = min(a[1], b[1]) - max(a[0], b[0])
    union = max(a[1], b[1]) - min(a[0], b[0])
    return max(inter, 0) / union


def detection_map(
    predictions,
    targets,
    threshold: float = 0.5,
    iou_thresholds: Sequence[float] = (0.1, 0.2, 0.3, 0.4, 0.5),
) -> dict[float | str, float | None]:
    """Temporal-IoU detection mAP in percent (0..100).

    Per video, the predicted segments are the runs [start, end) of frames with score > `threshold`
    (`score_segments`), each with confidence = the mean score of its frames; the ground-truth segments are the
    runs of label 1 in the target. All predictions are pooled over videos and ranked by confidence, descending,
    with a stable sort (ties keep video order, then temporal order). For each IoU threshold t, in rank order each
    prediction is a TP when, among the ground-truth segments of the same video not yet matched, the one of
    highest IoU (the first on IoU ties) has IoU >= t; that segment is then matched and cannot be matched again.
    Otherwise it is an FP. AP = sum over the ranked predictions of precision@rank at each TP, divided by the
    number of ground-truth segments (the non-interpolated VOC/ActivityNet form: the same step-wise sum as
    `average_precision`, without the monotone precision envelope). Returns {t: AP_t} plus "mean": the mean over t.
    With no prediction but some ground truth every AP is 0; with no ground-truth segment at all every value is
    None."""
    if len(predictions) != len(targets):
        raise ValueError(f"{len(predictions)} predictions but {len(targets)} targets")
    ranked: list[tuple[float, int, tuple[int, int]]] = []  # (confidence, video, segment)
    gt: list[list[tuple[int, int]]] = []
    for video, (pred, target) in enumerate(zip(predictions, targets)):
        scores = np.asarray(pred, dtype=np.float64).ravel()
        labels = np.asarray(target).ravel()
        if len(scores) != len(labels):
            raise ValueError(f"prediction has {len(scores)} frames, target {len(labels)}")
        gt.append([(start, end) for label, start, end in label_segments(labels > 0) if label == 1])
        for start, end in score_segments(scores, threshold):
            ranked.append((float(scores[start:end].mean()), video, (start, end)))
    n_gt = sum(len(g) for g in gt)
    result: dict[float | str, float | None] = {}
    if n_gt == 0:
        result.update({t: None for t in iou_thresholds})
        result["mean"] = None
        return result
    ranked.sort(key=lambda item: -item[0])  # list.sort is stable
    aps: list[float] = []
    for t in iou_thresholds:
        used = [[False] * len(g) for g in gt]
        tp = 0
        precision_sum = 0.0
        for rank, (_, video, segment) in enumerate(ranked, start=1):
            best, best_iou = -1, -1.0
            for j, g in enumerate(gt[video]):
                if used[video][j]:
                    continue
                iou = _iou(segment, g)
                if iou > best_iou:
                    best, best_iou = j, iou
            if best >= 0 and best_iou >= t:
                used[video][best] = True
                tp += 1
                precision_sum += tp / rank
        aps.append(100.0 * precision_sum / n_gt)
        result[t] = aps[-1]
    result["mean"] = float(np.mean(aps)) if aps else None
    return result


def bootstrap_interval(
    metric: Callable[[list[T]], float | None],
    per_video_inputs: Sequence[T],
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float | None, float | None]:
    """Percentile bootstrap interval of `metric` over videos: `resamples` times, draw len(per_video_inputs) videos
    with replacement (indices from `np.random.default_rng(seed).integers`), call `metric` on the list of drawn
    items, drop None results, and return the (1 - level) / 2 and (1 + level) / 2 quantiles of the remaining values
    (numpy's default linear interpolation). Reproducible for a given seed. (None, None) when no resample gave a
    value (or there are no videos)."""
    return bootstrap_intervals(lambda items: {"value": metric(items)}, per_video_inputs, resamples, seed, level).get(
        "value", (None, None)
    )


def bootstrap_intervals(
    metrics: Callable[[list[T]], Mapping[str, float | None]],
    per_video_inputs: Sequence[T],
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, tuple[float | None, float | None]]:
    """`bootstrap_interval` for several metrics computed together on the same resamples (`metrics` returns
    {name: value}): one interval per name, each as `bootstrap_interval` defines it."""
    items = list(per_video_inputs)
    n = len(items)
    if n == 0:
        return {}
    rng = np.random.default_rng(seed)
    values: dict[str, list[float]] = {}
    for _ in range(resamples):
        idx = rng.integers(0, n, size=n)
        for name, value in metrics([items[i] for i in idx]).items():
            values.setdefault(name, [])
            if value is not None:
                values[name].append(float(value))
    out: dict[str, tuple[float | None, float | None]] = {}
    for name, drawn in values.items():
        if not drawn:
            out[name] = (None, None)
            continue
        low, high = np.percentile(drawn, [50.0 * (1.0 - level), 50.0 * (1.0 + level)])
        out[name] = (float(low), float(high))
    return out


def per_class(metric: Callable[[list[T]], V], items_by_class: Mapping[str, Sequence[T]]) -> dict[str, V]:
    """{class name: metric(list of that class's items)}, e.g. per-class AUC or per-class F1@k."""
    return {name: metric(list(items)) for name, items in items_by_class.items()}


def abnormal_video_auc(scores, targets) -> float | None:
    """ROC AUC (percent) over the frames of abnormal videos only (videos whose target has at least one frame
    labelled 1), via `roc_auc` (ties count one half). None when there is no abnormal video or those videos have no
    normal frame."""
    if len(scores) != len(targets):
        raise ValueError(f"{len(scores)} score arrays but {len(targets)} targets")
    kept = [(np.asarray(s, dtype=np.float64).ravel(), np.asarray(t).ravel()) for s, t in zip(scores, targets)]
    kept = [(s, t) for s, t in kept if (t > 0).any()]
    if not kept:
        return None
    auc = roc_auc(np.concatenate([t for _, t in kept]), np.concatenate([s for s, _ in kept]))
    return None if auc is None else auc * 100.0
