"""evaluate: F1@k and frame AUC of one or more models' scores against temporal annotations."""
from __future__ import annotations

from prefect import flow, get_run_logger

from tasks.annotations import load_annotations
from tasks.evaluation import evaluate_scores, markdown_table, write_evaluation

from .settings import Settings


@flow(name="evaluate")
def evaluate(settings: Settings, scores_urls: list[str], annotations_path: str,
             overlaps: tuple[float, ...] = (0.1, 0.25, 0.5), threshold: float | None = None) -> dict:
    logger = get_run_logger()
    annotations = load_annotations(annotations_path)
    results = []
    for url in scores_urls:
        result = evaluate_scores(url, annotations, threshold, overlaps, settings.storage_options)
        result["written"] = write_evaluation(url, result, settings.storage_options)
        if result["unmatched_annotations"]:
            logger.warning("%d annotated names have no scores (not evaluated)", len(result["unmatched_annotations"]))
        results.append(result)
    return {"results": results, "markdown": markdown_table(results)}
