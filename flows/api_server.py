"""Prefect's temporary API server for CLI runs, owned by vad.

Without a configured Prefect server (PREFECT_API_URL), Prefect starts a temporary one as a child in vad's process
group: a SIGTERM to that group (systemd stopping a unit, `timeout`) or a Ctrl-C kills it at once, and the run then
hangs while Prefect retries to record its end; a SIGKILLed vad leaves it running, orphaned. So vad starts that
same server itself (the same uvicorn app and settings Prefect uses) in its own session, so group signals reach
only vad, which records the run and then stops the server; and the server dies with vad (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

from anomaly_models.errors import VadError

# the child: die with the parent (Linux), then run uvicorn as `python -m uvicorn` would
LAUNCH = (
    "import ctypes, os, runpy, sys\n"
    "try:\n    ctypes.CDLL('libc.so.6').prctl(1, 9)\nexcept OSError:\n    pass\n"
    "if os.getppid() != int(sys.argv[1]):\n    sys.exit(0)\n"  # vad died before PR_SET_PDEATHSIG took effect
    "sys.argv = ['uvicorn', *sys.argv[2:]]\n"
    "runpy.run_module('uvicorn', run_name='__main__')\n"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _drain_prefect_services(timeout: float = 10.0) -> None:
    """Send Prefect's queued logs and events while the server still runs: left to interpreter exit, they would be
    sent to a stopped server and retried for a minute."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for service in (APILogWorker, EventsWorker):
        try:
            service.drain_all(timeout=timeout)
        except Exception:  # best effort: never let telemetry keep a stopped run from exiting
            pass


@contextmanager
def temporary_api_server() -> Iterator[None]:
    """Around a command that runs flows: a temporary API server unless a Prefect server is configured."""
    import prefect
    from prefect.settings import PREFECT_API_URL, get_current_settings, temporary_settings

    if PREFECT_API_URL.value():
        yield
        return
    port = _free_port()
    env = {**os.environ, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1",
           **get_current_settings().to_environment_variables(exclude_unset=True)}  # fmt: skip
    args = ["--app-dir", str(prefect.__module_path__.parent), "--factory", "prefect.server.api.server:create_app",
            "--host", "127.0.0.1", "--port", str(port), "--log-level", "error", "--lifespan", "on"]  # fmt: skip
    server = subprocess.Popen([sys.executable, "-c", LAUNCH, str(os.getpid()), *args], env=env, start_new_session=True,
                              stdin=subprocess.DEVNULL)  # fmt: skip
    url = f"http://127.0.0.1:{port}/api"
    try:
        limit = float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180"))
        deadline = time.monotonic() + limit
        while not _healthy(url):
            if server.poll() is not None or time.monotonic() > deadline:
                raise VadError(f"Prefect's temporary API server did not start within {limit:g} s "
                               f"(exit code {server.poll()}); set PREFECT_API_URL to use a running server")  # fmt: skip
            time.sleep(0.2)
        with temporary_settings(updates={PREFECT_API_URL: url}):
            try:
                yield
            finally:
                _drain_prefect_services()
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
