"""Evaluate stored clip scores against temporal annotations, overall and per annotated class, written as JSON and
markdown next to the scores: segmental F1@k (abnormal / normal / all), frame-level ROC AUC (all videos, and
abnormal videos only), AP two ways (scikit-learn's `average_precision_score` definition and the trapezoidal area
under the precision-recall curve most UCF-Crime/XD-Violence repositories report), the false-alarm rate on normal
videos at the threshold, temporal-IoU detection mAP at 0.1:0.1:0.5, and bootstrap intervals over videos for the
headline metrics (definitions: `anomaly_models.metrics`, `anomaly_models.benchmark_metrics`). Percentages
throughout. evaluation.html draws them (`evaluation_page`).

`evaluate_models` is the whole job (reads scores, writes evaluation files and a run manifest per model): plain
Python, so `vad evaluate` needs neither a Prefect server nor Prefect itself; flows wrap it."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from anomaly_models.benchmark_metrics import (
    abnormal_video_auc,
    average_precision,
    bootstrap_intervals,
    detection_map,
    false_alarm_rate,
    pr_auc_trapezoid,
    precision_recall_points,
    roc_points,
    thin,
)
from anomaly_models.errors import NotFound, RefusedJob
from anomaly_models.ground_truth import clip_frame_scores
from anomaly_models.metrics import f1_at_k, f1_score, frame_auc, segment_counts

from ..store.manifest import DONE, SKIPPED, VideoOutcome, new_run_id, write_manifest
from ..store.output import OutputStore
from .annotations import Matching, VideoAnnotation, load_annotations, match_annotations
from .evaluation_page import render_evaluation_html

log = logging.getLogger(__name__)


def _pct(value: float | None, scale: float = 1.0) -> float | None:
    return None if value is None else round(value * scale, 2)


def _frames(values) -> np.ndarray:
    return np.concatenate([np.asarray(v, dtype=np.float64).ravel() for v in values])


HEADLINE = ("auc", "ap", "ap_trapezoid", "far")


def headline(scores, targets, threshold: float) -> dict[str, float | None]:
    """AUC, both APs and the false-alarm rate (percent) of per-video frame scores and 0/1 targets."""
    y, s = _frames(targets), _frames(scores)
    normal = [sc for sc, t in zip(scores, targets) if not np.asarray(t).any()]
    return {
        "auc": _pct(frame_auc(scores, targets)),
        "ap": _pct(average_precision(y, s), 100),
        "ap_trapezoid": _pct(pr_auc_trapezoid(y, s), 100),
        "far": _pct(false_alarm_rate(normal, threshold), 100),
    }


def _iou_key(k: float | str) -> str:
    return k if isinstance(k, str) else str(int(round(k * 100)))


def _views(preds, targets, scores, overlaps, threshold: float) -> dict:
    f1 = f1_at_k(preds, targets, overlaps)
    counts = [segment_counts(p, t, min(overlaps), (1,)) for p, t in zip(preds, targets)]
    detection = detection_map(scores, targets, threshold)
    return {
        "f1": {view: {str(int(round(k * 100))): round(v, 2) for k, v in row.items()} for view, row in f1.items()},
        **headline(scores, targets, threshold),
        "auc_abnormal_videos": _pct(abnormal_video_auc(scores, targets)),
        "detection_map": {_iou_key(k): _pct(v) for k, v in detection.items()},
        "videos": len(preds),
        "abnormal_segments": sum(tp + fn for tp, _, fn in counts),
        "false_alarms": sum(fp for _, fp, _ in counts),
    }


def intervals(per_video: list, overlaps, threshold: float, resamples: int, seed: int = 0) -> dict:
    """95% percentile bootstrap intervals over videos (seeded) of the headline metrics and abnormal F1@k, all
    computed on the same resamples. F1@k sums per-video segment counts before F1 (as `f1_at_k`), so each video's
    counts are computed once and a resample only adds them up."""
    counts = {k: np.array([segment_counts(r[1], r[2], k, (1,)) for r in per_video]) for k in overlaps}

    def metrics(drawn: list[int]) -> dict[str, float | None]:
        rows = [per_video[i] for i in drawn]
        out = headline([r[3] for r in rows], [r[2] for r in rows], threshold)
        for k in overlaps:
            tp, fp, fn = counts[k][drawn].sum(0)
            out[f"f1_abnormal@{int(round(k * 100))}"] = f1_score(int(tp), int(fp), int(fn))
        return out

    found = bootstrap_intervals(metrics, list(range(len(per_video))), resamples, seed)
    return {name: [None if v is None else round(v, 2) for v in pair] for name, pair in found.items()}


def scored_videos(
    store: OutputStore, model_id: str, annotations: dict[str, VideoAnnotation]
) -> tuple[Matching, list[tuple[str, np.ndarray, np.ndarray, float]]]:
    """(matching, per annotated video: class, frame scores, 0/1 frame targets, the threshold it was scored with).
    Clip scores become frame scores by repeating each clip's score over its frames; lengths that do not fit the
    video are refused (`anomaly_models.ground_truth`)."""
    scores_root = store.scores_dir(model_id)
    ids = store.video_ids(scores_root)
    if not ids:
        raise NotFound(f"no score tables under {scores_root}")
    matching = match_annotations(annotations, ids)
    out = []
    for vid in sorted(matching.matched):
        t = store.read_table(store.scores(model_id, vid))
        n, fps = int(t.metadata["frame_count"]), float(t.metadata["fps"])
        frame_scores = clip_frame_scores(t.column("score"), t.column("start_frame"), t.column("end_frame"), n, vid)
        ann = matching.matched[vid]
        out.append((ann.label_class, frame_scores, ann.frame_labels(n, fps), float(t.metadata.get("threshold", 0.5))))
    if not out:
        raise RefusedJob(f"no annotated videos among the {len(ids)} scored videos under {scores_root}")
    return matching, out


def _card(store: OutputStore, model_id: str) -> dict:
    try:
        card = store.read_json(store.model_file(model_id, "config.json"))
    except (FileNotFoundError, ValueError):
        return {}
    return card if isinstance(card, dict) else {}


def model_threshold(card: dict) -> float | None:
    """The threshold in the model's card (`_card`: {} when the store does not hold it), a calibrated model's
    current one; else None and each score table's own (the card's at scoring time)."""
    try:
        return float(card["threshold"])
    except (KeyError, TypeError, ValueError):
        return None


def curves(scores, targets) -> dict:
    """ROC and precision-recall points over all frames (at most 300 each, for plots and evaluation.json)."""
    y, s = _frames(targets), _frames(scores)
    out = {}
    roc, pr = roc_points(y, s), precision_recall_points(y, s)
    if roc is not None:
        out["roc"] = dict(zip(("fpr", "tpr"), thin(*roc)))
    if pr is not None:
        out["pr"] = dict(zip(("precision", "recall"), thin(*pr)))
    return out


def evaluate_scores(
    store: OutputStore,
    model_id: str,
    annotations: dict[str, VideoAnnotation],
    threshold: float | None = None,
    overlaps=(0.1, 0.25, 0.5),
    resamples: int = 1000,
) -> dict:
    """Every metric of one model's scores; `resamples` bootstrap resamples for the intervals (0: none)."""
    matching, scored = scored_videos(store, model_id, annotations)
    card = _card(store, model_id)
    current = threshold if threshold is not None else model_threshold(card)
    per_video = []
    for cls, frame_scores, target, own in scored:
        thr = own if current is None else current
        per_video.append((cls, (frame_scores > thr).astype(int), target, frame_scores, thr))
    thr = per_video[0][4]
    result = {
        "model_id": model_id,
        "threshold": thr,
        "overlaps": [int(round(k * 100)) for k in overlaps],
        **_views([p[1] for p in per_video], [p[2] for p in per_video], [p[3] for p in per_video], overlaps, thr),
        "intervals": intervals(per_video, overlaps, thr, resamples) if resamples else {},
        "bootstrap": {"resamples": resamples, "level": 0.95, "seed": 0, "over": "videos"},
        "unmatched_annotations": matching.unmatched_names,
        "ambiguous_annotations": matching.ambiguous_names,
        "unannotated_videos": matching.unannotated_ids,
        "invalid_annotations": matching.invalid,
        "evaluated_videos": sorted(matching.matched),
        "per_class": {},
        "curves": curves([p[3] for p in per_video], [p[2] for p in per_video]),
    }
    if card.get("calibration"):
        result["calibration"] = card["calibration"]
        history = card.get("threshold_history") or [{}]
        result["previous_threshold"] = history[-1].get("threshold")
    for cls in sorted({p[0] for p in per_video}):
        rows = [p for p in per_video if p[0] == cls]
        result["per_class"][cls] = _views(
            [p[1] for p in rows], [p[2] for p in rows], [p[3] for p in rows], overlaps, thr
        )
    return result


def _cell(value) -> str:
    return "-" if value is None else f"{value:.2f}"


def markdown_table(results: list[dict]) -> str:
    """The thesis's table, one row per model: F1@k per view, then frame AUC, AP (scikit-learn's definition), AP
    (trapezoidal PR area), the false-alarm rate on normal videos; then bootstrap intervals and per-class rows."""
    ks = results[0]["overlaps"]
    head = "| model | " + " | ".join(f"{v} F1@{k}" for v in ("abnormal", "normal", "all") for k in ks)
    lines = [head + " | AUC | AP | AP (trapezoid) | FAR % |", "|" + "---|" * (5 + 3 * len(ks))]
    for r in results:
        cells = [f"{r['f1'][v][str(k)]:.2f}" for v in ("abnormal", "normal", "all") for k in ks]
        cells += [_cell(r.get(m)) for m in HEADLINE]
        lines.append(f"| {r['model_id']} | " + " | ".join(cells) + " |")
    with_intervals = [r for r in results if r.get("intervals")]
    if with_intervals:
        names = list(with_intervals[0]["intervals"])
        n = with_intervals[0]["bootstrap"]["resamples"]
        lines += ["", f"95% intervals (percentile bootstrap over videos, {n} resamples, seed 0):", "",
                  "| model | " + " | ".join(names) + " |", "|" + "---|" * (1 + len(names))]  # fmt: skip
        for r in with_intervals:
            pairs = [r["intervals"][m] for m in names]
            lines.append(f"| {r['model_id']} | " + " | ".join(f"{_cell(lo)}–{_cell(hi)}" for lo, hi in pairs) + " |")
    for r in results:
        if r["per_class"]:
            lines += [
                "",
                f"Per class ({r['model_id']}; abnormal F1 is '-' for classes without anomalies, "
                f"false alarms = predicted abnormal segments matching nothing at IoU {ks[0]}%):",
                "",
                "| class | videos | " + " | ".join(f"abnormal F1@{k}" for k in ks) + " | false alarms | AUC |",
                "|" + "---|" * (4 + len(ks)),
            ]
            for cls, row in r["per_class"].items():
                has = row["abnormal_segments"] > 0
                cells = [f"{row['f1']['abnormal'][str(k)]:.2f}" if has else "-" for k in ks]
                auc = row["auc"] if row["auc"] is not None else "-"
                lines.append(
                    f"| {cls} | {row['videos']} | " + " | ".join(cells) + f" | {row['false_alarms']} | {auc} |"
                )
    return "\n".join(lines) + "\n"


def write_evaluation(store: OutputStore, model_id: str, result: dict, annotations: str = "") -> tuple[str, ...]:
    """evaluation.json, evaluation.md and evaluation.html next to the model's scores."""
    page = render_evaluation_html([result], annotations)
    return (
        store.write_json(store.evaluation(model_id, ".json"), result),
        store.write_bytes(store.evaluation(model_id, ".md"), markdown_table([result]).encode()),
        store.write_bytes(store.evaluation(model_id, ".html"), page.encode()),
    )


def evaluate_models(
    scores_urls: list[str],
    annotations_path: str,
    overlaps: tuple[float, ...] = (0.1, 0.25, 0.5),
    threshold: float | None = None,
    storage_options: dict[str, Any] | None = None,
    resamples: int = 1000,
) -> dict:
    """Evaluate each `<root>/scores/<model_id>` folder; writes its evaluation files and an `evaluate` run manifest
    in its store. Returns every result and the side-by-side markdown table."""
    annotations = load_annotations(annotations_path, storage_options)
    results, stores = [], []
    for url in scores_urls:
        store, model_id = OutputStore.locate(url, "scores", storage_options)
        result = evaluate_scores(store, model_id, annotations, threshold, overlaps, resamples)
        result["written"] = write_evaluation(store, model_id, result, annotations_path)
        stores.append(store)
        if result["unmatched_annotations"]:
            log.warning("%d annotated names have no scores (not evaluated)", len(result["unmatched_annotations"]))
        for vid, problems in result["invalid_annotations"].items():
            log.warning("%s not evaluated: %s", vid, "; ".join(problems))
        results.append(result)
        outcomes = [VideoOutcome(v, DONE, "evaluate") for v in result["evaluated_videos"]] + [
            VideoOutcome(v, SKIPPED, "evaluate", error="no annotation") for v in result["unannotated_videos"]
        ]
        info = {"flow": "evaluate", "model_id": model_id, "f1": result["f1"],
                **{m: result[m] for m in HEADLINE}, "annotations": annotations_path}  # fmt: skip
        write_manifest(store, new_run_id("evaluate"), outcomes, info)
    out = {"results": results, "markdown": markdown_table(results)}
    if len(results) > 1 and len({s.root for s in stores}) == 1:
        page = render_evaluation_html(results, annotations_path)
        out["comparison"] = stores[0].write_bytes(stores[0].comparison(), page.encode())
    return out
