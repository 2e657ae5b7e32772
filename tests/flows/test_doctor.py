"""`vad doctor` against real components: a local archive and output, a saved model, a real Dask scheduler and
workers (subprocesses), moto S3 with credentials enforced, and a Prefect API with a deployment and an automation."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.conftest import VIDEOS, free_port, vad

BIN = os.path.dirname(sys.executable)
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NO_DEPLOYMENT = "scan/doctor-test-no-such-deployment"  # settings stay local even when a session API is up


def _lines(output: str) -> dict[str, str]:
    """{first word after the mark: the whole line} of doctor's output."""
    found = {}
    for line in output.splitlines():
        if line[:1] in "✓✗!" and len(line) > 2:
            found.setdefault(line[2:].split()[0].rstrip(":"), line)
    return found


@pytest.fixture(autouse=True)
def clean_env(tmp_path, monkeypatch):
    """No VAD_* settings from outside; the default output is a temporary folder, never ./vad-data."""
    for name in [n for n in os.environ if n.startswith("VAD_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("VAD_OUT", str(tmp_path / "default-out"))


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A local archive of one video, an output root, and a real saved ADNet (card + checkpoint) in it."""
    from anomaly_models.registry import MODELS, build_model
    from tasks.media.specs import ExtractorSpec
    from tasks.models.card import ModelCard, TrainingRecord
    from tasks.models.repository import save_model
    from tasks.store.output import OutputStore

    root = tmp_path_factory.mktemp("doctor")
    (root / "archive" / "cam1").mkdir(parents=True)
    shutil.copy(os.path.join(VIDEOS, "v_GGSY1Qvo990.mp4"), root / "archive" / "cam1" / "0100.mp4")
    spec = ExtractorSpec(size=64)
    config = MODELS["adnet"].config_for({"features": (40, 32)}, window=16, options={"hidden": 8})
    card = ModelCard(f"adnet-w16-{spec.extractor_id}", "adnet", config, spec.extractor_id, spec, 16, 0.5,
                     TrainingRecord(epochs=1, lr=1e-3, loss="mse", seed=123))  # fmt: skip
    store = OutputStore(str(root / "out"))
    save_model(store, card, build_model("adnet", **config))
    return {"archive": str(root / "archive"), "out": str(root / "out"), "model": store.model_dir(card.model_id),
            "model_id": card.model_id, "store": store}  # fmt: skip


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory):
    """A real `dask scheduler` and one plain `dask worker` (no resources); `add_gpu_worker()` adds one with GPU=1."""
    from distributed import Client

    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    logs = open(tmp_path_factory.mktemp("dask") / "dask.log", "w")
    dask = os.path.join(BIN, "dask")
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--dashboard-address",
                               ":0"], stdout=logs, stderr=subprocess.STDOUT)]  # fmt: skip

    def add_worker(*extra: str) -> None:
        worker = [dask, "worker", address, "--nthreads", "1", "--dashboard-address", ":0", *extra]
        procs.append(subprocess.Popen(worker, stdout=logs, stderr=subprocess.STDOUT))
        with Client(address, timeout=60) as client:
            client.wait_for_workers(len(procs) - 1, timeout=60)

    try:
        add_worker()
        yield {"address": address, "add_gpu_worker": lambda: add_worker("--resources", "GPU=1")}
    finally:
        for p in reversed(procs):  # workers first: a worker whose scheduler is gone waits to reconnect
            p.terminate()
            p.wait(timeout=30)
        logs.close()


def test_local_setup_without_a_prefect_server(setup, dask_cluster, tmp_path):
    """(a) archive, output, model and Dask pass; no PREFECT_API_URL fails; a live lease only warns; exit 1. Run as a
    real process, which must never import torch."""
    store = setup["store"]
    now = time.time()
    store.write_json(store.lease_file(), {"run_id": "20261201T020000-abc", "host": "box7", "pid": 42,
                                          "expires": now + 100, "expires_at": "2026-12-01T02:01:40+00:00"})  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API", "VAD_"))}
    env.update(VAD_ARCHIVE=setup["archive"], VAD_OUT=setup["out"], VAD_DASK_ADDRESS=dask_cluster["address"],
               PREFECT_HOME=str(tmp_path / "prefect"))  # fmt: skip
    code = (
        "import sys\nfrom flows.cli import app\ntry:\n    app(['doctor', *sys.argv[1:]])\nfinally:\n"
        "    print('torch imported' if 'torch' in sys.modules else 'torch never imported')\n"
    )
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", code, "--model", setup["model"]], env=env, capture_output=True,
                            text=True, timeout=120, cwd=ROOT)  # fmt: skip
    output = result.stdout + result.stderr
    try:
        assert result.returncode == 1, output
        assert time.monotonic() - started < 60
        lines = _lines(output)
        assert lines["archive"].startswith("✓") and "1 video" in lines["archive"], output
        assert lines["output"].startswith("✓") and setup["out"] in lines["output"], output
        assert lines["model"].startswith("✓") and setup["model_id"] in lines["model"], output
        assert "extractor r3d_18-random0-c16s16-64" in lines["model"], output
        assert lines["dask"] == f"✓ dask {dask_cluster['address']}: 1 worker", output
        assert lines["prefect"].startswith("✗ prefect: PREFECT_API_URL is not set"), output
        assert "schedules need a Prefect server" in lines["prefect"]
        assert lines["lease"].startswith("! lease: held by run 20261201T020000-abc (host box7, pid 42)"), output
        assert "1 check(s) failed" in output and "torch never imported" in output, output
        assert not [n for n in os.listdir(os.path.join(setup["out"], "runs")) if "doctor" in n]  # the probe is gone
    finally:
        store.delete(store.lease_file())


def test_gpu_tasks_need_a_worker_offering_the_gpu_resource(setup, dask_cluster, monkeypatch):
    """(b) gpu_tasks on a cluster without a GPU worker fails naming the resource; a GPU worker makes it pass."""
    for name, value in (("ARCHIVE", setup["archive"]), ("OUT", setup["out"]), ("GPU_TASKS", "true"),
                        ("DASK_ADDRESS", dask_cluster["address"])):  # fmt: skip
        monkeypatch.setenv(f"VAD_{name}", value)
    result = vad("doctor", "--model", setup["model"], "--deployment", NO_DEPLOYMENT)
    dask = _lines(result.output)["dask"]
    assert dask.startswith("✗") and "none offers the GPU resource" in dask and "--resources GPU=1" in dask, dask
    assert result.exit_code == 1
    dask_cluster["add_gpu_worker"]()
    result = vad("doctor", "--model", setup["model"], "--deployment", NO_DEPLOYMENT)
    assert _lines(result.output)["dask"] == f"✓ dask {dask_cluster['address']}: 2 workers, 1 with GPU", result.output


def test_nothing_listening_at_the_dask_address_fails_within_the_timeout(setup, monkeypatch):
    monkeypatch.setenv("VAD_DASK_ADDRESS", f"tcp://127.0.0.1:{free_port()}")
    started = time.monotonic()
    result = vad("doctor", "--model", setup["model"], "--deployment", NO_DEPLOYMENT, "--timeout", "3")
    assert time.monotonic() - started < 30
    lines = _lines(result.output)
    assert lines["dask"].startswith("✗ dask:") and result.exit_code == 1, result.output
    assert lines["archive"].startswith("✗ archive: no archive configured") and "VAD_ARCHIVE" in lines["archive"]


def _moto_auth(endpoint: str, value: bytes) -> None:
    """Moto's own switch: enforce credentials after `value` requests ("inf": never, its default)."""
    request = urllib.request.Request(f"{endpoint}/moto-api/reset-auth", data=value, method="POST",
                                     headers={"Content-Type": "text/plain"})  # fmt: skip
    urllib.request.urlopen(request, timeout=10).read()


def test_s3_archive_with_wrong_then_right_credentials(setup, s3_endpoint, monkeypatch):
    """(c) refused credentials fail the archive and output lines with one line each and no secret; the right
    ones pass."""
    import boto3
    import s3fs

    endpoint = s3_endpoint["endpoint_url"]
    s3fs.S3FileSystem(**s3_endpoint).pipe("vad-test/doctor-archive/cam1/0100.mp4", b"\0" * 1000)
    iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="admin",
                       aws_secret_access_key="admin")  # fmt: skip
    iam.create_user(UserName="vad-doctor")
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    iam.put_user_policy(UserName="vad-doctor", PolicyName="all", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName="vad-doctor")["AccessKey"]
    right = {"endpoint_url": endpoint, "key": key["AccessKeyId"], "secret": key["SecretAccessKey"]}
    wrong = {**right, "secret": "wr0ng-s3cr3t-never-shown"}
    monkeypatch.setenv("VAD_ARCHIVE", "s3://vad-test/doctor-archive")
    monkeypatch.setenv("VAD_OUT", "s3://vad-test/doctor-out")
    _moto_auth(endpoint, b"0")
    try:
        monkeypatch.setenv("VAD_STORAGE_OPTIONS", json.dumps(wrong))
        result = vad("doctor", "--model", setup["model"], "--deployment", NO_DEPLOYMENT)
        lines = _lines(result.output)
        assert lines["archive"].startswith("✗ archive: storage: cannot list the archive s3://vad-test/doctor-archive")
        assert "signature we calculated does not match" in lines["archive"], result.output
        assert lines["output"].startswith("✗ output: storage: cannot write to the output s3://vad-test/doctor-out")
        assert "Traceback" not in result.output and result.exit_code == 1
        for secret in (wrong["secret"], right["secret"]):
            assert secret not in result.output
        monkeypatch.setenv("VAD_STORAGE_OPTIONS", json.dumps(right))
        result = vad("doctor", "--model", setup["model"], "--deployment", NO_DEPLOYMENT)
        lines = _lines(result.output)
        assert lines["archive"] == "✓ archive s3://vad-test/doctor-archive: 1 video", result.output
        assert lines["output"].startswith("✓ output s3://vad-test/doctor-out: writable"), result.output
        assert right["secret"] not in result.output
    finally:
        _moto_auth(endpoint, b"inf")


def test_a_missing_model_or_a_broken_checkpoint_fails_the_model_line(setup, tmp_path, monkeypatch):
    """(d) no model folder; a checkpoint that does not match its card."""
    from tasks.models.repository import CHECKPOINT

    monkeypatch.setenv("VAD_ARCHIVE", setup["archive"])
    missing = tmp_path / "out" / "models" / "adnet-gone"
    result = vad("doctor", "--model", missing, "--deployment", NO_DEPLOYMENT)
    assert _lines(result.output)["model"] == f"✗ model: no trained model at {missing} (expected config.json and " \
        "checkpoint.pt)", result.output  # fmt: skip
    assert result.exit_code == 1
    copy = tmp_path / "out2" / "models" / setup["model_id"]
    shutil.copytree(setup["model"], copy)
    with open(copy / CHECKPOINT, "ab") as f:
        f.write(b"tampered")
    result = vad("doctor", "--model", copy, "--deployment", NO_DEPLOYMENT)
    assert _lines(result.output)["model"] == f"✗ model {setup['model_id']}: checkpoint.pt does not match its card " \
        "(sha256 differs)", result.output  # fmt: skip


def test_a_served_deployment_and_its_automation(setup, prefect_api):
    """With a Prefect API: the deployment's settings and model_url are what the doctor checks; every check passes
    (exit 0); a paused deployment or work pool, or a disabled automation, fails; a missing automation only warns
    (the first deployed run creates it)."""
    from prefect import get_client
    from prefect.client.schemas.actions import WorkPoolCreate, WorkPoolUpdate

    from flows.dead_runs import DEAD_RUN_AUTOMATION, dead_run_automation
    from flows.doctor import check_automation
    from flows.scan_flow import scan
    from flows.serve import nightly_deployment
    from flows.settings import load_settings

    settings = load_settings(archive=setup["archive"], out=setup["out"])
    deployment_id = nightly_deployment(settings, setup["model"], name="doctor-nightly").apply()
    created = []
    with get_client(sync_client=True) as client:
        if not client.read_automations_by_name(DEAD_RUN_AUTOMATION):  # another test's deployed run may have made it
            created.append(client.create_automation(dead_run_automation()))
        other = dead_run_automation().model_copy(update={"name": "vad: doctor test automation"})
        created.append(client.create_automation(other))
    try:
        result = vad("doctor", "--deployment", "scan/doctor-nightly")
        lines = _lines(result.output)
        assert result.exit_code == 0, result.output
        assert lines["deployment"].startswith("✓ deployment scan/doctor-nightly: scheduled '0 2 * * *' (UTC)")
        assert "settings: the deployment's settings parameter" in result.output
        assert lines["archive"].startswith(f"✓ archive {setup['archive']}") and "1 video" in lines["archive"]
        assert lines["model"].startswith(f"✓ model {setup['model_id']}"), result.output
        assert lines["automation"] == f"✓ automation '{DEAD_RUN_AUTOMATION}': enabled", result.output
        assert "NOT_READY: no `vad serve` or Prefect worker polls it now" in result.output  # a warning only
        assert check_automation("vad: no such automation")[0] is None
        with get_client(sync_client=True) as client:
            client.pause_deployment(deployment_id)
            client.pause_automation(created[-1])
        assert check_automation("vad: doctor test automation") == (
            False, "automation 'vad: doctor test automation': disabled: runs whose process died would stay Running"
        )  # fmt: skip
        result = vad("doctor", "--deployment", "scan/doctor-nightly")
        assert result.exit_code == 1
        assert _lines(result.output)["deployment"] == "✗ deployment scan/doctor-nightly: it is paused", result.output
        result = vad("doctor", "--deployment", "scan/no-such-deployment", "--model", setup["model"])
        assert _lines(result.output)["deployment"].startswith("✗ deployment scan/no-such-deployment: not on the")
        with get_client(sync_client=True) as client:  # a worker's deployment whose work pool is paused
            client.create_work_pool(WorkPoolCreate(name="vad-doctor-pool", type="process"))
            client.update_work_pool("vad-doctor-pool", WorkPoolUpdate(is_paused=True))
        pooled = scan.to_deployment(name="doctor-pooled", work_pool_name="vad-doctor-pool", cron="0 2 * * *",
                                    parameters={"model_url": setup["model"]})  # fmt: skip
        created_pooled = pooled.apply()
        result = vad("doctor", "--deployment", "scan/doctor-pooled")
        assert _lines(result.output)["deployment"] == (
            "✗ deployment scan/doctor-pooled: its work pool 'vad-doctor-pool' is paused"
        ), result.output
    finally:
        with get_client(sync_client=True) as client:
            client.delete_deployment(deployment_id)
            if "created_pooled" in locals():
                client.delete_deployment(created_pooled)
            if any(p.name == "vad-doctor-pool" for p in client.read_work_pools()):
                client.delete_work_pool("vad-doctor-pool")
            for automation_id in created:
                client.delete_automation(automation_id)
