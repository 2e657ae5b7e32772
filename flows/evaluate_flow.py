"""evaluate: F1@k and frame AUC of one or more models' scores against temporal annotations, as a flow (for the
demo and deployments). The job itself is plain Python (`tasks.jobs.evaluate.evaluate_models`): `vad evaluate`
calls it directly and needs no Prefect."""

from __future__ import annotations

from prefect import flow

from tasks.jobs.evaluate import evaluate_models

from .settings import Settings


@flow(name="evaluate")
def evaluate(
    settings: Settings,
    scores_urls: list[str],
    annotations_path: str,
    overlaps: tuple[float, ...] = (0.1, 0.25, 0.5),
    threshold: float | None = None,
) -> dict:
    settings = settings.at_runtime()
    return evaluate_models(scores_urls, annotations_path, overlaps, threshold, settings.storage.options)
