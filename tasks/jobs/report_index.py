"""The index of a model's reports, grown by each run with the videos it reported and nothing else.

```
<root>/index/<model_id>/videos/<part>.parquet      one row per reported video (VIDEO_SCHEMA)
<root>/index/<model_id>/segments/<part>.parquet    one row per anomalous segment of those videos (SEGMENT_SCHEMA)
<root>/index/<model_id>/pending/<run_id>.json      the videos a run plans to report, until its part is written
<root>/reports/<model_id>/index.html               all time: the TOP highest-scoring videos, the latest runs
<root>/reports/<model_id>/index-<run_id>[-pN].html one run's videos ranked, PAGE per page
```
A run writes one part named by its run id (segments first, then videos: a part's videos make it visible), so an
update reads only the new reports. The all-time view is every part read together, each video by its latest row
(`reported_at`): `pyarrow.dataset.dataset("<root>/index/<model_id>/videos")`, pandas or duckdb read it as is. When a
model has more than COMPACT_AT parts, the update merges them into one part of latest rows and deletes the others,
so reads stay a few files. A run that died before writing its part left its pending file: the next update indexes
those videos too (reading only their reports). `vad report` rebuilds everything from the reports (and migrates an
output written before this index existed; an update does that by itself when the index is missing)."""

from __future__ import annotations

import html
import time
from collections.abc import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..store.manifest import new_run_id
from ..store.output import OutputStore
from .alerts_page import write_alerts_page
from .pages import page
from .report import SEGMENT_SCHEMA, hms, report_link, wall_clock

TOP = 200  # videos on index.html
PAGE = 500  # videos per run page
RUNS_SHOWN = 50  # latest runs on index.html
COMPACT_AT = 24  # parts before the update merges them

VIDEO_SCHEMA = pa.schema(
    [
        ("video_id", pa.string()),
        ("max_score", pa.float64()),
        ("segments", pa.int32()),
        ("duration_s", pa.float64()),
        ("threshold", pa.float64()),
        ("when", pa.string()),  # the first five segments, hh:mm:ss–hh:mm:ss
        ("run_id", pa.string()),
        ("reported_at", pa.float64()),  # POSIX seconds: the latest row of a video wins
        ("camera", pa.string()),
        ("recorded_at", pa.string()),  # ISO 8601 with timezone; null when unknown
    ]
)
# one row per event: the report's segment, its id, wall-clock times and media (relative to reports/<model_id>/)
EVENT_FIELDS = [
    ("event_id", pa.string()), ("camera", pa.string()), ("start_time", pa.string()), ("end_time", pa.string()),
    ("peak_time", pa.string()), ("peak_frame", pa.int64()), ("clip", pa.string()), ("poster", pa.string()),
    ("clip_start_s", pa.float64()), ("clip_end_s", pa.float64()),
]  # fmt: skip
INDEX_SEGMENT_SCHEMA = pa.schema([*SEGMENT_SCHEMA, *(pa.field(n, t) for n, t in EVENT_FIELDS), ("run_id", pa.string())])


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """A part in the current schema: columns it lacks (parts written before them) are nulls."""
    columns = [table.column(f.name).cast(f.type) if f.name in table.column_names else pa.nulls(len(table), f.type)
               for f in schema]  # fmt: skip
    return pa.Table.from_arrays(columns, schema=schema)


def _rows(reports: Iterable[dict], run_id: str) -> tuple[pa.Table, pa.Table]:
    now = time.time()
    videos, segments = [], []
    for r in reports:
        videos.append({
            "video_id": r["video_id"], "max_score": r["max_score"], "segments": len(r["segments"]),
            "duration_s": r["duration_s"], "threshold": r.get("threshold"), "run_id": run_id, "reported_at": now,
            "when": ", ".join(hms(s["start_s"]) + "–" + hms(s["end_s"]) for s in r["segments"][:5]),
            "camera": r.get("camera") or "", "recorded_at": r.get("recorded_at"),
        })  # fmt: skip
        segments += [{"video_id": r["video_id"], "run_id": run_id, "camera": r.get("camera") or "",
                      **{k: s.get(k) for k in INDEX_SEGMENT_SCHEMA.names[1:] if k not in ("run_id", "camera")}}
                     for s in r["segments"]]  # fmt: skip
    return (pa.Table.from_pylist(videos, schema=VIDEO_SCHEMA),
            pa.Table.from_pylist(segments, schema=INDEX_SEGMENT_SCHEMA))  # fmt: skip


def _parts(store: OutputStore, model_id: str, kind: str) -> list[str]:
    return sorted(store.modified_times(f"{store.index_dir(model_id)}/{kind}", ".parquet"))


def read_index(store: OutputStore, model_id: str, parts: list[str] | None = None) -> tuple[pa.Table, pa.Table]:
    """(videos, segments) of all time: each video's latest row and the segments of that report only. `parts`:
    the video parts when the caller has just listed them."""
    parts = _parts(store, model_id, "videos") if parts is None else parts
    videos = [store.read_arrow(store.index_part(model_id, "videos", p)) for p in parts]
    if not videos:
        return VIDEO_SCHEMA.empty_table(), INDEX_SEGMENT_SCHEMA.empty_table()
    table = pa.concat_tables([conform(v, VIDEO_SCHEMA) for v in videos])
    table = table.take(pc.sort_indices(table, [("reported_at", "descending"), ("run_id", "descending")]))
    _, first = np.unique(table.column("video_id").to_numpy(zero_copy_only=False), return_index=True)
    latest = table.take(pa.array(np.sort(first)))
    keys = pc.binary_join_element_wise(latest.column("video_id"), latest.column("run_id"), "\x00")
    segment_parts = [store.read_arrow(store.index_part(model_id, "segments", p))
                     for p in _parts(store, model_id, "segments")]  # fmt: skip
    segments = pa.concat_tables(
        [INDEX_SEGMENT_SCHEMA.empty_table()] + [conform(s, INDEX_SEGMENT_SCHEMA) for s in segment_parts]
    )
    found = pc.binary_join_element_wise(segments.column("video_id"), segments.column("run_id"), "\x00")
    return latest, segments.filter(pc.is_in(found, value_set=keys))


def _read_reports(store: OutputStore, model_id: str, video_ids: Iterable[str]) -> list[dict]:
    out = []
    for vid in sorted(set(video_ids)):
        try:
            out.append(store.read_json(store.report(model_id, vid, ".json")))
        except FileNotFoundError:  # planned but never reported (failed, interrupted)
            continue
    return out


def _pending(store: OutputStore, model_id: str) -> dict[str, list[str]]:
    folder = f"{store.index_dir(model_id)}/pending"
    return {run: store.read_json(store.index_pending(model_id, run)).get("videos", [])
            for run in store.video_ids(folder, ".json")}  # fmt: skip


def mark_pending(store: OutputStore, model_id: str, run_id: str, video_ids: Iterable[str]) -> None:
    """Before a run reports: the videos it may report, so a run that dies before `update_index` is caught up."""
    store.write_json(store.index_pending(model_id, run_id), {"videos": sorted(set(video_ids))})


def update_index(store: OutputStore, model_id: str, run_id: str, reported: Iterable[str]) -> str:
    """Add the reports this run wrote (and those of runs that died before indexing theirs) as this run's part,
    compact when there are many parts, and rewrite index.html and this run's pages. Returns index.html's URL."""
    if not _parts(store, model_id, "videos") and store.exists(store.reports_dir(model_id)):
        return rebuild_index(store, model_id, run_id)  # the first reports, or an output from before this index
    pending = _pending(store, model_id)
    wanted = set(reported) | {v for run, videos in pending.items() if run != run_id for v in videos}
    new = _read_reports(store, model_id, wanted)
    if new:
        videos, segments = _rows(new, run_id)
        store.write_table(store.index_part(model_id, "segments", run_id), segments)
        store.write_table(store.index_part(model_id, "videos", run_id), videos)
    for run in pending:
        store.delete(store.index_pending(model_id, run))
    if not new and store.exists(store.index(model_id)):
        return store.index(model_id)
    parts = _parts(store, model_id, "videos")
    if len(parts) > COMPACT_AT:
        parts = [compact(store, model_id, f"{run_id}-compacted")]
    latest, _ = read_index(store, model_id, parts)
    if new:
        write_run_pages(store, model_id, run_id, latest.filter(pc.equal(latest.column("run_id"), run_id)))
        write_alerts_page(store, model_id, run_id, segments)
    return write_index_page(store, model_id, latest)


def compact(store: OutputStore, model_id: str, part: str) -> str:
    """Every part merged into `part` (latest rows only); the merged parts are deleted after it is written."""
    before = {kind: _parts(store, model_id, kind) for kind in ("videos", "segments")}
    latest, segments = read_index(store, model_id)
    store.write_table(store.index_part(model_id, "segments", part), segments)
    store.write_table(store.index_part(model_id, "videos", part), latest)
    for kind, parts in before.items():
        for old in parts:
            if old != part:
                store.delete(store.index_part(model_id, kind, old))
    return part


def rebuild_index(store: OutputStore, model_id: str, run_id: str | None = None) -> str:
    """From every report (reads them all: `vad report`, or once when migrating): one part, then the pages."""
    run_id = run_id or new_run_id("report")
    reports = _read_reports(store, model_id, store.video_ids(store.reports_dir(model_id), ".json"))
    videos, segments = _rows(reports, run_id)
    store.write_table(store.index_part(model_id, "segments", run_id), segments)
    store.write_table(store.index_part(model_id, "videos", run_id), videos)
    for kind in ("videos", "segments"):
        for old in _parts(store, model_id, kind):
            if old != run_id:
                store.delete(store.index_part(model_id, kind, old))
    for run in _pending(store, model_id):
        store.delete(store.index_pending(model_id, run))
    write_run_pages(store, model_id, run_id, videos)
    write_alerts_page(store, model_id, run_id, segments)
    return write_index_page(store, model_id, videos)


def _ranked(videos: pa.Table) -> pa.Table:
    return videos.take(pc.sort_indices(videos, [("max_score", "descending"), ("video_id", "ascending")]))


def _video_rows(videos: pa.Table, first_rank: int = 1) -> str:
    e = html.escape
    return "".join(
        f'<tr><td>{first_rank + i}</td><td><a href="{e(report_link(v["video_id"]))}">{e(v["video_id"])}</a></td>'
        f"<td>{e(v['camera'] or '')}</td><td>{e(wall_clock(v['recorded_at']))}</td><td>{v['max_score']:.3f}</td>"
        f"<td>{v['segments']}</td><td>{hms(v['duration_s'])}</td>"
        f"<td>{e(v['when'])}</td></tr>"
        for i, v in enumerate(videos.to_pylist())
    )


VIDEO_HEADER = (
    "<tr><th>#</th><th>video</th><th>camera</th><th>recorded</th><th>highest score</th><th>segments</th>"
    "<th>duration</th><th>when (into the file)</th></tr>"
)


def _page(title: str, body: str) -> bytes:
    return page(title, body).encode()


def write_run_pages(store: OutputStore, model_id: str, run_id: str, videos: pa.Table) -> list[str]:
    """index-<run_id>.html (+ -p2, -p3 ...): the run's videos ranked by their highest score, PAGE per page."""
    e = html.escape
    ranked = _ranked(videos)
    pages = max(1, -(-len(ranked) // PAGE))
    written = []
    for n in range(1, pages + 1):
        first = (n - 1) * PAGE
        links = " &middot; ".join(
            f'<a href="./{e(store.run_page(model_id, run_id, k).rsplit("/", 1)[1])}">{k}</a>' if k != n else str(k)
            for k in range(1, pages + 1)
        )
        body = (f'<p><a href="./index.html">all runs</a></p><h1>Run {e(run_id)}</h1>'
                f"<p>model <code>{e(model_id)}</code> &middot; {len(ranked)} videos reported &middot; page {n} of "
                f"{pages}{': ' + links if pages > 1 else ''}</p>"
                f"<table>{VIDEO_HEADER}{_video_rows(ranked.slice(first, PAGE), first + 1)}</table>")  # fmt: skip
        written.append(store.write_bytes(store.run_page(model_id, run_id, n), _page(f"vad run {run_id}", body)))
    return written


def write_index_page(store: OutputStore, model_id: str, latest: pa.Table) -> str:
    """index.html: the TOP highest-scoring videos of all time and the latest RUNS_SHOWN runs with their pages."""
    e = html.escape
    runs = (latest.group_by("run_id").aggregate([("video_id", "count"), ("segments", "sum"), ("max_score", "max"),
                                                 ("camera", "count")])
            .sort_by([("run_id", "descending")]).slice(0, RUNS_SHOWN).to_pylist())  # fmt: skip

    def alerts(run: dict) -> str:  # runs indexed before alerts pages existed have null cameras and no page
        name = store.alerts_page(model_id, run["run_id"]).rsplit("/", 1)[1]
        return f'<a href="./{e(name)}">alerts</a>' if run["camera_count"] else ""

    run_rows = "".join(
        f'<tr><td><a href="./{e(store.run_page(model_id, r["run_id"]).rsplit("/", 1)[1])}">{e(r["run_id"])}</a>'
        f"</td><td>{alerts(r)}</td><td>{r['video_id_count']}</td><td>{r['segments_sum']}</td><td>{r['max_score_max']:.3f}</td></tr>"
        for r in runs
    )
    total_segments = pc.sum(latest.column("segments")).as_py() or 0
    body = (f"<h1>Anomaly reports</h1><p>model <code>{e(model_id)}</code> &middot; {len(latest)} videos &middot; "
            f"{total_segments} anomalous segments &middot; all of them: <code>index/{e(model_id)}/</code> "
            "(Parquet parts, one per run)</p>"
            f"<h2>Highest scores (top {min(TOP, len(latest))})</h2>"
            f"<table>{VIDEO_HEADER}{_video_rows(_ranked(latest).slice(0, TOP))}</table>"
            "<h2>Latest runs</h2><p class=muted>videos whose latest report is from that run</p>"
            "<table><tr><th>run</th><th>events</th><th>videos</th><th>segments</th><th>highest score</th></tr>"
            f"{run_rows}</table>")  # fmt: skip
    return store.write_bytes(store.index(model_id), _page(f"vad reports: {model_id}", body))
