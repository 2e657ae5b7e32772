"""The production path, run for real (issue #21): PostgreSQL, `prefect server start` on it, moto as S3 holding the
archive and the output, a Dask scheduler with a CPU and a GPU=1 worker, the work pool, `prefect deploy` of
prefect.yaml and `prefect worker start` with the runbook's commands and environment (docs/operations.md). Runs are
fired by a schedule and triggered by hand; the faults are reproduced: kill -9 of Dask workers mid-extraction and
mid-scoring, of the Prefect worker, of the worker with its flow run, and the loss of every GPU worker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from datetime import datetime, timedelta, timezone

import psutil
import pytest

from tests.conftest import EXTRACTOR
from tests.ops.production import BIN, ROOT, Stack, runbook_commands, runbook_environment

MODEL_ID = f"adnet-w16-{EXTRACTOR}"
DEPLOYMENT = "scan/nightly-scan"
TODAY = datetime.now(timezone.utc).date()
NIGHT = (TODAY - timedelta(days=1)).isoformat()


@pytest.fixture(scope="module")
def production(s3_endpoint, trained_model, small_archive, webhook):
    import s3fs

    fs = s3fs.S3FileSystem(**s3_endpoint)
    for bucket in ("cameras", "vad"):
        fs.mkdir(bucket)
    good = sorted(p for p in (small_archive / "videos").rglob("*.mp4") if p.name != "corrupted.mp4")
    layout = {f"cam07/{NIGHT}/0100.mp4": good[0], f"cam07/{NIGHT}/0200.mp4": good[2],
              f"cam08/{NIGHT}/0100.mp4": small_archive / "videos" / "corrupted.mp4"}  # fmt: skip
    for folder, n in (("cam09/2026-10-01", 3), ("cam10/2026-10-02", 2), ("cam11/2026-10-03", 2),
                      ("cam12/2026-10-04", 3)):  # fmt: skip
        layout.update({f"{folder}/{i:04d}.mp4": good[i % len(good)] for i in range(n)})
    for video_id, source in layout.items():
        fs.put(str(source), f"cameras/{video_id}")
    fs.put(str(trained_model), f"vad/models/{MODEL_ID}", recursive=True)

    stack = Stack(s3_endpoint)
    try:
        api = stack.prefect_server(stack.postgres())
        stack.dask()
        stack.wait_for_workers(2, gpu=1)
        home = stack.dir / "vad-home"
        home.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "VAD_"))}
        env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"  # vad installed: its prefect, dask and vad
        runbook = {  # docs/operations.md section 2, with this stack's values
            "PREFECT_API_URL": api,
            "VAD_MODEL_URL": f"s3://vad/models/{MODEL_ID}",
            "VAD_ARCHIVE": "s3://cameras",
            "VAD_OUT": "s3://vad",
            "VAD_DASK_ADDRESS": stack.dask_address,
            "VAD_GPU_TASKS": "true",
            "VAD_GPU_WAIT_S": "20",
            "VAD_STORAGE_OPTIONS": json.dumps(s3_endpoint),
            "VAD_WEBHOOK_URL": webhook[0],
            "VAD_HOME": str(home),
        }
        assert sorted(runbook) == sorted(runbook_environment())  # the runbook lists exactly what the worker needs
        env.update(runbook, PREFECT_WORKER_QUERY_SECONDS="2", PREFECT_WORKER_PREFETCH_SECONDS="5",
                   DO_NOT_TRACK="1", PREFECT_LOGGING_LEVEL="INFO")  # fmt: skip
        commands = runbook_commands()
        for step in ("prefect work-pool create", "prefect deploy"):
            done = subprocess.run(["bash", "-c", commands[step]], env=env, cwd=ROOT, capture_output=True, text=True,
                                  timeout=180)  # fmt: skip
            assert done.returncode == 0, (step, done.stdout[-3000:], done.stderr[-3000:])
        stack.env, stack.commands, stack.fs, stack.webhook = env, commands, fs, webhook
        start_worker(stack)
        yield stack
    finally:
        stack.stop()


def start_worker(stack: Stack) -> None:
    stack.start("prefect-worker", ["bash", "-c", "exec " + stack.commands["prefect worker start"]], stack.env,
                cwd=str(stack.dir))  # fmt: skip


def client(stack: Stack):
    from prefect import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    class Client:
        def __enter__(self):
            self.settings = temporary_settings(updates={PREFECT_API_URL: stack.api_url})
            self.settings.__enter__()
            self.client = get_client(sync_client=True)
            return self.client.__enter__()

        def __exit__(self, *exc):
            self.client.__exit__(*exc)
            self.settings.__exit__(*exc)

    return Client()


def trigger(stack: Stack, include: str, **settings) -> str:
    """A run of the deployment by hand (what `prefect deployment run` does), scanning one folder."""
    with client(stack) as c:
        deployment = c.read_deployment_by_name(DEPLOYMENT)
        parameters = {"settings": {"schedule": {"include": [include]}, **settings}}
        return str(c.create_flow_run_from_deployment(deployment.id, parameters=parameters).id)


def wait_final(stack: Stack, run_id: str, limit: float = 300):
    deadline = time.monotonic() + limit
    with client(stack) as c:
        while time.monotonic() < deadline:
            run = c.read_flow_run(run_id)
            if run.state and run.state.is_final():
                return run
            time.sleep(1)
    raise AssertionError(f"flow run {run_id} did not end: {run.state}\n{run_log(stack, run_id)}")


def run_log(stack: Stack, run_id: str) -> str:
    """The flow run's log in Prefect (for failure messages)."""
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    with client(stack) as c:
        logs = c.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])))
    return "\n".join(x.message for x in logs)[-8000:]


def wait_for(predicate, limit: float, what: str, stack: Stack):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen within {limit} s\n{stack.log('prefect-worker')}")


def summary_of(stack: Stack, state) -> dict:
    run_id = state.message.split("vad run ")[1].split(":")[0] if "vad run " in (state.message or "") else None
    runs = sorted(stack.fs.ls("vad/runs"))
    paths = [p for p in runs if run_id and p.endswith(run_id)] or runs
    return json.loads(stack.fs.cat(f"{paths[-1]}/summary.json"))


def manifest(stack: Stack, vad_run: str):
    import pyarrow.parquet as pq

    with stack.fs.open(f"vad/runs/{vad_run}/manifest.parquet") as f:
        return {r["video_id"]: r for r in pq.read_table(f).to_pylist()}


def vad_run_of(stack: Stack, flow_run_id: str) -> str:
    """The vad run id a flow run logged (its first log line names it)."""
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    with client(stack) as c:
        logs = c.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
    for line in logs:
        if line.message.startswith("vad run ") and " started: " in line.message:
            return line.message.split()[2]
    raise AssertionError([x.message for x in logs])


def test_a_scheduled_run_on_the_worker_writes_everything_to_s3_and_shows_its_failures_in_prefect(production):
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, LogFilter, LogFilterFlowRunId
    from prefect.client.schemas.schedules import IntervalSchedule

    stack = production
    with client(stack) as c:
        deployment = c.read_deployment_by_name(DEPLOYMENT)
        assert deployment.work_pool_name == "vad-process" and deployment.entrypoint == "flows.scan_flow.scan"
        assert deployment.parameters["model_url"] == f"s3://vad/models/{MODEL_ID}"
        soon = datetime.now(timezone.utc) + timedelta(seconds=15)  # the schedule fires in 15 s, then hourly
        c.create_deployment_schedules(deployment.id, [(IntervalSchedule(interval=timedelta(hours=1),
                                                                        anchor_date=soon), True)])  # fmt: skip

        def fired():
            runs = c.read_flow_runs()
            return [r for r in runs if r.deployment_id == deployment.id and r.auto_scheduled]

        run = wait_for(lambda: [r for r in fired() if r.expected_start_time <= soon + timedelta(seconds=1)], 90,
                       "the schedule firing", stack)[0]  # fmt: skip
    run = wait_final(stack, str(run.id))
    assert run.state.name == "CompletedWithFailures", (run.state, stack.log("prefect-worker"))
    assert "1 of 3 videos failed" in run.state.message
    vad_run = vad_run_of(stack, str(run.id))
    rows = manifest(stack, vad_run)
    assert {v: r["status"] for v, r in rows.items()} == {f"cam07/{NIGHT}/0100.mp4": "done",
                                                         f"cam07/{NIGHT}/0200.mp4": "done",
                                                         f"cam08/{NIGHT}/0100.mp4": "failed"}  # fmt: skip
    reports = f"vad/reports/{MODEL_ID}"
    assert stack.fs.exists(f"{reports}/cam07/{NIGHT}/0100.mp4.json") and stack.fs.exists(f"{reports}/index.html")
    summary = json.loads(stack.fs.cat(f"vad/runs/{vad_run}/summary.json"))
    assert summary["alerts"] is None or stack.fs.exists(summary["alerts"].removeprefix("s3://"))
    posted = [p for p in stack.webhook[1] if p["run_id"] == vad_run]
    assert posted and posted[0]["outcome"] == "failures" and f"cam08/{NIGHT}/0100.mp4" in posted[0]["failed"]
    with client(stack) as c:  # failures where operators look: the flow-run log and an artifact
        logs = [x.message for x in c.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id])))]
        artifacts = c.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id])))
    failed_line = [m for m in logs if m.startswith(f"failed cam08/{NIGHT}/0100.mp4: ")]
    assert failed_line and len(failed_line[0]) > len(f"failed cam08/{NIGHT}/0100.mp4: ") + 5, logs
    assert any(m.startswith(f"vad run {vad_run} (scan): ") for m in logs), logs
    (artifact,) = [a for a in artifacts if a.key == "vad-scan-summary"]
    assert f"cam08/{NIGHT}/0100.mp4" in json.dumps(artifact.data) and vad_run in json.dumps(artifact.data)
    # no secret reached Postgres: not in the deployment, the runs' parameters, logs, events or artifacts
    dump = subprocess.run([_pg("pg_dump"), "-h", "127.0.0.1", "-p", str(stack.pg_port), "-U", "postgres", "prefect"],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert dump.returncode == 0 and "scan" in dump.stdout
    assert stack.s3["secret"] not in dump.stdout and stack.s3["key"] not in dump.stdout


def test_vad_doctor_passes_on_the_live_stack(production):
    """The runbook's pre-flight check, with the worker's environment: every check passes on this stack (the
    automation exists since the first deployed run made it)."""
    stack = production
    done = subprocess.run(["bash", "-c", stack.commands["vad doctor"]], env=stack.env, cwd=str(stack.dir),
                          capture_output=True, text=True, timeout=180)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    out = " ".join(done.stdout.split())
    for what in ("archive", "output", "model", "dask", "deployment", "automation"):
        assert f"✓ {what}" in out, out
    assert stack.s3["secret"] not in done.stdout + done.stderr


def _pg(name: str) -> str:
    from tests.ops.production import _postgres_bin

    return _postgres_bin(name)


def test_dask_workers_killed_mid_extraction_and_mid_scoring_lose_no_video(production):
    stack = production
    folder = "cam09/2026-10-01"
    run_id = trigger(stack, f"{folder}/*", model={"score_batch": 1})
    features = f"vad/features/{EXTRACTOR}/{folder}"
    wait_for(lambda: stack.fs.exists(features) and stack.fs.ls(features, refresh=True), 240, "a first feature table",
             stack)  # fmt: skip
    os.kill(stack.worker_pid("gpu-worker"), signal.SIGKILL)  # mid-extraction: its nanny restarts it
    stack.wait_for_workers(2, gpu=1)
    scores = f"vad/scores/{MODEL_ID}/{folder}"
    wait_for(lambda: stack.fs.exists(scores) and stack.fs.ls(scores, refresh=True), 240, "a first score table", stack)
    os.kill(stack.worker_pid("gpu-worker"), signal.SIGKILL)  # mid-scoring
    run = wait_final(stack, run_id)
    assert run.state.is_completed() and run.state.name == "Completed", (run.state, stack.log("prefect-worker"))
    rows = manifest(stack, vad_run_of(stack, run_id))
    assert {v: r["status"] for v, r in rows.items()} == {f"{folder}/{i:04d}.mp4": "done" for i in range(3)}
    for i in range(3):  # scored and reported in this run, whichever attempt extracted them
        assert stack.fs.exists(f"vad/reports/{MODEL_ID}/{folder}/{i:04d}.mp4.json")


def test_a_killed_prefect_worker_leaves_its_run_to_finish(production):
    stack = production
    folder = "cam10/2026-10-02"
    run_id = trigger(stack, f"{folder}/*")
    wait_for(lambda: stack.fs.exists("vad/runs/lease.json"), 180, "the run taking the output's lease", stack)
    worker = stack.procs.pop("prefect-worker")
    worker.send_signal(signal.SIGKILL)  # the worker only: its flow run's process lives on, its pipes broken
    worker.wait(timeout=30)
    try:
        run = wait_final(stack, run_id)
        assert run.state.is_completed(), (run.state, run_log(stack, run_id))
        rows = manifest(stack, vad_run_of(stack, run_id))
        assert {r["status"] for r in rows.values()} == {"done"}, rows
    finally:
        start_worker(stack)


def test_a_run_killed_with_its_worker_is_crashed_and_the_queued_run_takes_over(production):
    stack = production
    folder = "cam11/2026-10-03"
    dead = trigger(stack, f"{folder}/*")
    wait_for(lambda: stack.fs.exists("vad/runs/lease.json"), 180, "the run taking the output's lease", stack)
    queued = trigger(stack, f"{folder}/*")  # waits for the deployment's one slot
    worker = stack.procs.pop("prefect-worker")
    family = [psutil.Process(worker.pid), *psutil.Process(worker.pid).children(recursive=True)]
    for p in family:  # the machine is lost: the worker and the flow run's process
        p.kill()
    worker.wait(timeout=30)
    killed_at = time.monotonic()
    start_worker(stack)
    run = wait_final(stack, dead, limit=300)
    assert run.state.is_crashed() and "no heartbeat" in run.state.message, run.state
    assert time.monotonic() - killed_at < 240
    after = wait_final(stack, queued, limit=300)
    assert after.state.is_completed(), (after.state, stack.log("prefect-worker"))
    rows = manifest(stack, vad_run_of(stack, queued))
    assert {r["status"] for r in rows.values()} <= {"done", "skipped"} and len(rows) == 2, rows
    assert stack.fs.exists(f"vad/reports/{MODEL_ID}/{folder}/0001.mp4.json")


def test_losing_every_gpu_worker_mid_run_fails_the_rest_after_the_wait(production):
    stack = production
    folder = "cam12/2026-10-04"
    run_id = trigger(stack, f"{folder}/*")
    features = f"vad/features/{EXTRACTOR}/{folder}"
    wait_for(lambda: stack.fs.exists(features) and stack.fs.ls(features, refresh=True), 240, "a first feature table",
             stack)  # fmt: skip
    stack.stop_process("gpu-worker", signal.SIGKILL)  # nanny and worker: no GPU worker comes back
    lost_at = time.monotonic()
    run = wait_final(stack, run_id, limit=300)
    assert time.monotonic() - lost_at < 150  # gpu_wait_s is 20 s: extraction's wait, then scoring's
    assert run.state.name == "CompletedWithFailures", run.state
    rows = manifest(stack, vad_run_of(stack, run_id))
    failed = {v: r["error"] for v, r in rows.items() if r["status"] == "failed"}
    assert failed and all("no GPU worker" in why for why in failed.values()), rows
    assert len(rows) == 3
