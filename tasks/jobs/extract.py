"""Extract one video: decode clips, run the action backbone in batches, write the feature Parquet; with a
detector, also the centre-frame object features.

Only what is missing or stale is computed. A video that cannot be decoded is quarantined (its fingerprint and
reason recorded) and becomes a `failed` outcome; nothing else is written for it. The networks (torch) are imported
only when a video is really extracted: planning a scan uses this module's job and freshness checks without them.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from anomaly_models.errors import VideoError

from ..media.decoder import IsolatedVideo, TimeLimit
from ..media.devices import configure_threads
from ..media.prefetch import prefetched
from ..media.specs import DetectorSpec, ExtractorSpec
from ..store.archive import Archive, VideoEntry
from ..store.manifest import DONE, FAILED, SKIPPED, Timer, VideoOutcome, failure_reason
from ..store.output import OutputStore
from ..store.tables import feature_table, objects_table


@dataclass(frozen=True)
class ExtractJob:
    """What to extract from each video (picklable: it travels to Dask workers)."""

    spec: ExtractorSpec
    tokens: bool = False  # also store spatial token maps (ADOR)
    detector: DetectorSpec | None = None  # also centre-frame object features (ADOR)
    batch_size: int = 8  # clips per forward pass
    threads: int | None = None  # torch threads per worker process
    force: bool = False
    limit: TimeLimit = TimeLimit()  # per-video decode time limit
    verify_frames: bool = True  # probe for listed frames that do not decode (and never read them)


def features_current(store: OutputStore, job: ExtractJob, entry: VideoEntry) -> dict[str, str] | None:
    """The stored features' metadata when they exist for this exact file and extractor (with tokens when asked)."""
    return store.current_metadata(
        store.features(job.spec.extractor_id, entry.video_id),
        {"fingerprint": entry.fingerprint, "extractor_id": job.spec.extractor_id},
        required=("tokens_shape",) if job.tokens else (),
    )


def objects_current(store: OutputStore, job: ExtractJob, entry: VideoEntry) -> bool:
    """Objects exist for this exact file and detector (trivially true when none are asked for)."""
    return job.detector is None or store.is_current(
        store.objects(job.detector.detector_id, entry.video_id),
        {"fingerprint": entry.fingerprint, "detector_id": job.detector.detector_id},
    )


def extraction_current(store: OutputStore, job: ExtractJob, entry: VideoEntry) -> bool:
    return features_current(store, job, entry) is not None and objects_current(store, job, entry)


def quarantined_reason(store: OutputStore, spec: ExtractorSpec, entry: VideoEntry) -> str | None:
    """The recorded failure of this exact file (same fingerprint), if any: it is not retried unless forced."""
    try:
        record = store.read_json(store.quarantine(spec.extractor_id, entry.video_id))
    except (FileNotFoundError, OSError, ValueError):
        return None
    return record.get("reason") if record.get("fingerprint") == entry.fingerprint else None


def _weights_label(weights: str) -> str:
    return "random-init" if weights == "random" else weights


def _features(source: IsolatedVideo, entry: VideoEntry, job: ExtractJob, device: str | None) -> pa.Table:
    from ..media.backbones import cached_extractor

    spec = job.spec
    model = cached_extractor(spec, device)
    feats: list[np.ndarray] = []
    toks: list[np.ndarray] = []
    crops: list[np.ndarray] = []
    batch: list[np.ndarray] = []
    clips: list[tuple[int, int, int]] = []

    def flush() -> None:
        out = model.extract(np.stack(batch), job.tokens)
        feats.append(out.pooled)
        if out.tokens is not None:
            toks.append(out.tokens)
        if out.crops is not None:
            crops.append(out.crops)
        batch.clear()

    decoded = source.clips(spec.clip_len, spec.stride, short_side=spec.short_side)
    for clip in prefetched(decoded, depth=2 * job.batch_size):  # the next batch decodes while this one runs
        clips.append((clip.start_frame, clip.end_frame, clip.center_frame))
        batch.append(clip.frames)
        if len(batch) == job.batch_size:
            flush()
    if batch:
        flush()
    starts, ends, centers = (np.array(c) for c in zip(*clips))
    meta = {
        "extractor_id": spec.extractor_id,
        "fps": source.fps,
        "frame_count": source.n_frames,
        "reported_frame_count": source.reported_frames,
        "fingerprint": entry.fingerprint,
        "video_id": entry.video_id,
        "width": source.native_width,
        "height": source.native_height,
        "weights": _weights_label(spec.weights),
        "extractor_spec": json.dumps(dataclasses.asdict(spec)),
        "source_url": entry.url,
    }
    return feature_table(
        entry.video_id,
        starts,
        ends,
        centers,
        source.fps,
        np.concatenate(feats),
        meta,
        np.concatenate(toks) if job.tokens else None,
        np.concatenate(crops) if crops else None,
    )


def _objects(
    source: IsolatedVideo, entry: VideoEntry, features: pa.Table, detector: DetectorSpec, device: str | None
) -> pa.Table:
    from ..media.detectors import detect_centre_frames

    starts, ends, centers = (features.column(c).to_numpy() for c in ("start_frame", "end_frame", "center_frame"))
    fps = float(features.schema.metadata[b"fps"])
    frames = detect_centre_frames(source, centers, detector, device)
    meta = {
        "detector_id": detector.detector_id,
        "fps": fps,
        "fingerprint": entry.fingerprint,
        "frame_count": features.schema.metadata[b"frame_count"].decode(),
        "video_id": entry.video_id,
        "detector_spec": json.dumps(dataclasses.asdict(detector)),
        "weights": _weights_label(detector.weights),
    }
    return objects_table(entry.video_id, starts, ends, centers, fps, frames, meta)


def extract_video(
    entry: VideoEntry, store: OutputStore, job: ExtractJob, archive: Archive | None = None, device: str | None = None
) -> VideoOutcome:
    """Action features (and tokens) per clip, plus object features of each clip's centre frame when the job has a
    detector; only what is missing or stale is computed. Any failure is this video's `failed` outcome."""
    timer = Timer()
    spec = job.spec
    target = store.features(spec.extractor_id, entry.video_id)
    try:  # every read and write of this video, freshness checks included: a fault fails this video only
        have_features = not job.force and features_current(store, job, entry) is not None
        have_objects = not job.force and objects_current(store, job, entry)
        if have_features and have_objects:
            return VideoOutcome(entry.video_id, SKIPPED, "extract", output=target, started_at=timer.started_at)
        configure_threads(job.threads)
        with (
            (archive or Archive(entry.url)).local_copy(entry) as path,
            IsolatedVideo(path, entry.video_id, job.limit, job.verify_frames) as source,
        ):
            features = store.read_table(target).table if have_features else _features(source, entry, job, device)
            if not have_features:
                store.write_table(target, features)
            if job.detector is not None:  # rewritten with fresh features too: objects follow the features' clips
                store.write_table(
                    store.objects(job.detector.detector_id, entry.video_id),
                    _objects(source, entry, features, job.detector, device),
                )
    except VideoError as exc:  # cannot decode, or timed out: quarantined until the file changes (or --force)
        store.write_json(
            store.quarantine(spec.extractor_id, entry.video_id),
            {"fingerprint": entry.fingerprint, "reason": exc.reason},
        )
        return VideoOutcome(
            entry.video_id, FAILED, "extract", error=exc.reason, seconds=timer.seconds, started_at=timer.started_at
        )
    except Exception as exc:  # one video's failure (a vanished object, a model error) never stops the others
        return VideoOutcome(
            entry.video_id,
            FAILED,
            "extract",
            error=failure_reason(exc),
            seconds=timer.seconds,
            started_at=timer.started_at,
        )
    return VideoOutcome(
        entry.video_id,
        DONE,
        "extract",
        seconds=timer.seconds,
        clips=features.num_rows,
        output=target,
        started_at=timer.started_at,
    )
