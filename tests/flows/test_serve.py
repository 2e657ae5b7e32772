from datetime import date

from flows.scan_plan import dated_globs
from flows.serve import nightly_deployment
from flows.settings import Settings
from tasks.store.archive import discover_videos
from tests.conftest import vad


def test_dated_globs_pick_last_nights_folders(tmp_path):
    for day in ("2026-11-27", "2026-11-28", "2026-11-29"):
        (tmp_path / "cam07" / day).mkdir(parents=True)
        (tmp_path / "cam07" / day / "0100.mp4").write_bytes(b"x")
    globs = dated_globs(["cam*/{yesterday}/*"], today=date(2026, 11, 29))
    assert globs == ("cam*/2026-11-28/*",)
    assert [e.video_id for e in discover_videos(str(tmp_path), include=globs)] == ["cam07/2026-11-28/0100.mp4"]


def test_nightly_deployment_schedule_and_parameters_without_secrets():
    settings = Settings().replace(
        archive="s3://cams",
        out="s3://vad",
        include=["cam*/{yesterday}/*"],
        storage_options={"secret": "NEVER-IN-PARAMS"},
    )
    deployment = nightly_deployment(settings, "s3://vad/models/m1", cron="30 1 * * *", config_file="/etc/vad.yaml")
    assert deployment.name == "served-scan" and deployment.flow_name == "scan"
    assert deployment.schedules[0].schedule.cron == "30 1 * * *"
    params = deployment.parameters
    assert params["model_url"] == "s3://vad/models/m1" and params["settings"]["schedule"]["include"] == [
        "cam*/{yesterday}/*"
    ]
    assert "NEVER-IN-PARAMS" not in str(params)
    assert params["config_file"] == "/etc/vad.yaml"  # storage options are re-read from it at run time
    # the flow run rebuilds Settings from these parameters (the secret comes from the serving process's env)
    assert Settings.model_validate(params["settings"]).storage.archive == "s3://cams"


def test_serve_refuses_without_a_prefect_server(monkeypatch, tmp_path):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    with temporary_settings(restore_defaults={PREFECT_API_URL}):  # also when a test API is active
        assert not PREFECT_API_URL.value()
        result = vad("serve", "--archive", tmp_path, "--model", tmp_path / "m")
    assert result.exit_code == 1 and "prefect server start" in " ".join(result.output.split())


def test_scan_runs_have_a_time_limit_by_default():
    """A hung night must not hold the deployment's one slot for ever: every scan (prefect.yaml's deployment, vad
    serve's, the CLI's) stops after 20 h unless told otherwise."""
    from flows.scan_flow import SCAN_TIMEOUT_S, scan

    assert scan.timeout_seconds == SCAN_TIMEOUT_S == 20 * 3600
    assert scan.with_options(timeout_seconds=None).timeout_seconds == SCAN_TIMEOUT_S  # vad serve without --timeout
    assert scan.with_options(timeout_seconds=60).timeout_seconds == 60
