"""CLI benchmark (issue #10's fast CLI): wall time and max RSS of commands an operator runs often.

- a no-op `vad scan` (everything current) against a running `prefect server start` (targets: <= 3 s, <= 300 MB),
  and the same without any Prefect server configured;
- `vad evaluate` on the demo's scores (targets: <= 2 s, <= 400 MB), and `vad report` (rebuilds one index).
Each figure is the median of three runs.
Needs the demo's output (`make demo` first: ./vad-demo). Prints a JSON line; writes bench/results/cli.json (+ .md).
"""

from __future__ import annotations

import glob
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from results_io import machine, save_results

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO = os.path.join(ROOT, "vad-demo")
BIN = os.path.dirname(sys.executable)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(cmd: list[str], env: dict[str, str], runs: int = 3) -> tuple[float, float, int]:
    """Median of `runs`: (wall seconds, max RSS MB of the vad process, exit code of the last), by GNU time."""
    samples = [_measure_once(cmd, env) for _ in range(runs)]
    walls, rsss = sorted(s[0] for s in samples), sorted(s[1] for s in samples)
    return walls[runs // 2], rsss[runs // 2], samples[-1][2]


def _measure_once(cmd: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    with tempfile.NamedTemporaryFile("r", suffix=".time") as out:
        code = subprocess.run(["/usr/bin/time", "-o", out.name, "-f", "%e %M", *cmd], env=env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode  # fmt: skip
        wall, rss_kib = out.read().split()[-2:]
    return round(float(wall), 2), round(int(rss_kib) / 1024, 1), code


def main() -> None:
    if not os.path.isdir(os.path.join(DEMO, "models")):
        sys.exit("run `make demo` first: this benchmark uses ./vad-demo")
    model = sorted(glob.glob(os.path.join(DEMO, "models", "adnet-*")))[0]
    model_id = os.path.basename(model)
    home = tempfile.mkdtemp(prefix="vad-bench-prefect-")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env.update(PREFECT_HOME=home, PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_UI_ENABLED="false")
    server = subprocess.Popen([os.path.join(BIN, "prefect"), "server", "start", "--host", "127.0.0.1", "--port",
                               str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}/api"
    try:
        for _ in range(600):
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2):
                    break
            except OSError:
                time.sleep(0.5)
        vad = os.path.join(BIN, "vad")
        scan = [vad, "scan", "--archive", os.path.join(DEMO, "demo-archive", "test"), "--model", model, "--out", DEMO]
        served = {**env, "PREFECT_API_URL": url}
        measure(scan, served, runs=1)  # warm-up (page cache)
        noop_wall, noop_rss, noop_code = measure(scan, served)
        bare_wall, bare_rss, _ = measure(scan, env)
        evaluate = [vad, "evaluate", "--scores", os.path.join(DEMO, "scores", model_id), "--annotations",
                    os.path.join(DEMO, "demo-annotations", "test.json")]  # fmt: skip
        eval_wall, eval_rss, eval_code = measure(evaluate, env)
        report_wall, report_rss, _ = measure([vad, "report", "--model-id", model_id, "--out", DEMO], env)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    save_results("cli", {
        "noop_scan_wall_s": noop_wall, "noop_scan_max_rss_mb": noop_rss, "noop_scan_exit": noop_code,
        "noop_scan_targets": "<= 3 s, <= 300 MB", "noop_scan_no_server_wall_s": bare_wall,
        "noop_scan_no_server_max_rss_mb": bare_rss, "report_wall_s": report_wall, "report_max_rss_mb": report_rss,
        "evaluate_wall_s": eval_wall, "evaluate_max_rss_mb": eval_rss,
        "evaluate_exit": eval_code, "evaluate_targets": "<= 2 s, <= 400 MB",
        "note": "GNU time: wall and max RSS of the vad process, median of 3 runs", "machine": machine(),
    })  # fmt: skip


if __name__ == "__main__":
    main()
