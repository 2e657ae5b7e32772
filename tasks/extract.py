"""Extract one video: decode clips with decord, run the action backbone in batches, write the feature Parquet.

The plain function holds the logic (tests call it directly); the Prefect task around it is thin. A video that
cannot be decoded becomes a `failed` outcome with its reason; nothing is written for it.
"""
from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import torch
from prefect import task
from prefect.cache_policies import NO_CACHE

from .decode import ClipReader, VideoDecodeError
from .discover import VideoEntry
from .extractors import ExtractorSpec, cached_extractor
from .detectors import DetectorSpec
from .devices import pick_device
from .feature_store import feature_table, is_current, output_url, read_metadata, read_table, write_table
from .objects import detect_centre_frames, objects_table, objects_url
from .manifest import DONE, FAILED, SKIPPED, Timer, VideoOutcome
from .storage import join, local_path, read_bytes, write_bytes_atomic


def configure_threads(threads: int | None) -> None:
    """Torch threads per worker process: workers x threads should not exceed the cores."""
    if threads and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def features_url(out_root: str, spec: ExtractorSpec, video_id: str) -> str:
    return output_url(out_root, "features", spec.extractor_id, video_id)


def quarantine_url(out_root: str, spec: ExtractorSpec, video_id: str) -> str:
    """Where a video that failed to decode is recorded (hidden from Parquet dataset readers by the '_')."""
    return join(out_root, "features", spec.extractor_id, "_quarantine", video_id + ".json")


def quarantined_reason(out_root: str, spec: ExtractorSpec, entry: VideoEntry, storage_options=None) -> str | None:
    """The recorded failure of this exact file (same fingerprint), if any: it is not retried unless forced."""
    try:
        record = json.loads(read_bytes(quarantine_url(out_root, spec, entry.video_id), storage_options))
    except (FileNotFoundError, OSError, ValueError):
        return None
    return record.get("reason") if record.get("fingerprint") == entry.fingerprint else None


def features_are_current(entry: VideoEntry, spec: ExtractorSpec, out_root: str, storage_options=None,
                         tokens: bool = False) -> bool:
    """Features (with tokens when asked) exist for this exact file and this extractor."""
    meta = read_metadata(features_url(out_root, spec, entry.video_id), storage_options)
    return bool(meta) and meta.get("fingerprint") == entry.fingerprint and \
        meta.get("extractor_id") == spec.extractor_id and (not tokens or "tokens_shape" in meta)


def objects_are_current(entry: VideoEntry, detector: DetectorSpec | None, out_root: str, storage_options=None) -> bool:
    """Objects exist for this exact file and this detector (trivially true when none are asked for)."""
    return detector is None or is_current(objects_url(out_root, detector, entry.video_id), entry.fingerprint,
                                          "detector_id", detector.detector_id, storage_options)


def extraction_is_current(entry: VideoEntry, spec: ExtractorSpec, out_root: str, storage_options=None,
                          tokens: bool = False, detector: DetectorSpec | None = None) -> bool:
    """Features (with tokens when asked) and objects (when asked) exist for this exact file and these producers."""
    return features_are_current(entry, spec, out_root, storage_options, tokens) and \
        objects_are_current(entry, detector, out_root, storage_options)


def _features(path: str, entry: VideoEntry, spec: ExtractorSpec, batch_size: int, tokens: bool, device):
    model = cached_extractor(spec, device)
    reader = ClipReader(path, spec.clip_len, spec.stride, short_side=spec.short_side, name=entry.video_id)
    feats, toks, batch, clips = [], [], [], []
    for clip in reader:
        clips.append((clip.start_frame, clip.end_frame, clip.center_frame))
        batch.append(clip.frames)
        if len(batch) == batch_size:
            f, t = model.extract(np.stack(batch), tokens)
            feats.append(f), toks.append(t)
            batch = []
    if batch:
        f, t = model.extract(np.stack(batch), tokens)
        feats.append(f), toks.append(t)
    starts, ends, centers = (np.array(c) for c in zip(*clips))
    meta = {"extractor_id": spec.extractor_id, "fps": reader.fps, "frame_count": reader.n_frames,
            "fingerprint": entry.fingerprint, "video_id": entry.video_id, "width": reader.native_width,
            "height": reader.native_height, "weights": "random-init" if spec.is_random else spec.weights,
            "extractor_spec": json.dumps(dataclasses.asdict(spec)), "source_url": entry.url}
    return feature_table(entry.video_id, starts, ends, centers, reader.fps, np.concatenate(feats), meta,
                         np.concatenate(toks) if tokens else None)


def _objects(path: str, entry: VideoEntry, features, detector: DetectorSpec, device: str | None):
    starts, ends, centers = (features.column(c).to_numpy() for c in ("start_frame", "end_frame", "center_frame"))
    fps = float(features.schema.metadata[b"fps"])
    frames = detect_centre_frames(path, centers, detector, entry.video_id, device)
    meta = {"detector_id": detector.detector_id, "fps": fps, "fingerprint": entry.fingerprint,
            "frame_count": features.schema.metadata[b"frame_count"].decode(), "video_id": entry.video_id,
            "detector_spec": json.dumps(dataclasses.asdict(detector)),
            "weights": "random-init" if detector.weights == "random" else detector.weights}
    return objects_table(entry.video_id, starts, ends, centers, fps, frames, meta)


def extract_video(entry: VideoEntry, spec: ExtractorSpec, out_root: str, storage_options: dict | None = None,
                  batch_size: int = 8, tokens: bool = False, threads: int | None = None,
                  device: str | None = None, force: bool = False,
                  detector: DetectorSpec | None = None) -> VideoOutcome:
    """Action features (and tokens) per clip, plus object features of each clip's centre frame when a detector
    is given; only what is missing or stale is computed."""
    timer = Timer()
    target = features_url(out_root, spec, entry.video_id)
    have_features = not force and features_are_current(entry, spec, out_root, storage_options, tokens)
    have_objects = not force and objects_are_current(entry, detector, out_root, storage_options)
    if have_features and have_objects:
        return VideoOutcome(entry.video_id, SKIPPED, "extract", output=target, started_at=timer.started_at)
    configure_threads(threads)
    try:
        with local_path(entry.url, storage_options, suffix=os.path.splitext(entry.url)[1]) as path:
            if not have_features:
                features = _features(path, entry, spec, batch_size, tokens, device)
                write_table(target, features, storage_options)
            else:
                features = read_table(target, storage_options).table
            if detector is not None:  # rewritten with fresh features too: objects follow the features' clips
                write_table(objects_url(out_root, detector, entry.video_id),
                            _objects(path, entry, features, detector, device), storage_options)
    except VideoDecodeError as exc:
        write_bytes_atomic(quarantine_url(out_root, spec, entry.video_id),
                           json.dumps({"fingerprint": entry.fingerprint, "reason": exc.reason}).encode(),
                           storage_options)
        return VideoOutcome(entry.video_id, FAILED, "extract", error=exc.reason, seconds=timer.seconds,
                            started_at=timer.started_at)
    except Exception as exc:  # one video's failure (a vanished object, a model error) never stops the others
        return VideoOutcome(entry.video_id, FAILED, "extract", error=f"{exc.__class__.__name__}: {exc}",
                            seconds=timer.seconds, started_at=timer.started_at)
    return VideoOutcome(entry.video_id, DONE, "extract", seconds=timer.seconds, clips=features.num_rows,
                        output=target, started_at=timer.started_at)


@task(name="extract-video", cache_policy=NO_CACHE)
def extract_video_task(entry: VideoEntry, spec: ExtractorSpec, out_root: str, storage_options: dict | None = None,
                       batch_size: int = 8, tokens: bool = False, threads: int | None = None,
                       force: bool = False, detector: DetectorSpec | None = None,
                       gpu_requested: bool = False) -> VideoOutcome:
    return extract_video(entry, spec, out_root, storage_options, batch_size, tokens, threads,
                         pick_device(gpu_requested), force, detector)
