"""Shared fixtures: a Prefect test API for the session, generated archives, a moto S3 endpoint."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

SHARED = os.environ.get("VAD_SHARED_DATA") or os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
VIDEOS = os.path.abspath(os.path.join(SHARED, "videos"))
ANNOTATIONS = os.path.abspath(os.path.join(SHARED, "annotations"))

os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")

# Prefect configures its console log handler on first import and keeps the stream it found. The CLI imports Prefect
# lazily, so a selection of tests whose first Prefect import happens inside CliRunner (which swaps sys.stderr for a
# stream it closes afterwards) would leave later runs logging to a closed file: import it here, with the real one.
import prefect.main  # noqa: E402, F401  (sets up logging)

# tiny crops keep random-init r3d_18 at ~5 clips/s on 2 cores
FAST = ["--size", "64"]


@pytest.fixture(scope="session")
def prefect_api():
    """One Prefect test API per session (a start costs ~20 s)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture(scope="session")
def small_archive(tmp_path_factory):
    """Four short generated videos (two abnormal) and their V2 annotations, plus the real corrupted video."""
    from tasks.media.synthetic import generate_archive, write_annotations

    root = tmp_path_factory.mktemp("archive")
    videos = root / "videos"
    annotations = generate_archive(str(videos), 4, seed=7, duration_s=(8, 10))
    write_annotations(str(root / "annotations.json"), annotations)
    shutil.copy(os.path.join(VIDEOS, "corrupted.mp4"), videos / "corrupted.mp4")
    return root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def s3_endpoint():
    """A real HTTP S3 endpoint (moto) that Dask worker processes can reach."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    options = {"endpoint_url": f"http://127.0.0.1:{port}", "key": "vad-test-key", "secret": "vad-s3cr3t-never-logged"}
    import s3fs

    fs = s3fs.S3FileSystem(**options)
    fs.mkdir("vad-test")
    yield options
    server.stop()


def vad(*args):
    """Run the `vad` CLI in-process (flows run for real: Prefect API, Dask cluster)."""
    from typer.testing import CliRunner

    from flows.cli import app

    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


EXTRACTOR = "r3d_18-random0-c16s16-64"


@pytest.fixture(scope="session")
def extracted(prefect_api, small_archive, tmp_path_factory):
    """`vad extract` over a copy of the small archive: (archive, out, CLI result)."""
    archive = tmp_path_factory.mktemp("arch")
    shutil.copytree(small_archive / "videos", archive, dirs_exist_ok=True)
    out = tmp_path_factory.mktemp("out")
    result = vad("extract", "--archive", archive, "--out", out, *FAST)
    return archive, out, result


@pytest.fixture(scope="session")
def trained_model(extracted, small_archive):
    """A small ADNet trained with `vad train` on the extracted features; returns the model folder."""
    _, out, _ = extracted
    result = vad(
        "train",
        "--features",
        out / "features" / EXTRACTOR,
        "--annotations",
        small_archive / "annotations.json",
        "--out",
        out,
        "--epochs",
        150,
        "--window",
        16,
    )
    assert result.exit_code == 0, result.output
    return out / "models" / f"adnet-w16-{EXTRACTOR}"


@contextlib.contextmanager
def review_app(out, *args: str):
    """`vad review --out OUT` as a real subprocess on a free port; yields its base URL, stops it afterwards."""
    port = free_port()
    command = [sys.executable, "-m", "flows.cli", "review", "--out", str(out), "--port", str(port), "--reviewer", "ana"]
    proc = subprocess.Popen([*command, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    proc.kill()
                    raise AssertionError(proc.stdout.read() if proc.stdout else "vad review did not start") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
