"""Train a temporal anomaly model from stored features and temporal annotations."""
from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timezone

import torch

from anomaly_models import TrainConfig, build_model, layers_for_window, train

from .annotations import VideoAnnotation, match_annotations
from .feature_store import list_tables, read_table
from .model_store import save_model
from .storage import join


def load_labelled_features(features_url: str, annotations: dict[str, VideoAnnotation], storage_options=None):
    """Features and clip labels of every annotated video under one extractor's feature folder."""
    ids = list_tables(features_url, storage_options)
    if not ids:
        raise FileNotFoundError(f"no feature tables under {features_url}")
    matching = match_annotations(annotations, ids)
    feats, labels, extractor_ids, specs = [], [], set(), set()
    for vid in sorted(matching.matched):
        t = read_table(join(features_url, vid + ".parquet"), storage_options)
        ann = matching.matched[vid]
        feats.append(t.features)
        labels.append(ann.clip_labels(t.column("start_frame"), t.column("end_frame"), int(t.metadata["frame_count"]),
                                      float(t.metadata["fps"])))
        extractor_ids.add(t.metadata["extractor_id"])
        specs.add(t.metadata.get("extractor_spec", "{}"))
    if len(extractor_ids) > 1:
        raise ValueError(f"features under {features_url} come from several extractors: {sorted(extractor_ids)}")
    if not feats:
        raise ValueError(f"no annotated videos among the {len(ids)} feature tables under {features_url}; "
                         f"annotation names not matched: {matching.unmatched_names[:10]}")
    return feats, labels, extractor_ids.pop(), json.loads(specs.pop()), matching


def train_from_features(features_url: str, annotations: dict[str, VideoAnnotation], out_root: str,
                        model_name: str = "adnet", window: int = 64, epochs: int = 30, lr: float = 5e-4,
                        threshold: float = 0.5, model_id: str | None = None, seed: int = 123,
                        storage_options=None, on_epoch: Callable[[int, float], None] | None = None) -> dict:
    feats, labels, extractor_id, spec, matching = load_labelled_features(features_url, annotations, storage_options)
    model_id = model_id or f"{model_name}-w{window}-{extractor_id}"
    model = build_model(model_name, in_dim=feats[0].shape[1], layers=layers_for_window(window))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    result = train(model, feats, labels, TrainConfig(window=window, epochs=epochs, lr=lr, seed=seed, device=device),
                   on_epoch=on_epoch)
    config = {
        "model_id": model_id, "model": model_name, "model_config": model.config, "extractor_id": extractor_id,
        "extractor_spec": spec, "window": window, "threshold": threshold, "epochs": epochs, "lr": lr, "seed": seed,
        "history": result.history, "videos": len(feats), "abnormal_clips": int(sum(l.sum() for l in labels)),
        "clips": int(sum(len(l) for l in labels)), "unmatched_annotations": matching.unmatched_names,
        "unannotated_videos": matching.unannotated_ids,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    save_model(out_root, model_id, model.cpu(), model_name, config, storage_options)
    return config
