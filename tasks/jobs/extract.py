"""Extract videos: decode clips (several videos at once, `media.feed`), run the action backbone on batches that
span videos, write one feature Parquet per video; with a detector, also the centre-frame object features.

Only what is missing or stale is computed. A video that cannot be decoded is quarantined (its fingerprint and
reason recorded) and becomes a `failed` outcome; nothing else is written for it. The networks (torch) are imported
only when a video is really extracted: planning a scan uses this module's job and freshness checks without them.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from anomaly_models.errors import VideoError

from ..media.decoder import IsolatedVideo, TimeLimit
from ..media.devices import configure_threads
from ..media.feed import Decoded, Failed, Finished, Hold, Opened, clip_feed, default_decode_workers
from ..media.specs import DetectorSpec, ExtractorSpec
from ..media.video import Clip, VideoDecodeError
from ..store.archive import Archive, VideoEntry
from ..store.manifest import DONE, FAILED, SKIPPED, Timer, VideoOutcome, failure_reason
from ..store.output import OutputStore
from ..store.tables import clip_columns, feature_table, objects_table


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
    decode_workers: int | None = None  # videos decoding at once per task; None: from the worker's cores
    decoder: str = "decord"  # media.backends: decord | pyav | torchcodec (not part of the extractor id)
    precision: str = "fp32"  # fp32 | bf16 | fp16: the forward under autocast (not part of the extractor id)
    channels_last: bool = True  # 3D convolutions channels-last: faster on CPUs too (not part of the extractor id)


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


@dataclass
class _Video:
    """One video's extraction in progress: its clips as they are decoded, their features as batches finish."""

    entry: VideoEntry
    have_features: bool
    timer: Timer = field(default_factory=Timer)
    clips: list[tuple[int, int, int]] = field(default_factory=list)
    pooled: dict[int, np.ndarray] = field(default_factory=dict)  # clip number -> features, filled batch by batch
    tokens: dict[int, np.ndarray] = field(default_factory=dict)
    crops: dict[int, np.ndarray] = field(default_factory=dict)
    info: dict | None = None  # set when its last clip was decoded
    hold: Hold | None = None
    outcome: VideoOutcome | None = None
    features: pa.Table | None = None  # written; the objects of its centre frames may still be in detection
    objects: list = field(default_factory=list)  # FrameObjects per clip, filled batch by batch
    waiting: int = 0  # centre frames still in the detection batch

    @property
    def ready(self) -> bool:
        return (self.outcome is None and self.features is None and self.info is not None
                and len(self.pooled) == len(self.clips))  # fmt: skip


def _feature_table(v: _Video, job: ExtractJob) -> pa.Table:
    spec, info, n = job.spec, v.info or {}, len(v.clips)
    starts, ends, centers = (np.array(c) for c in zip(*v.clips))
    meta = {
        "extractor_id": spec.extractor_id,
        "fps": info["fps"],
        "frame_count": info["frame_count"],
        "reported_frame_count": info["reported_frame_count"],
        "fingerprint": v.entry.fingerprint,
        "video_id": v.entry.video_id,
        "width": info["width"],
        "height": info["height"],
        "weights": _weights_label(spec.weights),
        "extractor_spec": json.dumps(dataclasses.asdict(spec)),
        "source_url": v.entry.url,
        "decoder": job.decoder,
        "precision": job.precision,
        "channels_last": str(job.channels_last).lower(),
        **_part_metadata(v.entry),
    }
    pooled = np.stack([v.pooled[i] for i in range(n)])
    tokens = np.stack([v.tokens[i] for i in range(n)]) if job.tokens else None
    crops = np.stack([v.crops[i] for i in range(n)]) if v.crops else None
    return feature_table(v.entry.video_id, starts, ends, centers, info["fps"], pooled, meta, tokens, crops)


def _objects_table(entry: VideoEntry, features: pa.Table, detector: DetectorSpec, frames: list) -> pa.Table:
    starts, ends, centers = (features.column(c).to_numpy() for c in ("start_frame", "end_frame", "center_frame"))
    fps = float(features.schema.metadata[b"fps"])
    meta = {
        "detector_id": detector.detector_id,
        "fps": fps,
        "fingerprint": entry.fingerprint,
        "frame_count": features.schema.metadata[b"frame_count"].decode(),
        "video_id": entry.video_id,
        "detector_spec": json.dumps(dataclasses.asdict(detector)),
        "weights": _weights_label(detector.weights),
        **_part_metadata(entry),
    }
    return objects_table(entry.video_id, starts, ends, centers, fps, frames, meta)


class _Detections:
    """Centre frames of several videos through the detector in shared batches of `batch_size` (frames of any size:
    the detector's transform pads them), so short videos do not each run a batch of one. A video's frames are
    copied out of its open video (which is then released) and wait here; at most `batch_size - 1` frames wait
    between batches. A video is written when its last frame's objects are back (`done`)."""

    def __init__(self, job: ExtractJob, device: str | None, done, failed) -> None:
        assert job.detector is not None
        self.spec, self.device = job.detector, device
        self.batch_size, self.done, self.failed = job.batch_size, done, failed
        self.frames: list[tuple[_Video, int, np.ndarray]] = []

    def add(self, video: _Video, source: IsolatedVideo) -> None:
        """Read the video's centre frames (short side at most the detector's size) into the batch."""
        assert video.features is not None
        centers = video.features.column("center_frame").to_numpy()
        video.objects, video.waiting = [None] * len(centers), len(centers)
        number = 0
        for chunk in source.frames(centers, max_short_side=self.spec.size):
            for frame in chunk:
                self.frames.append((video, number, frame))
                number += 1
                if len(self.frames) >= self.batch_size:
                    self.flush()
        if video.waiting == 0 and video.outcome is None:  # no clip at all: nothing to wait for
            self.done(video)

    def flush(self) -> None:
        held = [f for f in self.frames if f[0].outcome is None]
        self.frames = []
        if not held:
            return
        try:
            from ..media.detectors import cached_detector  # built on first use: a detector that cannot load fails

            found = cached_detector(self.spec, self.device).detect([frame for _, _, frame in held])
        except Exception as exc:  # the videos of this batch only, as does one bad batch
            for video in {id(v): v for v, _, _ in held}.values():
                self.failed(video, exc)
            return
        for (video, number, _), objects in zip(held, found):
            video.objects[number] = objects
            video.waiting -= 1
            if video.waiting == 0 and video.outcome is None:
                self.done(video)


def extract_video(
    entry: VideoEntry, store: OutputStore, job: ExtractJob, archive: Archive | None = None, device: str | None = None
) -> VideoOutcome:
    """`extract_videos` of one video."""
    return extract_videos([entry], store, job, archive, device)[0]


def extract_videos(
    entries: list[VideoEntry],
    store: OutputStore,
    job: ExtractJob,
    archive: Archive | None = None,
    device: str | None = None,
) -> list[VideoOutcome]:
    """Action features (and tokens) per clip of each video, plus object features of each clip's centre frame when
    the job has a detector; only what is missing or stale is computed. `job.decode_workers` videos decode at once
    (`media.feed`) and every forward pass takes `job.batch_size` clips from whichever videos they came from. Any
    failure is that video's `failed` outcome (a failed forward pass fails the videos it held clips of); the others
    go on. Outcomes in the order of `entries`."""
    videos: list[_Video] = []
    for entry in entries:
        video = _Video(entry, have_features=False)
        try:  # every read and write of a video, freshness checks included: a fault fails this video only
            video.have_features = not job.force and features_current(store, job, entry) is not None
            have_objects = not job.force and objects_current(store, job, entry)
        except Exception as exc:
            video.outcome = _failed(video, exc)
        else:
            if entry.part is not None and video.have_features:
                # merged already: part 0 finishes what is missing (objects) for the whole video, the others skip
                video.entry = dataclasses.replace(entry, part=None)
                if entry.part[0] != 0 or have_objects:
                    video.outcome = VideoOutcome(entry.video_id, SKIPPED, "extract-part",
                                                 started_at=video.timer.started_at)  # fmt: skip
            elif video.have_features and have_objects:
                target = store.features(job.spec.extractor_id, entry.video_id)
                video.outcome = VideoOutcome(entry.video_id, SKIPPED, "extract", output=target,
                                             started_at=video.timer.started_at)  # fmt: skip
        videos.append(video)
    todo = [v for v in videos if v.outcome is None]
    if todo:
        configure_threads(job.threads)
        _run(todo, store, job, archive, device)
    return [v.outcome or _failed(v, RuntimeError("not extracted")) for v in videos]


def _failed(video: _Video, exc: BaseException) -> VideoOutcome:
    """The video's `failed` outcome; a video error's own reason (the manifest names the video already)."""
    reason = exc.reason if isinstance(exc, VideoError) else failure_reason(exc)
    return VideoOutcome(video.entry.video_id, FAILED, "extract", error=reason, seconds=video.timer.seconds,
                        started_at=video.timer.started_at)  # fmt: skip


def _run(todo: list[_Video], store: OutputStore, job: ExtractJob, archive: Archive | None, device: str | None) -> None:
    spec = job.spec
    model = None
    if any(not v.have_features for v in todo):
        from ..media.backbones import cached_extractor

        model = cached_extractor(spec, device).feeding(job.precision, job.channels_last)

    @contextmanager
    def open_video(video: _Video) -> Iterator[IsolatedVideo]:
        with (
            (archive or Archive(video.entry.url)).local_copy(video.entry) as path,
            IsolatedVideo(path, video.entry.video_id, job.limit, job.verify_frames, job.decoder) as source,
        ):
            yield source

    def read_clips(video: _Video, source: IsolatedVideo) -> Iterator[Clip]:
        if video.have_features:  # only the objects are missing: no clip is decoded
            return iter(())
        return source.clips(spec.clip_len, spec.stride, short_side=spec.short_side, part=video.entry.part)

    batch: list[tuple[_Video, int, np.ndarray]] = []

    def flush() -> None:
        if not batch or model is None:
            return
        held = [b for b in batch if b[0].outcome is None]
        batch.clear()
        if not held:
            return
        try:
            out = model.extract(np.stack([frames for _, _, frames in held]), job.tokens)
        except Exception as exc:  # one bad batch fails the videos in it, not the run
            for video in {id(v): v for v, _, _ in held}.values():
                _finish_failed(video, exc, store, job)
            return
        for row, (video, number, _) in enumerate(held):
            video.pooled[number] = out.pooled[row]
            if out.tokens is not None:
                video.tokens[number] = out.tokens[row]
            if out.crops is not None:
                video.crops[number] = out.crops[row]

    detections = None
    if job.detector is not None:
        detections = _Detections(job, device, lambda v: _write_objects(v, store, job),
                                 lambda v, exc: _finish_failed(v, exc, store, job))  # fmt: skip

    def finish_ready() -> None:
        for video in todo:
            if video.ready:
                _finish(video, store, job, detections)

    workers = job.decode_workers or default_decode_workers()
    for event in clip_feed(todo, open_video, read_clips, workers, depth=2 * job.batch_size * workers,
                           hold=job.detector is not None):  # fmt: skip
        if isinstance(event, Opened):
            todo[event.index].timer = event.timer
        elif isinstance(event, Decoded):
            video = todo[event.index]
            if video.outcome is None and not video.have_features:
                clip = event.clip
                video.clips.append((clip.start_frame, clip.end_frame, clip.center_frame))
                batch.append((video, len(video.clips) - 1, clip.frames))
                if len(batch) >= job.batch_size:
                    flush()
                    finish_ready()
        elif isinstance(event, Finished):
            video = todo[event.index]
            video.info, video.hold = event.info, event.hold
            if video.hold is not None or video.have_features:  # the decode thread waits for it: finish it now
                if any(v is video for v, _, _ in batch):
                    flush()
                _finish(video, store, job, detections)
            finish_ready()
        elif isinstance(event, Failed):
            _finish_failed(todo[event.index], event.error, store, job)
    flush()
    finish_ready()
    if detections is not None:
        detections.flush()


def _finish(video: _Video, store: OutputStore, job: ExtractJob, detections: _Detections | None) -> None:
    """Write a video whose clips all have features; with a detector, its centre frames go to the shared detection
    batch (read from the decode thread's open video, released after) and it is done when their objects are."""
    entry, spec = video.entry, job.spec
    target = store.features(spec.extractor_id, entry.video_id)
    try:
        if video.outcome is not None:
            return
        if video.have_features:
            features = store.read_table(target).table
        elif not video.clips and entry.part is not None and int((video.info or {}).get("frame_count", 0)) > 0:
            _write_empty_part(video, store, job)  # more parts than this video has clips: nothing is missing
            return
        else:
            if not video.clips:
                raise VideoDecodeError(entry.video_id, "no clips could be read")
            features = _feature_table(video, job)
            store.write_table(_own(store, target, entry), features)
        video.features = features
        if detections is not None and video.hold is not None:  # objects follow the features' clips
            detections.add(video, video.hold.video)
        else:
            _done(video, store, job)
    except Exception as exc:
        _finish_failed(video, exc, store, job)
    finally:
        if video.hold is not None:
            video.hold.release()


def _write_objects(video: _Video, store: OutputStore, job: ExtractJob) -> None:
    assert job.detector is not None and video.features is not None
    try:
        table = _objects_table(video.entry, video.features, job.detector, video.objects)
        store.write_table(
            _own(store, store.objects(job.detector.detector_id, video.entry.video_id), video.entry), table
        )
        _done(video, store, job)
    except Exception as exc:
        _finish_failed(video, exc, store, job)


def _part_metadata(entry: VideoEntry) -> dict[str, str]:
    """What a part table carries so that only parts of one split merge."""
    return {} if entry.part is None else {"split_id": entry.split_id, "part": f"{entry.part[0]}/{entry.part[1]}"}


def _write_empty_part(video: _Video, store: OutputStore, job: ExtractJob) -> None:
    """A part whose clip range is empty: zero-row tables of the clip columns (skipped by the merge)."""
    entry, info = video.entry, video.info or {}
    meta = {"fingerprint": entry.fingerprint, "fps": info.get("fps", 0.0), **_part_metadata(entry)}
    empty = pa.table(clip_columns(entry.video_id, [], [], [], float(info.get("fps") or 1.0)))
    empty = empty.replace_schema_metadata({k: str(v) for k, v in meta.items()})
    urls = [store.features(job.spec.extractor_id, entry.video_id)]
    if job.detector is not None:
        urls.append(store.objects(job.detector.detector_id, entry.video_id))
    for url in urls:
        store.write_table(_own(store, url, entry), empty)
    video.features = empty
    _done(video, store, job)


def _own(store: OutputStore, table_url: str, entry: VideoEntry) -> str:
    """Where this task writes a table of the video: the table itself, or its part when the video is split."""
    return table_url if entry.part is None else store.part_file(table_url, *entry.part)


def _done(video: _Video, store: OutputStore, job: ExtractJob) -> None:
    """The video's outcome; a part merges the parts when it finds all of them written (the last one does)."""
    assert video.features is not None
    entry, timer = video.entry, video.timer
    target, rows = store.features(job.spec.extractor_id, entry.video_id), video.features.num_rows
    if entry.part is not None:
        merged = merge_parts(store, job, entry)
        if merged is None:  # other parts still running: the last one merges
            k, n = entry.part
            video.outcome = VideoOutcome(entry.video_id, SKIPPED, "extract-part", seconds=timer.seconds, clips=rows,
                                         error=f"part {k + 1} of {n} written; merged by the last part",
                                         started_at=timer.started_at)  # fmt: skip
            return
        rows = merged
    video.outcome = VideoOutcome(entry.video_id, DONE, "extract", seconds=timer.seconds, clips=rows, output=target,
                                 started_at=timer.started_at)  # fmt: skip


def merge_parts(store: OutputStore, job: ExtractJob, entry: VideoEntry) -> int | None:
    """When every part of this split (`entry.split_id`) of the video is written for this version of the file, its
    features (and objects) are concatenated in clip order into the video's tables, and every part file of the video
    is deleted (stale ones of earlier splits too); returns the clips, or None while parts are missing. Two parts
    finishing at once may both merge (the same tables, written atomically); one that finds the parts gone while
    reading them takes the other's merge."""
    assert entry.part is not None
    n = entry.part[1]
    tables = [store.features(job.spec.extractor_id, entry.video_id)]
    if job.detector is not None:
        tables.append(store.objects(job.detector.detector_id, entry.video_id))
    parts = {url: [store.part_file(url, k, n) for k in range(n)] for url in tables}
    for urls in parts.values():
        for url in urls:
            meta = store.read_metadata(url)
            if meta is None or (meta.get("fingerprint"), meta.get("split_id")) != (entry.fingerprint, entry.split_id):
                return None
    try:
        merged = {url: pa.concat_tables([t for t in (store.read_arrow(u) for u in urls) if t.num_rows])
                  for url, urls in parts.items()}  # fmt: skip
    except FileNotFoundError:  # another part merged them meanwhile
        meta = store.read_metadata(tables[0])
        if meta is None or meta.get("fingerprint") != entry.fingerprint:
            return None
        return store.read_table(tables[0]).table.num_rows
    clips = 0
    for url, table in merged.items():
        table = table.take(pa.array(np.argsort(table.column("start_frame").to_numpy(), kind="stable")))
        index = table.schema.get_field_index("clip_index")
        table = table.set_column(index, "clip_index", pa.array(np.arange(len(table), dtype=np.int32)))
        meta = {k: v for k, v in (table.schema.metadata or {}).items() if k not in (b"split_id", b"part")}
        store.write_table(url, table.replace_schema_metadata(meta))
        clips = len(table)
    for url in tables:
        for part in store.part_files(url):
            try:
                store.delete(part)
            except FileNotFoundError:  # deleted by the other part merging at the same time
                pass
    return clips


def _finish_failed(video: _Video, exc: BaseException, store: OutputStore, job: ExtractJob) -> None:
    """A video that cannot be decoded, or timed out, is quarantined until the file changes (or --force); any other
    failure (a vanished object, a model or storage error) only fails it."""
    if video.outcome is not None and video.outcome.status == FAILED:
        return
    if isinstance(exc, VideoError):
        try:
            store.write_json(store.quarantine(job.spec.extractor_id, video.entry.video_id),
                             {"fingerprint": video.entry.fingerprint, "reason": exc.reason})  # fmt: skip
        except Exception as write_error:
            exc = write_error
    video.outcome = _failed(video, exc)
    if video.hold is not None:
        video.hold.release()
