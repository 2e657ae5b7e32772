"""Analysts' verdicts on reported events, kept next to the model's reports and turned into labels.

```
<root>/reviews/<model_id>/<reviewed_at>-<review_id>.parquet   one review per part (REVIEW_SCHEMA), append only
<root>/reviews/<model_id>/compacted-<first>-<last>.parquet    many parts merged (every review kept)
```
Saving writes a new object under a unique name, so two reviewers saving at once both land, on a local disk and on
S3 alike (no read-modify-write). An event's state is its latest review (`reviewed_at`, then `review_id`); every
review stays in the data. Parts are merged (`compact`) when there are more than COMPACT_AT, deduplicated by
`review_id`, so a merge racing another save or merge loses nothing and counts nothing twice.

As labels (`vad evaluate` / `vad calibrate` with `--annotations <out>/reviews/<model_id>`): a video is labelled
when its events' latest verdicts include a confirmed or a false alarm and no "unsure"; its ground truth is its
confirmed events (start_s..end_s), so everything else in it counts as normal. Review every event of a video you
mark; videos nobody reviewed are not labelled."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from anomaly_models.errors import UsageError

from ..store.output import OutputStore
from .annotations import VideoAnnotation

VERDICTS = ("confirmed", "false_alarm", "unsure")
COMPACT_AT = 200
NOTE_LIMIT = 2000

REVIEW_SCHEMA = pa.schema(
    [
        ("review_id", pa.string()),
        ("event_id", pa.string()),
        ("video_id", pa.string()),
        ("camera", pa.string()),
        ("start_s", pa.float64()),
        ("end_s", pa.float64()),
        ("verdict", pa.string()),
        ("note", pa.string()),
        ("reviewer", pa.string()),
        ("reviewed_at", pa.timestamp("ms", tz="UTC")),
    ]
)


def _text(review: Mapping[str, Any], key: str, limit: int = 500) -> str:
    value = review.get(key, "")
    if not isinstance(value, str):
        raise UsageError(f"review: {key} must be text, got {type(value).__name__}")
    if len(value) > limit:
        raise UsageError(f"review: {key} is longer than {limit} characters")
    return value


def _seconds(review: Mapping[str, Any], key: str) -> float:
    try:
        value = float(review[key])
    except (KeyError, TypeError, ValueError):
        raise UsageError(f"review: {key} must be a number of seconds, got {review.get(key)!r}") from None
    if not np.isfinite(value) or value < 0:
        raise UsageError(f"review: {key} must be a non-negative number of seconds, got {value!r}")
    return value


def new_review(review: Mapping[str, Any], reviewer: str) -> dict[str, Any]:
    """A validated review row from what a page sent; every problem names its field."""
    verdict = _text(review, "verdict")
    if verdict not in VERDICTS:
        raise UsageError(f"review: verdict must be one of {', '.join(VERDICTS)}, got {verdict!r}")
    for key in ("event_id", "video_id"):
        if not _text(review, key):
            raise UsageError(f"review: {key} is missing")
    start, end = _seconds(review, "start_s"), _seconds(review, "end_s")
    if end < start:
        raise UsageError(f"review: end_s ({end:g}) is before start_s ({start:g})")
    return {
        "review_id": uuid.uuid4().hex,
        "event_id": _text(review, "event_id"),
        "video_id": _text(review, "video_id", 1000),
        "camera": _text(review, "camera"),
        "start_s": start,
        "end_s": end,
        "verdict": verdict,
        "note": _text(review, "note", NOTE_LIMIT),
        "reviewer": _text({"reviewer": reviewer}, "reviewer", 200) or "anonymous",
        "reviewed_at": datetime.now(timezone.utc),
    }


def save_review(store: OutputStore, model_id: str, review: dict[str, Any]) -> str:
    """One review as its own part (a new object: concurrent saves never overwrite each other)."""
    stamp = review["reviewed_at"].strftime("%Y%m%dT%H%M%S%fZ")
    table = pa.Table.from_pylist([review], schema=REVIEW_SCHEMA)
    return store.write_table(store.review_part(model_id, f"{stamp}-{review['review_id']}"), table)


def _parts(store: OutputStore, model_id: str) -> list[str]:
    return sorted(store.modified_times(store.reviews_dir(model_id), ".parquet"))


def read_reviews(store: OutputStore, model_id: str) -> pa.Table:
    """Every review of the model (each once, oldest first)."""
    tables = [REVIEW_SCHEMA.empty_table()]
    for part in _parts(store, model_id):
        try:
            tables.append(store.read_arrow(store.review_part(model_id, part)).select(REVIEW_SCHEMA.names))
        except FileNotFoundError:  # merged away by a concurrent compaction: its rows are in the merged part
            return read_reviews(store, model_id)
    table = pa.concat_tables([t.cast(REVIEW_SCHEMA) for t in tables])
    table = table.take(pc.sort_indices(table, [("reviewed_at", "ascending"), ("review_id", "ascending")]))
    _, first = np.unique(table.column("review_id").to_numpy(zero_copy_only=False), return_index=True)
    return table.take(pa.array(np.sort(first)))


def latest_reviews(store: OutputStore, model_id: str) -> dict[str, dict[str, Any]]:
    """{event_id: its latest review} as JSON-ready dicts (what pages show)."""
    out: dict[str, dict[str, Any]] = {}
    for row in read_reviews(store, model_id).to_pylist():  # oldest first: later reviews win
        row["reviewed_at"] = row["reviewed_at"].isoformat()
        out[row["event_id"]] = row
    return out


def compact(store: OutputStore, model_id: str) -> str | None:
    """Merge every part into one when there are more than COMPACT_AT (the merged parts are deleted after the
    merged one is written); returns the merged part's URL, or None when there was nothing to do."""
    parts = _parts(store, model_id)
    if len(parts) <= COMPACT_AT:
        return None
    reviews = read_reviews(store, model_id)
    name = f"compacted-{parts[0].split('-')[0]}-{int(time.time() * 1000)}-{uuid.uuid4().hex[:8]}"
    url = store.write_table(store.review_part(model_id, name), reviews)
    for part in parts:
        try:
            store.delete(store.review_part(model_id, part))
        except FileNotFoundError:  # another server merged it at the same time: its rows are in both merges
            pass
    return url


def review_annotations(store: OutputStore, model_id: str) -> dict[str, VideoAnnotation]:
    """Reviewed videos as annotations (see the module docstring): confirmed events are the abnormal segments."""
    by_video: dict[str, list[dict[str, Any]]] = {}
    for review in latest_reviews(store, model_id).values():
        by_video.setdefault(review["video_id"], []).append(review)
    out = {}
    for video_id, reviews in sorted(by_video.items()):
        verdicts = {r["verdict"] for r in reviews}
        if "unsure" in verdicts or not verdicts & {"confirmed", "false_alarm"}:
            continue
        confirmed = sorted((r["start_s"], r["end_s"]) for r in reviews if r["verdict"] == "confirmed")
        annotation = VideoAnnotation(video_id, "Reviewed anomaly" if confirmed else "Normal")
        for start, end in confirmed:
            annotation.add(start, end, f"review of {video_id}")
        out[video_id] = annotation
    if not out:
        raise UsageError(
            f"annotations: no reviewed video under {store.reviews_dir(model_id)} (a video needs a confirmed or "
            "false-alarm verdict and none unsure)"
        )
    return out
