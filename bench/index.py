"""Index benchmark (#15 item 4): the index grows with the new reports only.

Locally: 100,000 generated reports (written straight to disk: setup, not measured), indexed once (`rebuild_index`,
which reads every report: what every run paid before this index), then 30 runs of 100 new reports each
(`update_index`; target: <= 2 s per update, compaction included). The same on moto's S3 server with 10,000
reports and 10 runs of 100. Prints a JSON line; writes bench/results/index.json (+ .md).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from results_io import machine, save_results  # noqa: E402

from tasks.jobs.report_index import COMPACT_AT, rebuild_index, update_index  # noqa: E402
from tasks.store.output import OutputStore  # noqa: E402

MODEL = "adnet-bench"


def report(n: int, run: int) -> dict:
    vid = f"cam{n % 300:03d}/2026-01-{1 + n % 28:02d}/{n:07d}.mp4"
    score = (n * 7919 % 1000) / 1000
    segments = [{"start_s": 10.0 * i, "end_s": 10.0 * i + 4, "start_frame": 300 * i, "end_frame": 300 * i + 120,
                 "peak_score": score, "mean_score": score * 0.9, "peak_frame": 300 * i + 60}
                for i in range(n % 3)]  # fmt: skip
    return {"video_id": vid, "duration_s": 3600.0, "fps": 30.0, "model_id": MODEL, "extractor_id": "x",
            "threshold": 0.5, "segments": segments, "max_score": score, "run": run}  # fmt: skip


def write_local(store: OutputStore, reports: list[dict]) -> list[str]:
    for r in reports:
        path = store.report(MODEL, r["video_id"], ".json")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            json.dump(r, f)
    return [r["video_id"] for r in reports]


def write_s3(store: OutputStore, reports: list[dict]) -> list[str]:
    import s3fs

    fs = s3fs.S3FileSystem(**store.storage_options)
    fs.pipe({store.report(MODEL, r["video_id"], ".json"): json.dumps(r).encode() for r in reports})
    return [r["video_id"] for r in reports]


def runs(store: OutputStore, write, start: int, count: int, per_run: int = 100) -> list[float]:
    seconds = []
    for k in range(count):
        batch = [report(start + k * per_run + i, k) for i in range(per_run)]
        reported = write(store, batch)
        t = time.perf_counter()
        update_index(store, MODEL, f"20270101T{k // 60:02d}{k % 60:02d}00Z-scan-{k:06d}", reported)
        seconds.append(round(time.perf_counter() - t, 3))
    return seconds


def local(total: int = 100_000, updates: int = 30) -> dict:
    root = tempfile.mkdtemp(prefix="vad-bench-index-")
    try:
        store = OutputStore(root)
        t = time.perf_counter()
        write_local(store, [report(n, -1) for n in range(total)])
        setup = time.perf_counter() - t
        t = time.perf_counter()
        rebuild_index(store, MODEL, "20261231T000000Z-report-000000")
        full = time.perf_counter() - t
        seconds = runs(store, write_local, total, updates)
        return {"reports": total, "setup_write_s": round(setup, 1), "full_read_s": round(full, 2),
                "update_median_s": statistics.median(seconds), "update_max_s": max(seconds),
                "updates": updates, "update_s": seconds}  # fmt: skip
    finally:
        shutil.rmtree(root, ignore_errors=True)


def s3(total: int = 10_000, updates: int = 10) -> dict:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        options = {"endpoint_url": f"http://127.0.0.1:{port}", "key": "bench", "secret": "bench"}
        import s3fs

        s3fs.S3FileSystem(**options).mkdir("vad-bench")
        store = OutputStore("s3://vad-bench/out", options)
        write_s3(store, [report(n, -1) for n in range(total)])
        t = time.perf_counter()
        rebuild_index(store, MODEL, "20261231T000000Z-report-000000")
        full = time.perf_counter() - t
        seconds = runs(store, write_s3, total, updates)
        return {"reports": total, "full_read_s": round(full, 2), "update_median_s": statistics.median(seconds),
                "update_max_s": max(seconds), "updates": updates, "update_s": seconds}  # fmt: skip
    finally:
        server.stop()


def main() -> None:
    result = {
        "index": {"local": local(), "s3 (moto)": s3()},
        "target": "<= 2 s per update of 100 new reports (local, 100,000 indexed)",
        "compact_at_parts": COMPACT_AT,
        "note": "full_read_s: rebuild_index reading every report, what each run's index cost before (#15)",
        "machine": machine(),
    }
    save_results("index", result)


if __name__ == "__main__":
    main()
