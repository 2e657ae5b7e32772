"""evaluate: F1@k and frame AUC of one or more models' scores against temporal annotations.

`evaluate_models` is plain Python (reads scores, writes evaluation files and a run manifest): `vad evaluate` calls
it directly and needs no Prefect server; the `evaluate` flow wraps it for flows (the demo) and deployments."""

from __future__ import annotations

import logging

from prefect import flow

from tasks.jobs.annotations import load_annotations
from tasks.jobs.evaluate import evaluate_scores, markdown_table, write_evaluation
from tasks.store.manifest import DONE, SKIPPED, VideoOutcome, new_run_id, write_manifest
from tasks.store.output import OutputStore

from .settings import Settings

log = logging.getLogger(__name__)


def evaluate_models(
    settings: Settings,
    scores_urls: list[str],
    annotations_path: str,
    overlaps: tuple[float, ...] = (0.1, 0.25, 0.5),
    threshold: float | None = None,
) -> dict:
    annotations = load_annotations(annotations_path)
    results = []
    for url in scores_urls:
        store, model_id = OutputStore.locate(url, "scores", settings.storage.options)
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
        write_manifest(
            store,
            new_run_id("evaluate"),
            outcomes,
            {
                "flow": "evaluate",
                "model_id": model_id,
                "f1": result["f1"],
                "auc": result["auc"],
                "annotations": annotations_path,
            },
        )
    return {"results": results, "markdown": markdown_table(results)}


evaluate = flow(name="evaluate")(evaluate_models)
