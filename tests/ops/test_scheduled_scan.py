"""The nightly scan as an operator runs it: `vad serve` against a real Prefect server, runs triggered by
`run_deployment` (what the scheduler does when the cron fires), executed on a Dask LocalCluster."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone

import psutil
import pytest

from tests.conftest import EXTRACTOR

MODEL_ID = f"adnet-w16-{EXTRACTOR}"


def _summaries(out):
    runs = sorted(r for r in os.listdir(out / "runs") if "-scan-" in r)
    return [json.loads((out / "runs" / r / "summary.json").read_text()) for r in runs
            if (out / "runs" / r / "summary.json").exists()]  # fmt: skip


@pytest.fixture(scope="module")
def served(prefect_server, trained_model, small_archive, webhook, tmp_path_factory):
    archive = tmp_path_factory.mktemp("served-archive")
    for source, vid in (
        ("Explosion/000.mp4", "cam07/2026-11-19/0100.mp4"),
        ("Normal/002.mp4", "cam07/2026-11-20/0100.mp4"),
    ):
        os.makedirs(archive / os.path.dirname(vid), exist_ok=True)
        shutil.copy(small_archive / "videos" / source, archive / vid)
    os.makedirs(archive / "cam08" / "2026-11-20")
    shutil.copy(small_archive / "videos" / "corrupted.mp4", archive / "cam08" / "2026-11-20" / "0100.mp4")
    out = tmp_path_factory.mktemp("served-out")
    env = {**prefect_server["env"], "PREFECT_RUNNER_POLL_FREQUENCY": "2", "VAD_WEBHOOK_URL": webhook[0]}
    log = open(out.parent / "serve.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "flows.cli", "serve", "--archive", str(archive), "--model",
                             str(trained_model), "--out", str(out), "--name", "test-scan"], env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    yield {"proc": proc, "archive": archive, "out": out, "url": prefect_server["url"], "log": out.parent / "serve.log"}
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    log.close()


def _run(url: str, timeout: float = 600, **kwargs):
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: url}):
        return run_deployment("scan/test-scan", timeout=timeout, **kwargs)


def _wait_for_deployment(url: str, proc, log, limit: float = 120):
    from prefect import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        with temporary_settings(updates={PREFECT_API_URL: url}):
            with get_client(sync_client=True) as client:
                try:
                    return client.read_deployment_by_name("scan/test-scan")
                except Exception:
                    time.sleep(1)
    raise AssertionError(f"vad serve registered no deployment: {log.read_text()}")


def test_served_deployment_runs_on_dask_then_is_a_noop(served, webhook):
    deployment = _wait_for_deployment(served["url"], served["proc"], served["log"])
    assert deployment.entrypoint == "flows.scan_flow.scan"  # a module path: workers import the package
    assert deployment.global_concurrency_limit.limit == 1  # one run at a time
    first = _run(served["url"])
    assert first.state.is_completed(), (first.state, served["log"].read_text())
    assert first.state.name == "CompletedWithFailures" and "1 of" in first.state.message  # the corrupted video
    posted = [p for p in webhook[1] if p["run_id"] and p["outcome"] == "failures"]
    assert posted and "cam08/2026-11-20/0100.mp4" in posted[-1]["failed"] and posted[-1]["index"]
    out = served["out"]
    assert (out / "reports" / MODEL_ID / "index.html").exists()
    assert (out / "reports" / MODEL_ID / "cam07" / "2026-11-19" / "0100.mp4.json").exists()
    second = _run(served["url"])
    assert second.state.is_completed() and second.state.name == "Completed", second.state
    summaries = _summaries(out)
    assert summaries[-1]["work"] == {"extract": 0, "score": 0, "report": 0}


def test_a_run_scheduled_for_a_past_night_scans_that_nights_folders(served):
    import pandas as pd
    from prefect import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: served["url"]}):
        with get_client(sync_client=True) as client:
            parameters = dict(client.read_deployment_by_name("scan/test-scan").parameters)
    parameters["settings"]["schedule"]["include"] = ["cam*/{yesterday}/*"]
    run = _run(served["url"], parameters=parameters, scheduled_time=datetime(2026, 11, 20, 2, 0, tzinfo=timezone.utc))
    assert run.state.is_completed(), run.state
    newest = sorted(r for r in os.listdir(served["out"] / "runs") if "-scan-" in r)[-1]
    rows = pd.read_parquet(served["out"] / "runs" / newest / "manifest.parquet")
    assert rows.video_id.tolist() == ["cam07/2026-11-19/0100.mp4"]  # the night before 2026-11-20, nothing else


def test_runs_triggered_together_never_overlap_and_a_cli_scan_is_refused_by_the_lease(served, trained_model):
    from prefect import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from tests.conftest import vad

    with temporary_settings(updates={PREFECT_API_URL: served["url"]}):
        with get_client(sync_client=True) as client:
            parameters = dict(client.read_deployment_by_name("scan/test-scan").parameters)
    parameters["settings"]["schedule"]["force"] = True  # real work, so the runs last
    runs = [_run(served["url"], timeout=0, parameters=parameters) for _ in range(2)]
    lease = served["out"] / "runs" / "lease.json"
    deadline = time.monotonic() + 180
    while not lease.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert lease.exists(), served["log"].read_text()
    result = vad("scan", "--archive", served["archive"], "--model", trained_model, "--out", served["out"])
    assert result.exit_code == 1 and "is in use by run" in " ".join(result.output.split()), result.output
    with temporary_settings(updates={PREFECT_API_URL: served["url"]}):
        with get_client(sync_client=True) as client:
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                done = [client.read_flow_run(r.id) for r in runs]
                if all(r.state.is_final() for r in done):
                    break
                time.sleep(2)
    assert all(r.state.is_completed() for r in done), [r.state for r in done]
    first, second = sorted(done, key=lambda r: r.start_time)
    assert first.end_time <= second.start_time  # one after the other: the deployment's limit queued the second


def test_sigterm_of_vad_serve_leaves_no_process_behind(served):
    proc = served["proc"]
    assert proc.poll() is None, served["log"].read_text()
    family = {c.pid for c in psutil.Process(proc.pid).children(recursive=True)} | {proc.pid}
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=60)
    time.sleep(2)
    alive = [p for p in family if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert not alive, [" ".join(psutil.Process(p).cmdline()) for p in alive]


def test_a_run_left_running_by_a_dead_process_is_marked_crashed_when_serving_resumes(served, trained_model,
                                                                                     prefect_server):  # fmt: skip
    from prefect import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.states import Running

    assert served["proc"].poll() is not None  # the previous test stopped vad serve
    with temporary_settings(updates={PREFECT_API_URL: served["url"]}):
        with get_client(sync_client=True) as client:
            deployment = client.read_deployment_by_name("scan/test-scan")
            orphan = client.create_flow_run_from_deployment(deployment.id)
            client.set_flow_run_state(orphan.id, Running(), force=True)  # as if its process had been SIGKILLed
    env = {**prefect_server["env"], "PREFECT_RUNNER_POLL_FREQUENCY": "2"}
    log = open(served["out"].parent / "serve2.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "flows.cli", "serve", "--archive", str(served["archive"]),
                             "--model", str(trained_model), "--out", str(served["out"]), "--name", "test-scan"],
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        state = None
        while time.monotonic() < deadline:
            with temporary_settings(updates={PREFECT_API_URL: served["url"]}):
                with get_client(sync_client=True) as client:
                    state = client.read_flow_run(orphan.id).state
            if state.is_crashed():
                break
            time.sleep(1)
        assert state is not None and state.is_crashed(), (state, (served["out"].parent / "serve2.log").read_text())
        assert "process died" in state.message
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
        log.close()


def test_vad_serve_never_replaces_or_pauses_a_workers_deployment(prefect_server, trained_model, tmp_path):
    """prefect.yaml's deployment (a work pool runs it) is not vad serve's: serving under its name is refused, and
    the default name is another one."""
    from prefect import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.scan_flow import scan

    with temporary_settings(updates={PREFECT_API_URL: prefect_server["url"]}):
        with get_client(sync_client=True) as client:
            client.create_work_pool(WorkPoolCreate(name="vad-process", type="process"), overwrite=True)
            flow_id = client.create_flow_from_name(scan.name)
            deployment_id = client.create_deployment(flow_id, "nightly-scan", work_pool_name="vad-process",
                                                     entrypoint="flows.scan_flow.scan",
                                                     parameters={"model_url": "s3://vad/models/m"})  # fmt: skip
    env = {**prefect_server["env"]}
    command = [sys.executable, "-m", "flows.cli", "serve", "--archive", str(tmp_path), "--model", str(trained_model),
               "--out", str(tmp_path / "out"), "--name", "nightly-scan"]  # fmt: skip
    refused = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "run by work pool 'vad-process'" in " ".join(refused.stdout.split())
    with temporary_settings(updates={PREFECT_API_URL: prefect_server["url"]}):
        with get_client(sync_client=True) as client:
            kept = client.read_deployment(deployment_id)
    assert kept.parameters == {"model_url": "s3://vad/models/m"} and not kept.paused
    from typer.main import get_command

    from flows.cli import app

    serve_options = {p.name: p.default for p in get_command(app).commands["serve"].params}
    assert serve_options["name"] != "nightly-scan"
