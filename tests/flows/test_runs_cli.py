"""`vad runs` / `vad runs show`: the output's recent runs as an operator sees them, run as the real command.

Most runs here are written by the same writers a run uses (started.json, manifest + summary, the lease); one test
reads the runs a real `vad extract` wrote."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

from tasks.store.lease import Lease
from tasks.store.manifest import VideoOutcome, write_manifest, write_summary
from tasks.store.output import OutputStore

ROOT = pathlib.Path(__file__).resolve().parents[2]

COMPLETED = "20261201T010000Z-scan-aaaaaa"
FAILURES = "20261202T010000Z-scan-bbbbbb"
CRASHED = "20261203T010000Z-extract-cccccc"
DIED = "20261204T010000Z-scan-dddddd"
BACKFILL = "20261205T010000Z-backfill-ffffff"
RUNNING = "20261206T010000Z-scan-eeeeee"
NEWEST_FIRST = [RUNNING, BACKFILL, DIED, CRASHED, FAILURES, COMPLETED]
STATES = {
    RUNNING: "running",
    BACKFILL: "completed",
    DIED: "died",
    CRASHED: "interrupted",
    FAILURES: "completed with failures",
    COMPLETED: "completed",
}
FAILED = {"cam01/2026-12-01/0100.mp4": "cannot decode: moov atom not found", "cam02/[x].mp4": "storage: timed out"}


def vad_runs(*args, env: dict | None = None) -> subprocess.CompletedProcess:
    """`vad runs ...` in its own process, its output a pipe (which rich takes for an 80-column terminal)."""
    command = [sys.executable, "-m", "flows.cli", "runs", *map(str, args)]
    environ = {**os.environ, **(env or {})}
    environ.pop("COLUMNS", None)
    return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT, env=environ)


def write_runs(store: OutputStore) -> None:
    """One run of each state, written as runs write them (no lease: the running one takes it in `running`)."""
    scan = {"flow": "scan", "model_id": "adnet-w16-x", "archive": "/archive", "videos": 4}
    store.check_writable(COMPLETED, scan)
    alerts = store.alerts_page("adnet-w16-x", COMPLETED)
    outcomes = [VideoOutcome("cam01/a.mp4", "done", "report"), VideoOutcome("bad.mp4", "quarantined", "extract", "x")]
    write_manifest(store, COMPLETED, outcomes, {**scan, "index": store.index("adnet-w16-x"), "alerts": alerts})

    store.check_writable(FAILURES, scan)
    outcomes = [VideoOutcome(v, "failed", "score", error=why) for v, why in FAILED.items()]
    write_manifest(
        store, FAILURES, outcomes + [VideoOutcome("cam03/b.mp4", "done", "report")], {**scan, "alerts": None}
    )

    extract = {"flow": "extract", "extractor_id": "r3d_18-random0-c16s16-64", "archive": "/archive"}
    store.check_writable(CRASHED, extract)
    store.write_bytes(store.run_file(CRASHED, "traceback.txt"), b"Traceback ...\nTypeError: boom\n")
    outcomes = [VideoOutcome("cam04/c.mp4", "done", "extract"),
                VideoOutcome("cam04/d.mp4", "interrupted", "run", error="run failed: TypeError: boom")]  # fmt: skip
    write_manifest(store, CRASHED, outcomes, {**extract, "interrupted": "run failed: TypeError: boom", "index": None})

    store.check_writable(DIED, scan)
    chunks = [f"{BACKFILL[:16]}-backfill-chunk-00000{i}" for i in (1, 2)]
    counts = {"done": 5, "skipped": 0, "failed": 0, "quarantined": 0}
    write_summary(store, BACKFILL, {"run_id": BACKFILL, "flow": "backfill", "chunks": chunks, "counts": counts,
                                    "failed": {}, "quarantined": {}, "index": None})  # fmt: skip
    store.check_writable(RUNNING, scan)


@pytest.fixture
def out(tmp_path):
    store = OutputStore(str(tmp_path / "out"))
    write_runs(store)
    with Lease(store, RUNNING, ttl_s=600).acquire():
        yield tmp_path / "out"


def test_lists_runs_newest_first_with_their_states(out):
    listed = vad_runs("--out", out, "--json")
    assert listed.returncode == 0, listed.stderr
    runs = json.loads(listed.stdout)
    assert [r["run_id"] for r in runs] == NEWEST_FIRST
    assert {r["run_id"]: r["state"] for r in runs} == STATES
    by_id = {r["run_id"]: r for r in runs}
    assert by_id[FAILURES]["failed"] == FAILED and by_id[FAILURES]["counts"]["failed"] == 2
    assert by_id[COMPLETED]["alerts"].endswith(f"reports/adnet-w16-x/alerts-{COMPLETED}.html")
    assert by_id[COMPLETED]["started_at"] == "2026-12-01T01:00:00+00:00" and by_id[COMPLETED]["finished_at"]
    assert by_id[CRASHED]["interrupted_videos"] == {"cam04/d.mp4": "run failed: TypeError: boom"}
    assert by_id[BACKFILL]["finished_at"] and by_id[RUNNING]["finished_at"] is None

    table = vad_runs("--out", out)
    assert table.returncode == 0, table.stderr
    rows = [next(line for line in table.stdout.splitlines() if run_id in line) for run_id in NEWEST_FIRST]
    assert [table.stdout.index(row) for row in rows] == sorted(table.stdout.index(row) for row in rows)
    for row, run_id in zip(rows, NEWEST_FIRST):
        assert STATES[run_id] in row and (run_id != COMPLETED or f"alerts-{COMPLETED}.html" in row)
    assert "2026-12-01 01:00:00" in rows[-1]
    assert f"{FAILURES}: failed cam01/2026-12-01/0100.mp4, cam02/[x].mp4 (vad runs show {FAILURES})" in table.stdout

    newest = json.loads(vad_runs("--out", out, "--json", "--limit", "2").stdout)
    assert [r["run_id"] for r in newest] == NEWEST_FIRST[:2]


def test_show_prints_every_failed_video_and_where_to_look(out):
    shown = vad_runs("show", FAILURES, "--out", out)
    assert shown.returncode == 0, shown.stderr
    assert "completed with failures" in shown.stdout and "failed videos (2):" in shown.stdout
    for video_id, reason in FAILED.items():
        assert f"  {video_id}: {reason}" in shown.stdout

    crashed = vad_runs("--out", out, "show", CRASHED)  # --out before `show` works too
    assert crashed.returncode == 0, crashed.stderr
    assert "interrupted" in crashed.stdout and "stopped: run failed: TypeError: boom" in crashed.stdout
    assert f"traceback: {out / 'runs' / CRASHED / 'traceback.txt'}" in crashed.stdout
    assert "  cam04/d.mp4: run failed: TypeError: boom" in crashed.stdout

    running = json.loads(vad_runs("show", RUNNING, "--out", out, "--json").stdout)
    assert running["state"] == "running" and f"pid {os.getpid()}" in running["held_by"]


def test_unknown_run_id_is_one_clear_line_and_exit_2(out):
    unknown = vad_runs("show", "20261209T000000Z-scan-ffffff", "--out", out)
    assert unknown.returncode == 2 and not unknown.stderr
    message = f"error: run '20261209T000000Z-scan-ffffff': no such run under {out} (`vad runs` lists them)"
    assert " ".join(unknown.stdout.split()) == message  # one message (the console may wrap it at 80 columns)
    unsafe = vad_runs("show", "../../etc", "--out", out)
    assert unsafe.returncode == 2 and "invalid run id" in unsafe.stdout and "Traceback" not in unsafe.stderr


def test_an_output_without_runs_says_so(tmp_path):
    empty = vad_runs("--out", tmp_path / "nothing-here")
    assert (empty.returncode, empty.stdout.strip()) == (0, f"no runs under {tmp_path / 'nothing-here'}")
    assert json.loads(vad_runs("--out", tmp_path, "--json").stdout) == []
    assert not (tmp_path / "nothing-here").exists()  # looking writes nothing


RUN_IN_PROCESS = """import json, sys
from flows.cli import app
try:
    app()
except SystemExit as stop:
    code = stop.code
print(json.dumps({"code": code, "loaded": sorted(m for m in ("torch", "prefect", "distributed") if m in sys.modules)}))
"""


def test_runs_loads_neither_prefect_nor_torch(out):
    for args in (["runs", "--out", str(out)], ["runs", "show", FAILURES, "--out", str(out)]):
        proc = subprocess.run([sys.executable, "-c", RUN_IN_PROCESS, *args], capture_output=True, text=True, cwd=ROOT)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"code": 0, "loaded": []}


def test_runs_on_s3_never_show_the_credentials(s3_endpoint):
    root = "s3://vad-test/runs-cli"
    write_runs(OutputStore(root, s3_endpoint))
    env = {"VAD_STORAGE_OPTIONS": json.dumps(s3_endpoint)}
    commands = (
        ["--out", root],
        ["--out", root, "--json"],
        ["show", CRASHED, "--out", root],
        ["show", "nope", "--out", root],
    )
    results = [vad_runs(*args, env=env) for args in commands]
    assert [r.returncode for r in results] == [0, 0, 0, 2], [r.stderr for r in results]
    assert {r["run_id"]: r["state"] for r in json.loads(results[1].stdout)} == {**STATES, RUNNING: "died"}
    assert f"traceback: {root}/runs/{CRASHED}/traceback.txt" in results[2].stdout
    for result in results:
        for secret in (s3_endpoint["key"], s3_endpoint["secret"]):
            assert secret not in result.stdout + result.stderr


def test_lists_the_run_a_real_extract_wrote(extracted):
    _, out, _ = extracted  # its corrupted video failed (later extract runs into this output quarantine it)
    runs = json.loads(vad_runs("--out", out, "--json", "--limit", 1000).stdout)
    first = [r for r in runs if r["flow"] == "extract"][-1]  # newest first: the oldest extract is the fixture's
    summary = json.loads((out / "runs" / first["run_id"] / "summary.json").read_text())
    assert first["state"] == "completed with failures" and first["counts"] == summary["counts"]
    assert first["started_at"] and first["finished_at"] == summary["finished_at"]
    assert first["failed"] == summary["failed"] and "DECORDError" in first["failed"]["corrupted.mp4"]
    shown = vad_runs("show", first["run_id"], "--out", out)
    assert shown.returncode == 0 and "failed videos (1):" in shown.stdout
    assert f"  corrupted.mp4: {summary['failed']['corrupted.mp4']}" in shown.stdout
