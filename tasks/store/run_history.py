"""Recent runs of an output, read back from what each run left under `runs/` (what `vad runs` shows). Plain Python:
no Prefect, no torch, a few small reads per run.

A run's state follows from its files: `started.json` is written before any work, `summary.json` (and the manifest)
at its end, or at once when it is stopped or crashes (then the summary says why under `interrupted`). A run with
only `started.json` is `running` while the output's live lease names it; otherwise it `died` without a word
(SIGKILL, a lost machine, or its summary could not be written). A run that is still waiting for the lease another
run holds also shows as `died` until it gets it: nothing it has written tells the two apart.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from itertools import islice
from typing import Any

import pyarrow.compute as pc

from anomaly_models.errors import UsageError

from .output import OutputStore

COMPLETED, WITH_FAILURES, INTERRUPTED, RUNNING, DIED = (
    "completed",
    "completed with failures",
    "interrupted",
    "running",
    "died",
)
COUNTS = ("done", "skipped", "failed", "quarantined", "interrupted")


@dataclass
class RunInfo:
    """One run as an operator sees it. URLs are the output store's; storage options never appear here."""

    run_id: str
    flow: str
    state: str
    started_at: str | None = None
    finished_at: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # video id -> reason
    quarantined: dict[str, str] = field(default_factory=dict)
    interrupted: str | None = None  # why the run stopped (summary), when it did
    interrupted_videos: dict[str, str] = field(default_factory=dict)  # planned videos it did not finish (manifest)
    alerts: str | None = None
    index: str | None = None
    traceback: str | None = None  # the crash's traceback file, when there is one
    model_id: str | None = None
    chunks: list[str] = field(default_factory=list)  # a backfill's chunk runs
    held_by: str | None = None  # a running run: who holds the lease, until when

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def live_lease(store: OutputStore) -> dict[str, Any] | None:
    """The output's lease while it is held (not expired); None when no run holds the output."""
    lease = _read_json(store, store.lease_file())
    if lease and float(lease.get("expires", 0)) > time.time():
        return lease
    return None


def list_runs(store: OutputStore, limit: int = 20) -> list[RunInfo]:
    """The `limit` newest runs, newest first (run ids start with their UTC start time, so they sort by it)."""
    lease = live_lease(store)
    runs = (read_run(store, run_id, lease) for run_id in reversed(store.run_ids()))
    return list(islice((run for run in runs if run is not None), max(limit, 0)))


def find_run(store: OutputStore, run_id: str) -> RunInfo:
    """One run in full; an id with no run behind it is a usage error naming the output."""
    run = read_run(store, run_id, live_lease(store))
    if run is None:
        raise UsageError(f"run {run_id!r}: no such run under {store.root} (`vad runs` lists them)")
    return run


def read_run(store: OutputStore, run_id: str, lease: dict[str, Any] | None) -> RunInfo | None:
    """What one run left behind; None when it left neither `started.json` nor `summary.json` (no run)."""
    started = _read_json(store, store.run_file(run_id, "started.json"))
    summary = _read_json(store, store.run_file(run_id, "summary.json"))
    if started is None and summary is None:
        return None
    info = {**(started or {}), **(summary or {})}
    run = RunInfo(
        run_id=run_id,
        flow=str(info.get("flow") or _flow_of(run_id)),
        state=_state(run_id, summary, lease),
        started_at=(started or {}).get("started_at") or _started_at(run_id),
        model_id=info.get("model_id"),
    )
    if summary is not None:
        _add_summary(store, run, summary)
    elif run.state == RUNNING and lease is not None:
        run.held_by = f"host {lease.get('host')}, pid {lease.get('pid')}, lease expires at {lease.get('expires_at')}"
    if run.state in (INTERRUPTED, DIED):  # only a crash writes a traceback
        url = store.run_file(run_id, "traceback.txt")
        run.traceback = url if store.exists(url) else None
    return run


def _state(run_id: str, summary: dict[str, Any] | None, lease: dict[str, Any] | None) -> str:
    if summary is None:
        return RUNNING if lease is not None and lease.get("run_id") == run_id else DIED
    if summary.get("interrupted"):
        return INTERRUPTED
    return WITH_FAILURES if (summary.get("counts") or {}).get("failed") else COMPLETED


def _add_summary(store: OutputStore, run: RunInfo, summary: dict[str, Any]) -> None:
    url = store.run_file(run.run_id, "summary.json")
    run.finished_at = summary.get("finished_at") or _iso(store.modified_time(url))  # a backfill's has no time
    run.counts = {k: int(v) for k, v in (summary.get("counts") or {}).items()}
    run.failed = dict(summary.get("failed") or {})
    run.quarantined = dict(summary.get("quarantined") or {})
    run.interrupted = summary.get("interrupted") or None
    run.alerts, run.index = summary.get("alerts"), summary.get("index")
    run.chunks = list(summary.get("chunks") or [])
    if run.counts.get("interrupted"):
        run.interrupted_videos = _interrupted_videos(store, run.run_id)


def _interrupted_videos(store: OutputStore, run_id: str) -> dict[str, str]:
    """The manifest's `interrupted` rows: planned videos the run did not finish, with why."""
    try:
        table = store.read_arrow(store.run_file(run_id, "manifest.parquet")).select(["video_id", "status", "error"])
    except (FileNotFoundError, KeyError):
        return {}
    rows = table.filter(pc.equal(table["status"], "interrupted")).to_pylist()
    return {r["video_id"]: r["error"] or "" for r in rows}


def _read_json(store: OutputStore, url: str) -> dict[str, Any] | None:
    """A run file's JSON object; None when it is missing or unreadable (a listing must not fail on one run)."""
    try:
        data = store.read_json(url)
    except (FileNotFoundError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _flow_of(run_id: str) -> str:
    """`20261202T120141Z-scan-a1b2c3` -> `scan` (for a run whose files do not say)."""
    parts = run_id.split("-")
    return "-".join(parts[1:-1]) or "?"


def _started_at(run_id: str) -> str | None:
    """The start time in a run id (its first part, UTC to the second), in the summaries' ISO format."""
    try:
        started = datetime.strptime(run_id.split("-", 1)[0], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return None
    return started.isoformat(timespec="seconds")


def _iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="seconds")
