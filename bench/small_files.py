"""Small-files benchmark (#15 item 3): what orchestration costs per video when an archive holds many short files.

`vad extract` (the real flow: temporary Prefect API server, LocalCluster, tasks of up to 16 videos) on 200
one-clip videos and on 20, each into a fresh output; the same videos extracted in-process without orchestration
(`extract_videos`, one call) give the work itself. Orchestration per video =
((wall_200 - work_200) - (wall_20 - work_20)) / 180: fixed costs (server and cluster start) cancel out.
Target: <= 0.1 s per video. Prints a JSON line; writes bench/results/small_files.json (+ .md).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from results_io import machine, save_results  # noqa: E402

from tasks.jobs.extract import ExtractJob, extract_videos  # noqa: E402
from tasks.media.specs import ExtractorSpec  # noqa: E402
from tasks.media.synthetic import generate_archive  # noqa: E402
from tasks.store.archive import discover_videos  # noqa: E402
from tasks.store.output import OutputStore  # noqa: E402

BIN = os.path.dirname(sys.executable)
SIZE = 32


def flow_wall(archive: str, out: str, task_videos: int = 16) -> float:
    env = {**os.environ, "VAD_TASK_VIDEOS": str(task_videos)}
    t = time.perf_counter()
    subprocess.run([os.path.join(BIN, "vad"), "extract", "--archive", archive, "--out", out, "--size", str(SIZE)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)  # fmt: skip
    return time.perf_counter() - t


def work(archive: str, out: str) -> float:
    entries = discover_videos(archive)
    t = time.perf_counter()
    outcomes = extract_videos(entries, OutputStore(out), ExtractJob(ExtractorSpec(size=SIZE), threads=2))
    assert all(o.status == "done" for o in outcomes)
    return time.perf_counter() - t


def main() -> None:
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in (20, 200):
            archive = os.path.join(tmp, f"a{n}")
            generate_archive(archive, n, seed=n, size=(64, 48), duration_s=(1.0, 1.0))  # 16 frames: one clip
            rows[n] = {"wall_s": round(flow_wall(archive, os.path.join(tmp, f"flow{n}")), 2),
                       "one_video_per_task_wall_s": round(flow_wall(archive, os.path.join(tmp, f"one{n}"), 1), 2),
                       "work_s": round(work(archive, os.path.join(tmp, f"work{n}")), 2)}  # fmt: skip

    def per_video(wall: str) -> float:
        return round(((rows[200][wall] - rows[200]["work_s"]) - (rows[20][wall] - rows[20]["work_s"])) / 180, 4)

    result = {
        "runs": {f"{n} videos": r for n, r in rows.items()},
        "orchestration_s_per_video": per_video("wall_s"),
        "one_video_per_task_orchestration_s_per_video": per_video("one_video_per_task_wall_s"),
        "target": "<= 0.1 s per video",
        "before": "about 0.6 s per video with one task per video (issue #15's measurement: 60 videos in 87 s)",
        "machine": machine(),
    }
    save_results("small_files", result)


if __name__ == "__main__":
    main()
