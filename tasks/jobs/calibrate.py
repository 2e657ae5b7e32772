"""Choose a model's operating threshold on a validation split, and keep where it came from.

Candidate thresholds are the distinct frame scores of the validation videos (a frame is abnormal when its score
is above the threshold, so predictions change only there; at most 512 of them, by quantile) plus 0. For each, the
curve holds abnormal F1@k, the false-alarm rate on normal videos and the recall of abnormal segments at IoU k
(percent). Criteria:
- `f1`: the middle of the widest threshold interval with the highest F1@k (`middle_of_best_f1`: the most margin on
  either side; a few validation videos often leave a wide plateau, and its edges are where test scores fall off);
- `far`: the lowest candidate whose false-alarm rate is at most `target` percent (the most recall it allows);
- `recall`: the highest candidate whose segment recall is at least `target` percent (the fewest alarms).
Candidates are kept exact (a score stored as float32 is not rounded): `score > threshold` must mean on test data what
it meant on the curve.
The chosen threshold goes into the model card with the whole curve; the previous one is kept in
`threshold_history`. Reports and scans use the card's threshold from then on.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone

import numpy as np

from anomaly_models.benchmark_metrics import false_alarm_rate
from anomaly_models.errors import RefusedJob, UsageError
from anomaly_models.metrics import f1_score, segment_counts

from ..models.card import Calibration, ModelCard
from ..models.repository import write_card
from ..store.output import OutputStore
from .annotations import VideoAnnotation
from .evaluate import scored_videos

CRITERIA = ("f1", "far", "recall")
MAX_CANDIDATES = 512


def candidates(frame_scores: list[np.ndarray]) -> np.ndarray:
    values = np.unique(np.concatenate([np.asarray(s, np.float64).ravel() for s in frame_scores]))
    if len(values) > MAX_CANDIDATES:
        values = np.unique(np.quantile(values, np.linspace(0, 1, MAX_CANDIDATES)))
    return np.unique(np.r_[0.0, values])


def threshold_curve(frame_scores: list[np.ndarray], targets: list[np.ndarray], k: float) -> list[dict]:
    """One point per candidate threshold: abnormal F1@k, FAR on normal videos, abnormal segment recall@k."""
    normal = [s for s, t in zip(frame_scores, targets) if not np.asarray(t).any()]
    curve = []
    for thr in candidates(frame_scores):
        counts = np.array([segment_counts((s > thr).astype(int), t, k, (1,)) for s, t in zip(frame_scores, targets)])
        tp, fp, fn = (int(v) for v in counts.sum(0))
        far = false_alarm_rate(normal, float(thr))
        curve.append({
            "threshold": float(thr),  # exact: a rounded candidate could fall below the score it stands for
            "f1": round(f1_score(tp, fp, fn), 4),
            "far": None if far is None else round(100 * far, 4),
            "recall": round(100 * tp / (tp + fn), 4) if tp + fn else None,
        })  # fmt: skip
    return curve


def middle_of_best_f1(curve: list[dict]) -> float:
    """The middle of the widest threshold interval over which F1@k stays at its best. Predictions change only at
    candidates, so a run of best-F1 candidates c_i..c_j holds for every threshold in [c_i, c_{j+1}) (up to 1.0, or
    the last candidate, after the last run); the middle of that interval is never a score itself."""
    best = max(p["f1"] for p in curve)
    ordered = sorted(curve, key=lambda p: p["threshold"])
    bounds = [p["threshold"] for p in ordered[1:]] + [max(1.0, ordered[-1]["threshold"])]
    runs: list[list[float]] = []  # [start, end) of each run
    for i, point in enumerate(ordered):
        if point["f1"] != best:
            continue
        if i and ordered[i - 1]["f1"] == best:
            runs[-1][1] = bounds[i]
        else:
            runs.append([point["threshold"], bounds[i]])
    start, end = max(runs, key=lambda r: r[1] - r[0])
    return (start + end) / 2


def choose(curve: list[dict], criterion: str, target: float | None = None) -> float:
    if criterion not in CRITERIA:
        raise UsageError(f"by: expected one of {CRITERIA}, got {criterion!r}")
    if criterion == "f1":
        return middle_of_best_f1(curve)
    if target is None:
        raise UsageError(f"target: --by {criterion} needs --target (percent)")
    if criterion == "far":
        ok = [p["threshold"] for p in curve if p["far"] is not None and p["far"] <= target]
        if not ok:
            raise RefusedJob(f"no threshold keeps the false-alarm rate at or below {target:g}% (no normal videos?)")
        return min(ok)
    ok = [p["threshold"] for p in curve if p["recall"] is not None and p["recall"] >= target]
    if not ok:
        raise RefusedJob(f"no threshold reaches {target:g}% recall of abnormal segments (no abnormal videos?)")
    return max(ok)


def calibrate(
    model_store: OutputStore,
    card: ModelCard,
    scores: OutputStore,
    annotations: dict[str, VideoAnnotation],
    annotations_path: str,
    criterion: str = "f1",
    k: float = 0.25,
    target: float | None = None,
) -> ModelCard:
    """Choose the threshold on the model's validation scores in `scores`; write and return the updated card."""
    if not 0 < k <= 1:
        raise UsageError(f"k: IoU threshold must be in (0, 1], got {k}")
    _, scored = scored_videos(scores, card.model_id, annotations)
    curve = threshold_curve([s[1] for s in scored], [s[2] for s in scored], k)
    threshold = choose(curve, criterion, target)
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    source = "calibration" if card.calibration else "training"
    record = Calibration(criterion, k, target, threshold, scores.scores_dir(card.model_id), annotations_path,
                         len(scored), now, curve)  # fmt: skip
    history = [*card.threshold_history, {"threshold": card.threshold, "source": source, "replaced": now}]
    updated = dataclasses.replace(card, threshold=threshold, calibration=record, threshold_history=history)
    write_card(model_store, updated)
    return updated
