"""Evaluate stored clip scores against temporal annotations: F1@k (abnormal / normal / all) and frame AUC,
overall and per annotated class, written as JSON and markdown next to the scores.

`evaluate_models` is the whole job (reads scores, writes evaluation files and a run manifest per model): plain
Python, so `vad evaluate` needs neither a Prefect server nor Prefect itself; flows wrap it."""

from __future__ import annotations

import logging
from typing import Any

from anomaly_models.errors import NotFound, RefusedJob
from anomaly_models.metrics import clips_to_frames, f1_at_k, frame_auc, segment_counts

from ..store.manifest import DONE, SKIPPED, VideoOutcome, new_run_id, write_manifest
from ..store.output import OutputStore
from .annotations import VideoAnnotation, load_annotations, match_annotations

log = logging.getLogger(__name__)


def _views(preds, targets, scores, overlaps) -> dict:
    f1 = f1_at_k(preds, targets, overlaps)
    counts = [segment_counts(p, t, min(overlaps), (1,)) for p, t in zip(preds, targets)]
    return {
        "f1": {view: {str(int(round(k * 100))): round(v, 2) for k, v in row.items()} for view, row in f1.items()},
        "auc": None if (auc := frame_auc(scores, targets)) is None else round(auc, 2),
        "videos": len(preds),
        "abnormal_segments": sum(tp + fn for tp, _, fn in counts),
        "false_alarms": sum(fp for _, fp, _ in counts),
    }


def evaluate_scores(
    store: OutputStore,
    model_id: str,
    annotations: dict[str, VideoAnnotation],
    threshold: float | None = None,
    overlaps=(0.1, 0.25, 0.5),
) -> dict:
    scores_root = store.scores_dir(model_id)
    ids = store.video_ids(scores_root)
    if not ids:
        raise NotFound(f"no score tables under {scores_root}")
    matching = match_annotations(annotations, ids)
    per_video = []
    for vid in sorted(matching.matched):
        t = store.read_table(store.scores(model_id, vid))
        thr = float(t.metadata.get("threshold", 0.5)) if threshold is None else threshold
        n, fps = int(t.metadata["frame_count"]), float(t.metadata["fps"])
        frame_scores = clips_to_frames(t.column("score"), t.column("start_frame"), t.column("end_frame"), n)
        ann = matching.matched[vid]
        per_video.append(
            (ann.label_class, (frame_scores > thr).astype(int), ann.frame_labels(n, fps), frame_scores, thr)
        )
    if not per_video:
        raise RefusedJob(f"no annotated videos among the {len(ids)} scored videos under {scores_root}")
    result = {
        "model_id": model_id,
        "threshold": per_video[0][4],
        "overlaps": [int(round(k * 100)) for k in overlaps],
        **_views([p[1] for p in per_video], [p[2] for p in per_video], [p[3] for p in per_video], overlaps),
        "unmatched_annotations": matching.unmatched_names,
        "ambiguous_annotations": matching.ambiguous_names,
        "unannotated_videos": matching.unannotated_ids,
        "invalid_annotations": matching.invalid,
        "evaluated_videos": sorted(matching.matched),
        "per_class": {},
    }
    for cls in sorted({p[0] for p in per_video}):
        rows = [p for p in per_video if p[0] == cls]
        result["per_class"][cls] = _views([p[1] for p in rows], [p[2] for p in rows], [p[3] for p in rows], overlaps)
    return result


def markdown_table(results: list[dict]) -> str:
    """The thesis's table: one row per model, F1@k per view, frame AUC; then per-class rows."""
    ks = results[0]["overlaps"]
    head = "| model | " + " | ".join(f"{v} F1@{k}" for v in ("abnormal", "normal", "all") for k in ks) + " | AUC |"
    lines = [head, "|" + "---|" * (2 + 3 * len(ks))]
    for r in results:
        cells = [f"{r['f1'][v][str(k)]:.2f}" for v in ("abnormal", "normal", "all") for k in ks]
        lines.append(f"| {r['model_id']} | " + " | ".join(cells) + f" | {r['auc'] if r['auc'] is not None else '-'} |")
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


def write_evaluation(store: OutputStore, model_id: str, result: dict) -> tuple[str, str]:
    """evaluation.json and evaluation.md next to the model's scores."""
    return (
        store.write_json(store.evaluation(model_id, ".json"), result),
        store.write_bytes(store.evaluation(model_id, ".md"), markdown_table([result]).encode()),
    )


def evaluate_models(
    scores_urls: list[str],
    annotations_path: str,
    overlaps: tuple[float, ...] = (0.1, 0.25, 0.5),
    threshold: float | None = None,
    storage_options: dict[str, Any] | None = None,
) -> dict:
    """Evaluate each `<root>/scores/<model_id>` folder; writes its evaluation files and an `evaluate` run manifest
    in its store. Returns every result and the side-by-side markdown table."""
    annotations = load_annotations(annotations_path)
    results = []
    for url in scores_urls:
        store, model_id = OutputStore.locate(url, "scores", storage_options)
        result = evaluate_scores(store, model_id, annotations, threshold, overlaps)
        result["written"] = write_evaluation(store, model_id, result)
        if result["unmatched_annotations"]:
            log.warning("%d annotated names have no scores (not evaluated)", len(result["unmatched_annotations"]))
        for vid, problems in result["invalid_annotations"].items():
            log.warning("%s not evaluated: %s", vid, "; ".join(problems))
        results.append(result)
        outcomes = [VideoOutcome(v, DONE, "evaluate") for v in result["evaluated_videos"]] + [
            VideoOutcome(v, SKIPPED, "evaluate", error="no annotation") for v in result["unannotated_videos"]
        ]
        info = {"flow": "evaluate", "model_id": model_id, "f1": result["f1"], "auc": result["auc"],
                "annotations": annotations_path}  # fmt: skip
        write_manifest(store, new_run_id("evaluate"), outcomes, info)
    return {"results": results, "markdown": markdown_table(results)}
