"""Train a temporal anomaly model (any entry of the model registry) from stored features and temporal
annotations; the result is a checkpoint and its model card in the output store."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import torch

from anomaly_models import TrainConfig, build_model, train
from anomaly_models.checkpoint import model_config
from anomaly_models.errors import NotFound, RefusedJob, UsageError

from ..media.specs import DetectorSpec, ExtractorSpec
from ..models.card import AnnotationMatch, ModelCard, TrainingRecord, spec_from_json
from ..models.inputs import InputSource, input_shapes
from ..models.repository import save_model
from ..store.output import OutputStore
from ..store.tables import ClipTable
from .annotations import Matching, VideoAnnotation, match_annotations


def load_labelled_inputs(
    source: InputSource, annotations: dict[str, VideoAnnotation], crops: bool = False
) -> tuple[list[ClipTable], list[Any], list, Matching]:
    """Inputs and clip labels of every annotated video under one extractor's feature folder."""
    ids = source.video_ids()
    if not ids:
        raise NotFound(f"no feature tables under {source.features_dir}")
    matching = match_annotations(annotations, ids)
    tables, inputs, labels = [], [], []
    for vid in sorted(matching.matched):
        table, x = source.load(vid, crops=crops)
        ann = matching.matched[vid]
        tables.append(table)
        inputs.append(x)
        labels.append(
            ann.clip_labels(
                table.column("start_frame"),
                table.column("end_frame"),
                int(table.metadata["frame_count"]),
                float(table.metadata["fps"]),
            )
        )
    if not tables:
        raise RefusedJob(
            f"no annotated videos among the {len(ids)} feature tables under {source.features_dir}; "
            f"annotation names not matched: {matching.unmatched_names[:10]}"
        )
    extractor_ids = {t.metadata["extractor_id"] for t in tables}
    if extractor_ids != {source.extractor_id}:
        raise RefusedJob(
            f"features under {source.features_dir} come from extractors {sorted(extractor_ids)}, "
            f"not only {source.extractor_id}"
        )
    return tables, inputs, labels, matching


def _detector_spec(source: InputSource, video_id: str) -> DetectorSpec | None:
    if not source.detector_id:
        return None
    meta = source.store.read_metadata(source.store.objects(source.detector_id, video_id)) or {}
    return spec_from_json(DetectorSpec, json.loads(meta["detector_spec"])) if "detector_spec" in meta else None


def train_from_features(
    source: InputSource,
    annotations: dict[str, VideoAnnotation],
    out: OutputStore,
    window: int = 64,
    epochs: int = 30,
    lr: float | None = None,
    threshold: float | None = 0.5,
    model_id: str | None = None,
    seed: int = 123,
    on_epoch: Callable[[int, float], None] | None = None,
    model_options: dict | None = None,
    random_crops: bool = True,
) -> ModelCard:
    """Train `source.model` on every annotated video of the source; with multi-crop features and `random_crops`,
    each window trains on a random crop per epoch (scoring uses the crop mean)."""
    entry = source.entry
    tables, inputs, labels, matching = load_labelled_inputs(source, annotations, random_crops)
    sampled = any(isinstance(x, dict) and "crops" in x for x in inputs)
    model_id = model_id or f"{entry.name}-w{window}-{source.extractor_id}"
    config = entry.config_for(input_shapes(inputs[0]), window, model_options)
    torch.manual_seed(seed)  # the initial weights follow the training seed, not whatever ran before
    try:
        model = build_model(entry.name, **config)
    except TypeError as exc:  # an option the model's constructor does not take
        raise UsageError(f"model_options: {exc}") from None
    device = "cuda" if torch.cuda.is_available() else "cpu"
    lr = lr or entry.lr
    threshold = 0.5 if threshold is None else threshold
    result = train(
        model,
        inputs,
        labels,
        TrainConfig(window=window, epochs=epochs, lr=lr, seed=seed, device=device, loss=entry.loss),
        on_epoch=on_epoch,
    )
    spec_json = tables[0].metadata.get("extractor_spec")
    card = ModelCard(
        model_id=model_id,
        model=entry.name,
        model_config=model_config(model),
        extractor_id=source.extractor_id,
        extractor=spec_from_json(ExtractorSpec, json.loads(spec_json)) if spec_json else None,
        window=window,
        threshold=threshold,
        detector_id=source.detector_id,
        detector=_detector_spec(source, tables[0].column("video_id")[0]),
        max_objects=source.max_objects,
        training=TrainingRecord(
            epochs=epochs,
            lr=lr,
            loss=entry.loss,
            seed=seed,
            history=result.history,
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            videos=len(tables),
            clips=int(sum(len(y) for y in labels)),
            abnormal_clips=int(sum(y.sum() for y in labels)),
            random_crops=sampled,
        ),
        annotations=AnnotationMatch(
            trained_videos=sorted(matching.matched),
            unmatched_annotations=matching.unmatched_names,
            ambiguous_annotations=matching.ambiguous_names,
            unannotated_videos=matching.unannotated_ids,
            invalid_annotations=matching.invalid,
        ),
    )
    return save_model(out, card, model.cpu())
