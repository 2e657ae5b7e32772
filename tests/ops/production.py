"""The production stack, started for real by the live suite and stopped after it: PostgreSQL (a throw-away cluster
from Debian's binaries), `prefect server start` on it, a Dask scheduler with a CPU worker and a `--resources GPU=1`
worker, the runbook's work pool, `prefect deploy` of this repository's prefect.yaml and `prefect worker start`, each
command as docs/operations.md writes it. S3 is moto's HTTP server (the session's `s3_endpoint`)."""

from __future__ import annotations

import glob
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack

import psutil

from flows.api_server import _healthy
from tests.conftest import free_port

ROOT = pathlib.Path(__file__).resolve().parents[2]
RUNBOOK = ROOT / "docs" / "operations.md"
BIN = os.path.dirname(sys.executable)


def runbook_commands() -> dict[str, str]:
    """The runbook's shell commands, by what they start with (`prefect deploy`, ...): the suite runs these."""
    blocks = re.findall(r"```sh\n(.*?)```", RUNBOOK.read_text(), re.S)
    lines = [line.strip() for block in blocks for line in block.splitlines()]
    found = {}
    for prefix in ("prefect work-pool create", "prefect deploy", "prefect worker start", "vad doctor"):
        matching = [line for line in lines if line.startswith(prefix)]
        assert len(matching) == 1, f"the runbook should give one `{prefix}` command, found {matching}"
        found[prefix] = matching[0]
    return found


def runbook_environment() -> list[str]:
    """The variables the runbook's environment file lists."""
    block = re.search(r"## 2\. The worker's environment.*?```sh\n(.*?)```", RUNBOOK.read_text(), re.S)
    assert block, "the runbook has no environment block"
    return re.findall(r"^([A-Z_]+)=", block.group(1), re.M)


def _postgres_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    assert found, f"PostgreSQL's {name} is missing: `make install` installs Debian's postgresql"
    return found[-1]


def _as_postgres(command: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root: as root, run them as Debian's `postgres` user."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


class Stack:
    """Every process of the production path; `stop()` ends them all (and their children)."""

    def __init__(self, s3: dict):
        self.s3 = s3
        self.stack = ExitStack()
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="vad-prod-"))
        self.logs = self.dir / "logs"
        self.logs.mkdir()
        self.procs: dict[str, subprocess.Popen] = {}

    # -- processes -------------------------------------------------------------------------------------------------
    def start(self, name: str, command: list[str], env: dict, cwd: str | None = None) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "a")
        self.stack.callback(log.close)
        proc = subprocess.Popen(command, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
        self.procs[name] = proc
        return proc

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace")[-6000:] if path.exists() else ""

    def stop_process(self, name: str, sig: int = signal.SIGTERM) -> None:
        proc = self.procs.pop(name, None)
        if proc is None:
            return
        family = _family(proc.pid)
        for p in family:
            try:
                p.send_signal(sig)
            except psutil.Error:
                pass
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        _, alive = psutil.wait_procs(family, timeout=15)
        for p in alive:
            try:
                p.kill()
            except psutil.Error:
                pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass

    def stop(self) -> None:
        for name in reversed(list(self.procs)):
            if name != "postgres":
                self.stop_process(name)
        if hasattr(self, "pgdata"):
            subprocess.run(_as_postgres([_postgres_bin("pg_ctl"), "-D", str(self.pgdata), "-m", "immediate", "stop"]),
                           capture_output=True, timeout=60)  # fmt: skip
        self.stack.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- services --------------------------------------------------------------------------------------------------
    def postgres(self) -> str:
        self.pgdata = self.dir / "pgdata"
        sockets = self.dir / "pgsock"
        sockets.mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
            shutil.chown(sockets, "postgres")
        port = free_port()
        subprocess.run(_as_postgres([_postgres_bin("initdb"), "-D", str(self.pgdata), "-U", "postgres", "--auth=trust",
                                     "-E", "UTF8"]), check=True, capture_output=True, timeout=120)  # fmt: skip
        options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(_as_postgres([_postgres_bin("pg_ctl"), "-D", str(self.pgdata), "-o", options, "-l",
                                     str(self.dir / "postgres.log"), "-w", "start"]), check=True, capture_output=True,
                       timeout=120)  # fmt: skip
        subprocess.run([_postgres_bin("createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "prefect"],
                       check=True, capture_output=True, timeout=60)  # fmt: skip
        self.pg_port = port
        return f"postgresql+asyncpg://postgres@127.0.0.1:{port}/prefect"

    def prefect_server(self, database_url: str) -> str:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "VAD_"))}
        env.update(PREFECT_HOME=str(self.dir / "prefect-home"), PREFECT_API_DATABASE_CONNECTION_URL=database_url,
                   PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_UI_ENABLED="false", DO_NOT_TRACK="1",
                   PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS="5",
                   PREFECT_SERVER_SERVICES_LATE_RUNS_LOOP_SECONDS="5")  # fmt: skip
        proc = self.start("prefect-server", [f"{BIN}/prefect", "server", "start", "--host", "127.0.0.1", "--port",
                                             str(port)], env)  # fmt: skip
        url = f"http://127.0.0.1:{port}/api"
        deadline = time.monotonic() + 240
        while not _healthy(url):
            assert proc.poll() is None and time.monotonic() < deadline, self.log("prefect-server")
            time.sleep(0.5)
        self.api_url = url
        return url

    def dask(self) -> str:
        port = free_port()
        self.dask_address = f"tcp://127.0.0.1:{port}"
        env = {**os.environ, "DASK_LOGGING__DISTRIBUTED": "warning"}
        self.start("dask-scheduler", [f"{BIN}/dask", "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                      "--dashboard-address", ":0"], env)  # fmt: skip
        self.dask_worker("cpu-worker")
        self.dask_worker("gpu-worker", gpu=True)
        return self.dask_address

    def dask_worker(self, name: str, gpu: bool = False) -> None:
        env = {**os.environ, "DASK_LOGGING__DISTRIBUTED": "warning", "OMP_NUM_THREADS": "1"}
        command = [f"{BIN}/dask", "worker", self.dask_address, "--nthreads", "1", "--name", name, "--no-dashboard"]
        self.start(name, command + (["--resources", "GPU=1"] if gpu else []), env)

    def wait_for_workers(self, n: int, gpu: int) -> None:
        from distributed import Client

        with Client(self.dask_address, timeout=60) as client:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                workers = client.scheduler_info().get("workers", {}).values()
                gpus = sum(1 for w in workers if w.get("resources", {}).get("GPU"))
                if len(workers) >= n and gpus >= gpu:
                    return
                time.sleep(0.5)
        raise AssertionError(self.log("gpu-worker") + self.log("cpu-worker"))

    def worker_pid(self, name: str) -> int:
        """The pid of a Dask worker process (its nanny's child)."""
        from distributed import Client

        with Client(self.dask_address, timeout=60) as client:
            pids = client.run(os.getpid)
            info = client.scheduler_info().get("workers", {})
        (address,) = [a for a, w in info.items() if w.get("name") == name]
        return pids[address]


def _family(pid: int) -> list[psutil.Process]:
    try:
        proc = psutil.Process(pid)
        return [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return []
