"""Run manifests: one row per video (status, error, timings, outputs) and a summary, under runs/<run_id>/."""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

import pyarrow as pa

from anomaly_models.errors import VadError

from .output import OutputStore

DONE, SKIPPED, FAILED, QUARANTINED = "done", "skipped", "failed", "quarantined"
MANIFEST_SCHEMA = pa.schema(
    [
        ("video_id", pa.string()),
        ("status", pa.string()),
        ("stage", pa.string()),
        ("error", pa.string()),
        ("seconds", pa.float64()),
        ("clips", pa.int64()),
        ("output", pa.string()),
        ("started_at", pa.string()),
    ]
)


@dataclass
class VideoOutcome:
    video_id: str
    status: str
    stage: str  # extract / score / report / scan / train / evaluate
    error: str = ""
    seconds: float = 0.0
    clips: int = 0
    output: str = ""
    started_at: str = ""

    def as_row(self) -> dict:
        return asdict(self)


@dataclass
class Timer:
    started: float = field(default_factory=time.perf_counter)
    started_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    @property
    def seconds(self) -> float:
        return round(time.perf_counter() - self.started, 3)


INTERRUPTED = "interrupted"  # planned, then stopped by SIGTERM/SIGINT or a crash before it finished
PRECEDENCE = {FAILED: 5, INTERRUPTED: 4, QUARANTINED: 3, DONE: 2, SKIPPED: 1}


def failure_reason(exc: BaseException) -> str:
    """One line for the manifest: the project's errors say it themselves; storage faults start with 'storage:'."""
    if isinstance(exc, VadError):
        return " ".join(str(exc).split())
    text = " ".join(str(exc).split())[:300]
    if isinstance(exc, OSError):
        return f"storage: {exc.__class__.__name__}: {text}"
    return f"{exc.__class__.__name__}: {text}"


def merge_outcomes(outcomes: list[VideoOutcome]) -> list[VideoOutcome]:
    """One row per video: a failure anywhere wins, then work done, then skipped."""
    merged: dict[str, VideoOutcome] = {}
    for o in outcomes:
        prev = merged.get(o.video_id)
        if prev is None or PRECEDENCE[o.status] > PRECEDENCE[prev.status]:
            merged[o.video_id] = o
        if prev is not None:
            merged[o.video_id].seconds = round(prev.seconds + o.seconds, 3)
    return sorted(merged.values(), key=lambda o: o.video_id)


def new_run_id(flow: str) -> str:
    return f"{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}-{flow}-{uuid.uuid4().hex[:6]}"


def summarize(outcomes: list[VideoOutcome]) -> dict[str, int]:
    counts = {DONE: 0, SKIPPED: 0, FAILED: 0, QUARANTINED: 0}
    if any(o.status == INTERRUPTED for o in outcomes):
        counts[INTERRUPTED] = 0
    for o in outcomes:
        counts[o.status] = counts.get(o.status, 0) + 1
    return counts


def write_manifest(store: OutputStore, run_id: str, outcomes: list[VideoOutcome], info: dict[str, Any]) -> dict:
    """Writes manifest.parquet and summary.json; returns the summary."""
    table = pa.Table.from_pylist([o.as_row() for o in outcomes], schema=MANIFEST_SCHEMA)
    store.write_table(store.run_file(run_id, "manifest.parquet"), table)
    summary = {
        "run_id": run_id,
        **info,
        "counts": summarize(outcomes),
        "failed": {o.video_id: o.error for o in outcomes if o.status == FAILED},
        "quarantined": {o.video_id: o.error for o in outcomes if o.status == QUARANTINED},
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    store.write_json(store.run_file(run_id, "summary.json"), summary)
    return summary


def write_summary(store: OutputStore, run_id: str, summary: dict[str, Any]) -> str:
    """A summary without a manifest of its own (a backfill, whose chunks each have theirs)."""
    return store.write_json(store.run_file(run_id, "summary.json"), summary)
