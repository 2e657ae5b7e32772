"""`vad scan --dask-address ... --gpu-tasks` on an existing cluster: a `dask scheduler` and two `dask worker`
processes, one started with `--resources GPU=1`. The scheduler's task records say where each task ran."""

import os
import subprocess
import sys
import time

import pytest
from distributed import Client

from tests.conftest import free_port, vad

BIN = os.path.dirname(sys.executable)


def _start(args, log):
    return subprocess.Popen(
        [os.path.join(BIN, "dask"), *args],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
    )


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    logs = tmp_path_factory.mktemp("dask-logs")
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = [
        _start(
            ["scheduler", "--host", "127.0.0.1", "--port", str(port), "--dashboard-address", ":0"],
            open(logs / "scheduler.log", "w"),
        )
    ]
    time.sleep(1.5)
    procs.append(
        _start(
            [
                "worker",
                address,
                "--nthreads",
                "1",
                "--name",
                "gpu-worker",
                "--resources",
                "GPU=1",
                "--dashboard-address",
                ":0",
            ],
            open(logs / "gpu.log", "w"),
        )
    )
    procs.append(
        _start(
            ["worker", address, "--nthreads", "1", "--name", "cpu-worker", "--dashboard-address", ":0"],
            open(logs / "cpu.log", "w"),
        )
    )
    client = Client(address, timeout=60)
    client.wait_for_workers(2, timeout=90)
    yield address, client
    client.close()
    for p in procs:
        p.terminate()
    for p in procs:
        p.wait(timeout=30)


def test_gpu_tasks_run_only_on_the_gpu_worker(cluster, trained_model, small_archive, tmp_path):
    address, client = cluster
    workers = {info["name"]: addr for addr, info in client.scheduler_info()["workers"].items()}
    client.get_task_stream()  # registers the scheduler's task-stream plugin before the run
    result = vad(
        "scan",
        "--archive",
        small_archive / "videos",
        "--model",
        trained_model,
        "--out",
        tmp_path / "out",
        "--dask-address",
        address,
        "--gpu-tasks",
    )
    assert result.exit_code == 3, result.output  # the corrupted video fails; the others are reported
    records = client.get_task_stream()
    gpu_keys = [r for r in records if str(r["key"]).startswith(("extract_videos_task", "score_batch_task"))]
    assert [r for r in gpu_keys if str(r["key"]).startswith("extract_videos_task")]  # the 5 videos in 1+ tasks
    assert any(str(r["key"]).startswith("score_batch_task") for r in gpu_keys)
    assert {r["worker"] for r in gpu_keys} == {workers["gpu-worker"]}
    assert (tmp_path / "out" / "reports").exists()
