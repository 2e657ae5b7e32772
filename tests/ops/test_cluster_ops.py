"""Cluster-side operations: a GPU run on a cluster without a GPU worker fails fast; the LocalCluster dashboard
listens on loopback only."""

import os
import subprocess
import sys
import time

from distributed import Client

from tests.conftest import FAST, free_port, vad

BIN = os.path.dirname(sys.executable)


def test_gpu_tasks_without_a_gpu_worker_fail_within_the_wait(small_archive, tmp_path, monkeypatch, prefect_api):
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    logs = open(tmp_path / "dask.log", "w")
    procs = [subprocess.Popen([os.path.join(BIN, "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--dashboard-address", ":0"], stdout=logs, stderr=subprocess.STDOUT)]  # fmt: skip
    try:
        time.sleep(1.5)
        worker = [os.path.join(BIN, "dask"), "worker", address, "--nthreads", "1", "--dashboard-address", ":0"]
        procs.append(subprocess.Popen(worker, stdout=logs, stderr=subprocess.STDOUT))
        with Client(address, timeout=60) as client:
            client.wait_for_workers(1, timeout=90)
        monkeypatch.setenv("VAD_GPU_WAIT_S", "3")
        started = time.monotonic()
        result = vad("extract", "--archive", small_archive / "videos", "--out", tmp_path / "out", *FAST,
                     "--dask-address", address, "--gpu-tasks")  # fmt: skip
        assert time.monotonic() - started < 60
        assert result.exit_code == 1, result.output
        assert "no worker of the Dask cluster" in " ".join(result.output.split())
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=30)


def test_local_cluster_dashboard_binds_loopback():
    from flows.runner import task_runner
    from flows.settings import ClusterSettings

    runner = task_runner(ClusterSettings())
    assert runner.cluster_kwargs["dashboard_address"] == "127.0.0.1:0"
