"""train_model: stored features + temporal annotations -> models/<model_id>/checkpoint.pt + config.json."""

from __future__ import annotations

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from anomaly_models.errors import UsageError
from tasks.jobs.annotations import load_annotations
from tasks.jobs.train import train_from_features
from tasks.models.card import ModelCard
from tasks.models.inputs import InputSource
from tasks.store.manifest import DONE, SKIPPED, VideoOutcome, new_run_id, write_manifest
from tasks.store.output import OutputStore

from .progress import console
from .settings import Settings

train_task = task(train_from_features, name="train-model", cache_policy=NO_CACHE)


def input_source(settings: Settings, features_url: str, objects_url: str | None = None) -> InputSource:
    """--features <root>/features/<extractor_id> [--objects <root>/objects/<detector_id>] -> where inputs live."""
    store, extractor_id = OutputStore.locate(features_url, "features", settings.storage.options)
    detector_id = None
    if objects_url:
        objects_store, detector_id = OutputStore.locate(objects_url, "objects", settings.storage.options)
        if objects_store.root != store.root:
            raise UsageError(f"objects: {objects_url} must live in the same output root as the features ({store.root})")
    return InputSource(store, settings.model.name, extractor_id, detector_id, settings.detector.max_objects)


@flow(name="train-model")
def train_model(
    settings: Settings,
    features_url: str,
    annotations_path: str,
    model_id: str | None = None,
    objects_url: str | None = None,
) -> ModelCard:
    settings = settings.at_runtime()
    logger = get_run_logger()
    annotations = load_annotations(annotations_path)
    source = input_source(settings, features_url, objects_url)
    m = settings.model
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} epochs"),
        TextColumn("loss {task.fields[loss]:.4f}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        bar = progress.add_task(f"training {m.name}", total=m.epochs, loss=float("nan"))
        card = train_task(
            source,
            annotations,
            settings.store,
            m.window,
            m.epochs,
            m.lr,
            m.threshold,
            model_id,
            on_epoch=lambda e, loss: progress.update(bar, completed=e + 1, loss=loss),
            model_options=m.options,
            random_crops=m.random_crops,
            seed=m.seed,
        )
    matched = card.annotations
    if matched.unmatched_annotations:
        logger.warning(
            "%d annotated names have no features: %s",
            len(matched.unmatched_annotations),
            matched.unmatched_annotations[:10],
        )
    for vid, problems in matched.invalid_annotations.items():
        logger.warning("%s left out of training: %s", vid, "; ".join(problems))
    if matched.unannotated_videos:
        logger.warning(
            "%d videos have no annotation and were not used: %s",
            len(matched.unannotated_videos),
            matched.unannotated_videos[:10],
        )
    outcomes = [VideoOutcome(v, DONE, "train") for v in matched.trained_videos] + [
        VideoOutcome(v, SKIPPED, "train", error="no annotation") for v in matched.unannotated_videos
    ]
    write_manifest(
        settings.store,
        new_run_id("train"),
        outcomes,
        {
            "flow": "train-model",
            "model_id": card.model_id,
            "features": features_url,
            "annotations": annotations_path,
            "final_loss": card.training.history[-1],
        },
    )
    return card
