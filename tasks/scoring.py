"""Score clips with a trained model: windows + stitching, one score per clip, written as
scores/<model_id>/<video_id>.parquet. A model only scores features of the extractor it was trained on."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
from prefect import task
from prefect.cache_policies import NO_CACHE

from anomaly_models import predict
from anomaly_models.checkpoint import require_extractor

from .devices import pick_device
from .feature_store import clip_columns, output_url, read_metadata, table_bytes
from .manifest import DONE, FAILED, SKIPPED, Timer, VideoOutcome
from .model_inputs import load_video_inputs, objects_root_for
from .model_store import load_model
from .storage import write_bytes_atomic

def scores_url(out_root: str, model_id: str, video_id: str) -> str:
    return output_url(out_root, "scores", model_id, video_id)


def score_is_current(out_root: str, config: dict, video_id: str, fingerprint: str, storage_options=None) -> bool:
    meta = read_metadata(scores_url(out_root, config["model_id"], video_id), storage_options)
    return bool(meta) and meta.get("fingerprint") == fingerprint and \
        meta.get("checkpoint_sha256") == config["checkpoint_sha256"]


def score_video(video_id: str, features_root: str, model_url: str, out_root: str, storage_options=None,
                device: str = "cpu", force: bool = False) -> VideoOutcome:
    timer = Timer()
    model, payload, config = load_model(model_url, device, storage_options)
    objects_root = objects_root_for(features_root, config["detector_id"]) if config.get("detector_id") else None
    features, inputs = load_video_inputs(config["model"], features_root, video_id, objects_root,
                                         config.get("max_objects", 36), storage_options)
    require_extractor(payload, features.metadata["extractor_id"])
    target = scores_url(out_root, config["model_id"], video_id)
    if not force and score_is_current(out_root, config, video_id, features.metadata["fingerprint"], storage_options):
        return VideoOutcome(video_id, SKIPPED, "score", output=target, started_at=timer.started_at)
    scores = predict(model, inputs, config["window"], device)
    fps = float(features.metadata["fps"])
    cols = clip_columns(video_id, features.column("start_frame"), features.column("end_frame"),
                        features.column("center_frame"), fps)
    cols["score"] = pa.array(scores.astype(np.float32))
    meta = {**{k: features.metadata[k] for k in ("fps", "frame_count", "fingerprint", "extractor_id")},
            "source_url": features.metadata.get("source_url", ""), "model_id": config["model_id"],
            "checkpoint_sha256": config["checkpoint_sha256"], "threshold": config["threshold"]}
    table = pa.table(cols).replace_schema_metadata({k: str(v) for k, v in meta.items()})
    write_bytes_atomic(target, table_bytes(table), storage_options)
    return VideoOutcome(video_id, DONE, "score", seconds=timer.seconds, clips=len(scores), output=target,
                        started_at=timer.started_at)


def score_batch(video_ids: list[str], features_root: str, model_url: str, out_root: str, storage_options=None,
                gpu_requested: bool = False, force: bool = False) -> list[VideoOutcome]:
    """One task scores a batch of videos (the model is loaded once per worker and cached)."""
    device = pick_device(gpu_requested)
    outcomes = []
    for vid in video_ids:
        try:
            outcomes.append(score_video(vid, features_root, model_url, out_root, storage_options, device, force))
        except Exception as exc:  # one bad table must not stop the batch
            outcomes.append(VideoOutcome(vid, FAILED, "score", error=f"{exc.__class__.__name__}: {exc}"))
    return outcomes


@task(name="score-videos", cache_policy=NO_CACHE)
def score_batch_task(video_ids: list[str], features_root: str, model_url: str, out_root: str,
                     storage_options=None, gpu_requested: bool = False, force: bool = False) -> list[VideoOutcome]:
    return score_batch(video_ids, features_root, model_url, out_root, storage_options, gpu_requested, force)
