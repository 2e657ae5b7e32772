"""Train a temporal anomaly model (ADNet, ADOR, MLP, ED-TCN) from stored features and temporal annotations."""
from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timezone

import torch

from anomaly_models import TrainConfig, build_model, train

from .annotations import VideoAnnotation, match_annotations
from .feature_store import list_tables, read_metadata
from .model_inputs import DEFAULTS, OBJECT_MODELS, load_video_inputs, model_kwargs
from .model_store import save_model
from .storage import join


def load_labelled_inputs(model_name: str, features_url: str, annotations: dict[str, VideoAnnotation],
                         objects_url: str | None = None, max_objects: int = 36, storage_options=None):
    """Inputs and clip labels of every annotated video under one extractor's feature folder."""
    ids = list_tables(features_url, storage_options)
    if not ids:
        raise FileNotFoundError(f"no feature tables under {features_url}")
    matching = match_annotations(annotations, ids)
    tables, inputs, labels = [], [], []
    for vid in sorted(matching.matched):
        table, x = load_video_inputs(model_name, features_url, vid, objects_url, max_objects, storage_options)
        ann = matching.matched[vid]
        tables.append(table)
        inputs.append(x)
        labels.append(ann.clip_labels(table.column("start_frame"), table.column("end_frame"),
                                      int(table.metadata["frame_count"]), float(table.metadata["fps"])))
    if not tables:
        raise ValueError(f"no annotated videos among the {len(ids)} feature tables under {features_url}; "
                         f"annotation names not matched: {matching.unmatched_names[:10]}")
    extractor_ids = {t.metadata["extractor_id"] for t in tables}
    if len(extractor_ids) > 1:
        raise ValueError(f"features under {features_url} come from several extractors: {sorted(extractor_ids)}")
    return tables, inputs, labels, matching


def train_from_features(features_url: str, annotations: dict[str, VideoAnnotation], out_root: str,
                        model_name: str = "adnet", window: int = 64, epochs: int = 30, lr: float | None = None,
                        threshold: float | None = 0.5, model_id: str | None = None, seed: int = 123,
                        storage_options=None, on_epoch: Callable[[int, float], None] | None = None,
                        objects_url: str | None = None, max_objects: int = 36,
                        model_options: dict | None = None) -> dict:
    if model_name not in DEFAULTS:
        raise ValueError(f"unknown model {model_name!r}; known: {sorted(DEFAULTS)}")
    tables, inputs, labels, matching = load_labelled_inputs(model_name, features_url, annotations, objects_url,
                                                            max_objects, storage_options)
    extractor_id = tables[0].metadata["extractor_id"]
    model_id = model_id or f"{model_name}-w{window}-{extractor_id}"
    model = build_model(model_name, **model_kwargs(model_name, tables[0], inputs[0], window, model_options or {}))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    lr = lr or DEFAULTS[model_name]["lr"]
    threshold = 0.5 if threshold is None else threshold
    result = train(model, inputs, labels, TrainConfig(window=window, epochs=epochs, lr=lr, seed=seed, device=device,
                                                      loss=DEFAULTS[model_name]["loss"]), on_epoch=on_epoch)
    detector = None
    if model_name in OBJECT_MODELS:
        first = read_metadata(join(objects_url, tables[0].column("video_id")[0] + ".parquet"), storage_options)
        detector = {"detector_id": first["detector_id"], "detector_spec": json.loads(first["detector_spec"])}
    config = {
        "model_id": model_id, "model": model_name, "model_config": model.config, "extractor_id": extractor_id,
        "extractor_spec": json.loads(tables[0].metadata.get("extractor_spec", "{}")), "window": window,
        "threshold": threshold, "epochs": epochs, "lr": lr, "seed": seed, "history": result.history,
        "needs_tokens": model_name in OBJECT_MODELS, "max_objects": max_objects,
        "detector_id": detector and detector["detector_id"], "detector_spec": detector and detector["detector_spec"],
        "videos": len(tables), "abnormal_clips": int(sum(y.sum() for y in labels)),
        "clips": int(sum(len(y) for y in labels)), "unmatched_annotations": matching.unmatched_names,
        "unannotated_videos": matching.unannotated_ids, "trained_videos": sorted(matching.matched),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    save_model(out_root, model_id, model.cpu(), model_name, config, storage_options)
    return config
