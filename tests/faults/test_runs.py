"""Faults met by whole runs, through the `vad` CLI as an operator meets them: each asserts the exit code, the
one-line message, the manifest rows, that nothing is written outside --out, that no partial file is left to be
taken for current, that no process is left behind, and that the next run after the fault completes."""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import pandas as pd
import psutil
import pytest

from flows.cli import EXIT_INTERRUPTED, EXIT_SOME_FAILED
from tests.conftest import EXTRACTOR, FAST, VIDEOS, free_port, vad
from tests.faults.broken import overreported_mp4, png_as_mp4, truncated_copy, zero_byte

MODEL_ID = f"adnet-w16-{EXTRACTOR}"
JS = "javascript:alert(document.domain)"
LONG = "cam/" + "y" * 232 + ".mp4"


def runs(out, kind):
    names = sorted(r for r in os.listdir(os.path.join(out, "runs")) if f"-{kind}-" in r)
    return [os.path.join(out, "runs", r) for r in names]


def manifest(run_dir):
    return pd.read_parquet(os.path.join(run_dir, "manifest.parquet")).set_index("video_id")


def tracebacks(output: str) -> int:
    """Tracebacks printed by vad. In-process CliRunner runs also show Prefect's console log handler failing to
    write to an earlier run's closed capture stream ('--- Logging error ---'): a test-harness artifact, not ours."""
    return output.count("Traceback") - output.count("--- Logging error ---")


def files_under(root):
    return {os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs}


def orphan_decoders():
    return [p for p in psutil.process_iter(["cmdline", "ppid"])
            if "tasks.media.decoder" in " ".join(p.info["cmdline"] or []) and p.info["ppid"] == 1]  # fmt: skip


@pytest.fixture(scope="module")
def fault_archive(small_archive, tmp_path_factory):
    root = tmp_path_factory.mktemp("fault-archive")
    for vid in ("Explosion/000.mp4", "Normal/002.mp4"):
        os.makedirs(root / os.path.dirname(vid), exist_ok=True)
        shutil.copy(small_archive / "videos" / vid, root / vid)
    (root / "cam").mkdir()
    overreported_mp4(str(root / "cam" / "phantom.mp4"))
    png_as_mp4(str(root / "cam" / "png.mp4"))
    zero_byte(str(root / "cam" / "zero.mp4"))
    truncated_copy(str(small_archive / "videos" / "Normal" / "003.mp4"), str(root / "cam" / "truncated.mp4"))
    os.makedirs(root / JS)
    shutil.copy(small_archive / "videos" / "Normal" / "003.mp4", root / JS / "a.mp4")
    shutil.copy(small_archive / "videos" / "Normal" / "003.mp4", root / LONG)
    os.symlink(os.path.join(VIDEOS, "v_GGSY1Qvo990.mp4"), root / "cam" / "outside.mp4")
    return root


def test_scan_of_a_faulty_archive_fails_only_the_bad_files(fault_archive, trained_model, tmp_path):
    out = tmp_path / "out"
    before = files_under(tmp_path)
    result = vad("scan", "--archive", fault_archive, "--model", trained_model, "--out", out)
    assert result.exit_code == EXIT_SOME_FAILED, result.output
    assert not tracebacks(result.output) and "internal error" not in result.output
    rows = manifest(runs(out, "scan")[-1])
    for bad in ("cam/png.mp4", "cam/zero.mp4", "cam/truncated.mp4"):
        assert rows.loc[bad, "status"] == "failed" and rows.loc[bad, "error"], bad
        assert bad in result.output
    assert "[" in rows.loc["cam/png.mp4", "error"]  # decoder text with brackets printed as text, not markup
    assert rows.loc["cam/outside.mp4", "status"] == "skipped"
    assert "outside the archive" in rows.loc["cam/outside.mp4", "error"]
    for good in ("Explosion/000.mp4", "Normal/002.mp4", f"{JS}/a.mp4", LONG, "cam/phantom.mp4"):
        assert rows.loc[good, "status"] == "done", (good, rows.loc[good].to_dict())
    phantom = json.loads((out / "reports" / MODEL_ID / "cam" / "phantom.mp4.json").read_text())
    assert len(phantom["clip_scores"]) == 2 and phantom["duration_s"] == pytest.approx(40 / 16)  # real frames only
    index = (out / "reports" / MODEL_ID / "index.html").read_text()
    assert 'href="./javascript%3Aalert%28document.domain%29/a.mp4.html"' in index and 'href="javascript' not in index
    assert "Content-Security-Policy" in index
    written = files_under(tmp_path) - before
    assert written and all(p.startswith(str(out) + os.sep) for p in written)  # nothing outside --out
    assert not [p for p in written if os.path.basename(p).startswith(".vad-")]  # no temp file left behind
    again = vad("scan", "--archive", fault_archive, "--model", trained_model, "--out", out)
    assert again.exit_code == 0, again.output  # quarantined files are reported, not retried, not fatal
    assert "quarantined earlier" in again.output and "cam/png.mp4" in again.output


def test_a_video_that_hangs_the_decoder_is_stopped_and_the_run_goes_on(tmp_path, prefect_api, monkeypatch):
    archive = tmp_path / "archive"
    (archive / "cam").mkdir(parents=True)
    overreported_mp4(str(archive / "cam" / "phantom.mp4"))
    shutil.copy(os.path.join(VIDEOS, "v_GGSY1Qvo990.mp4"), archive / "cam" / "real.mp4")
    monkeypatch.setenv("VAD_VERIFY_FRAMES", "false")  # without the frame probe, decord spins on a phantom frame
    monkeypatch.setenv("VAD_STALL_TIMEOUT_S", "5")
    started = time.monotonic()
    result = vad("extract", "--archive", archive, "--out", tmp_path / "out", "--size", "32", "--objects",
                 "--object-mode", "proposals", "--max-objects", "4")  # fmt: skip
    assert time.monotonic() - started < 150
    assert result.exit_code == EXIT_SOME_FAILED, result.output
    rows = manifest(runs(tmp_path / "out", "extract")[-1])
    assert rows.loc["cam/real.mp4", "status"] == "done"
    assert (
        rows.loc["cam/phantom.mp4", "status"] == "failed" and "timed out after" in rows.loc["cam/phantom.mp4", "error"]
    )
    assert not orphan_decoders()
    monkeypatch.delenv("VAD_VERIFY_FRAMES")  # the probe on (the default): the same file now completes
    result = vad("extract", "--archive", archive, "--out", tmp_path / "out", "--size", "32", "--objects",
                 "--object-mode", "proposals", "--max-objects", "4", "--force")  # fmt: skip
    assert result.exit_code == 0, result.output


@pytest.fixture()
def moto_server():
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    box = {"server": server, "port": port}
    yield box
    box["server"].stop()


def test_s3_going_away_mid_run_is_retried_and_the_run_completes(moto_server, small_archive, tmp_path, monkeypatch,
                                                                prefect_api):  # fmt: skip
    import s3fs
    from moto.server import ThreadedMotoServer

    options = {"endpoint_url": f"http://127.0.0.1:{moto_server['port']}", "key": "k", "secret": "s"}
    fs = s3fs.S3FileSystem(**options)
    fs.mkdir("outage")
    archive = tmp_path / "archive"
    shutil.copytree(small_archive / "videos" / "Normal", archive)
    monkeypatch.setenv("VAD_STORAGE_OPTIONS", json.dumps(options))
    outage = {}

    def take_the_endpoint_away():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not fs.glob("outage/out/runs/*/started.json"):
            time.sleep(0.1)
            fs.invalidate_cache()
        moto_server["server"].stop()
        outage["at"] = time.monotonic()
        time.sleep(4)
        moto_server["server"] = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_server["port"])
        moto_server["server"].start()

    thread = threading.Thread(target=take_the_endpoint_away, daemon=True)
    thread.start()
    result = vad("extract", "--archive", archive, "--out", "s3://outage/out", *FAST)
    thread.join()
    assert "at" in outage and result.exit_code == 0, result.output
    fs.invalidate_cache()
    summaries = fs.glob("outage/out/runs/*/summary.json")
    assert json.loads(fs.cat_file(summaries[-1]))["counts"]["done"] == 2


def test_unusable_output_or_archive_is_one_line_and_exit_2(small_archive, tmp_path, s3_endpoint, monkeypatch,
                                                           prefect_api):  # fmt: skip
    monkeypatch.setenv("VAD_STORAGE_OPTIONS", json.dumps(s3_endpoint))
    result = vad("extract", "--archive", small_archive / "videos", "--out", "s3://no-such-bucket/out", *FAST)
    assert result.exit_code == 2 and "storage: cannot write to the output s3://no-such-bucket/out" in result.output
    assert not tracebacks(result.output) and s3_endpoint["secret"] not in result.output
    result = vad("extract", "--archive", tmp_path / "missing", "--out", tmp_path / "out", *FAST)
    assert result.exit_code == 2 and "archive: not found" in result.output


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_a_full_disk_fails_videos_with_a_storage_reason_and_leaves_no_partial_files(small_archive, tmp_path,
                                                                                     prefect_api):  # fmt: skip
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], check=True)
    try:
        archive = tmp_path / "archive"
        shutil.copytree(small_archive / "videos" / "Normal", archive)
        stat = os.statvfs(disk)
        with open(disk / "filler", "wb") as f:
            f.write(b"\0" * (stat.f_bavail * stat.f_frsize - 12 * 1024))  # ~12 KB left: a run record, no features
        result = vad("extract", "--archive", archive, "--out", disk / "out", *FAST)
        assert not tracebacks(result.output) and result.exit_code in (EXIT_SOME_FAILED, 1), result.output
        if result.exit_code == EXIT_SOME_FAILED:  # the manifest fitted
            rows = manifest(runs(disk / "out", "extract")[-1])
            assert (rows.status == "failed").all() and rows.error.str.contains("No space left on device").all()
            assert rows.error.str.startswith("storage:").all()
        else:
            assert "storage:" in result.output
        assert not [p for p in files_under(disk) if os.path.basename(p).startswith(".vad-")]
        assert not [p for p in files_under(disk) if p.endswith(".parquet") and "features" in p]
        os.remove(disk / "filler")
        result = vad("extract", "--archive", archive, "--out", disk / "out", *FAST)
        assert result.exit_code == 0, result.output
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def test_sigterm_stops_a_run_cleanly(small_archive, tmp_path):
    archive = tmp_path / "archive"
    shutil.copytree(small_archive / "videos", archive)
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}  # vad's own temporary API server
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    cmd = [sys.executable, "-m", "flows.cli", "extract", "--archive", str(archive), "--out", str(out), *FAST]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)  # fmt: skip
    family: set[int] = set()
    deadline = time.monotonic() + 240
    features = out / "features"
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            family |= {c.pid for c in psutil.Process(proc.pid).children(recursive=True)}
        except psutil.NoSuchProcess:
            break
        if features.exists() and any(p.endswith(".parquet") for p in files_under(features)):
            break
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()[0]
    family |= {c.pid for c in psutil.Process(proc.pid).children(recursive=True)}
    os.killpg(proc.pid, signal.SIGTERM)  # as systemd stops a unit: every process of the group
    output = proc.communicate(timeout=120)[0]
    assert proc.returncode == EXIT_INTERRUPTED, output
    assert "interrupted" in output and "Traceback" not in output
    rows = manifest(runs(out, "extract")[-1])
    assert (rows.status == "interrupted").any() and rows.error.str.len().gt(0).all()
    for path in files_under(features):  # what was written is whole (atomic writes), and so current next time
        assert not os.path.basename(path).startswith(".vad-")
        if path.endswith(".parquet"):
            assert pd.read_parquet(path).shape[0] > 0
    time.sleep(3)
    alive = [p for p in family if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert not alive, [" ".join(psutil.Process(p).cmdline()) for p in alive]
    assert not orphan_decoders()
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == EXIT_SOME_FAILED, again.stdout + again.stderr  # only corrupted.mp4 fails
    assert "done" in again.stdout


def test_bad_options_and_config_are_named_and_exit_2(tmp_path, small_archive, prefect_api):
    scores = tmp_path / "out" / "scores" / "m"
    for args, message in (
        (["--overlaps", "150,-5"], "--overlaps"),
        (["--overlaps", "abc"], "--overlaps"),
        (["--threshold", "5"], "--threshold"),
    ):
        result = vad("evaluate", "--scores", scores, "--annotations", small_archive / "annotations.json", *args)
        assert result.exit_code == 2 and message in result.output, (args, result.output)
    bad_ann = tmp_path / "bad.json"
    bad_ann.write_text('{"v.mp4": 5}')
    result = vad("evaluate", "--scores", scores, "--annotations", bad_ann)
    assert result.exit_code == 2 and str(bad_ann) in " ".join(result.output.split()), result.output
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("model: {window: [1,\n")
    result = vad("report", "--model-id", "m", "--out", tmp_path / "out", "--config", bad_yaml)
    assert result.exit_code == 2 and "not valid YAML" in " ".join(result.output.split())


def test_a_killed_run_leaves_no_api_server_behind(small_archive, tmp_path):
    """SIGKILL cannot be handled: vad's temporary API server dies with it (PR_SET_PDEATHSIG), never orphaned."""
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    cmd = [sys.executable, "-m", "flows.cli", "extract", "--archive", str(small_archive / "videos"), "--out",
           str(tmp_path / "out"), *FAST]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = None
    deadline = time.monotonic() + 120
    while server is None and time.monotonic() < deadline and proc.poll() is None:
        for child in psutil.Process(proc.pid).children(recursive=True):
            if "prefect.server.api.server:create_app" in " ".join(child.cmdline()):
                server = child
        time.sleep(0.2)
    assert server is not None, "the run started no temporary API server"
    assert os.getpgid(server.pid) != os.getpgid(proc.pid)  # its own session: group signals reach vad only
    proc.kill()
    proc.wait()
    server.wait(timeout=20)
    assert not server.is_running()


def test_a_deployed_scan_that_cannot_list_its_archive_fails_at_once_and_leaves_a_summary(trained_model, tmp_path,
                                                                                       s3_endpoint, monkeypatch,
                                                                                       prefect_api):  # fmt: skip
    """The scan flow as a worker runs it (parameters without storage options): the archive is listed under the
    run's record, so a bucket that does not exist is one line naming the URL, and the output still has the run."""
    from anomaly_models.errors import UsageError
    from flows.scan_flow import scan
    from flows.settings import Settings

    monkeypatch.setenv("VAD_STORAGE_OPTIONS", json.dumps(s3_endpoint))  # the worker's environment
    out = tmp_path / "out"
    parameters = {"storage": {"out": str(out), "archive": "s3://no-such-archive-bucket/cams"}}
    started = time.monotonic()
    with pytest.raises(UsageError, match="s3://no-such-archive-bucket/cams"):
        scan(Settings.model_validate(parameters), str(trained_model))
    assert time.monotonic() - started < 60
    (run_dir,) = runs(out, "scan")
    with open(os.path.join(run_dir, "summary.json")) as f:
        text = f.read()
    assert "s3://no-such-archive-bucket/cams" in json.loads(text)["interrupted"] and s3_endpoint["secret"] not in text
