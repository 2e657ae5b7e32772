"""train_model: stored features + temporal annotations -> models/<model_id>/checkpoint.pt + config.json."""
from __future__ import annotations

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from tasks.annotations import load_annotations
from tasks.manifest import DONE, SKIPPED, VideoOutcome, new_run_id, write_manifest
from tasks.train import train_from_features

from .progress import console
from .settings import Settings

train_task = task(train_from_features, name="train-model", cache_policy=NO_CACHE)


@flow(name="train-model")
def train_model(settings: Settings, features_url: str, annotations_path: str, model_id: str | None = None,
                objects_url: str | None = None) -> dict:
    logger = get_run_logger()
    annotations = load_annotations(annotations_path)
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} epochs"),
               TextColumn("loss {task.fields[loss]:.4f}"), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        bar = progress.add_task(f"training {settings.model}", total=settings.epochs, loss=float("nan"))
        config = train_task(features_url, annotations, settings.out, settings.model, settings.window,
                            settings.epochs, settings.lr, settings.threshold, model_id,
                            storage_options=settings.storage_options,
                            on_epoch=lambda e, loss: progress.update(bar, completed=e + 1, loss=loss),
                            objects_url=objects_url, max_objects=settings.max_objects,
                            model_options=settings.model_options)
    if config["unmatched_annotations"]:
        logger.warning("%d annotated names have no features: %s", len(config["unmatched_annotations"]),
                       config["unmatched_annotations"][:10])
    if config["unannotated_videos"]:
        logger.warning("%d videos have no annotation and were not used: %s", len(config["unannotated_videos"]),
                       config["unannotated_videos"][:10])
    outcomes = [VideoOutcome(v, DONE, "train") for v in config["trained_videos"]] + \
        [VideoOutcome(v, SKIPPED, "train", error="no annotation") for v in config["unannotated_videos"]]
    write_manifest(settings.out, new_run_id("train"), outcomes,
                   {"flow": "train-model", "model_id": config["model_id"], "features": features_url,
                    "annotations": annotations_path, "final_loss": config["history"][-1]}, settings.storage_options)
    return config
