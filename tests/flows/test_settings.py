import asyncio

import pytest
from prefect import flow
from prefect.client.orchestration import get_client

from flows.settings import ConfigError, Settings, load_settings


def test_precedence_file_then_env_then_flags(tmp_path, monkeypatch):
    cfg = tmp_path / "vad.yaml"
    cfg.write_text("out: /from/file\nbackbone: mc3_18\nwindow: 32\nstorage_options: {anon: true}\n")
    monkeypatch.setenv("VAD_BACKBONE", "r2plus1d_18")
    monkeypatch.setenv("VAD_WINDOW", "48")
    s = load_settings(config_file=str(cfg), window=16, out=None)
    assert s.storage.out == "/from/file" and s.extractor.backbone == "r2plus1d_18" and s.model.window == 16
    assert s.storage.options == {"anon": True} and type(s) is Settings
    assert load_settings().storage.out == "./vad-data"  # the file does not leak into later loads
    sectioned = tmp_path / "sections.yaml"  # the same settings in sections
    sectioned.write_text(
        "storage: {out: /from/file, options: {anon: true}}\nextractor: {backbone: mc3_18}\nmodel: {window: 32}\n"
    )
    s = load_settings(config_file=str(sectioned), window=16)
    assert s.storage.out == "/from/file" and s.extractor.backbone == "r2plus1d_18" and s.model.window == 16
    assert s.storage.options == {"anon": True}


def test_dict_settings_come_whole_from_one_layer(tmp_path, monkeypatch):
    cfg = tmp_path / "vad.yaml"
    cfg.write_text(
        "storage_options: {endpoint_url: 'http://minio:9000', key: FILEKEY}\nmodel_options: {dim: 64, depth: 5}\n"
    )
    assert load_settings(config_file=str(cfg)).storage.options == {
        "endpoint_url": "http://minio:9000",
        "key": "FILEKEY",
    }
    monkeypatch.setenv("VAD_STORAGE_OPTIONS", '{"key": "AKIA", "secret": "aws"}')
    s = load_settings(config_file=str(cfg), model_options={"depth": 2})
    assert s.storage.options == {"key": "AKIA", "secret": "aws"}  # never AWS keys sent to the file's endpoint
    assert s.model.options == {"depth": 2}


def test_wrong_config_names_the_field(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="backbone"):
        load_settings(backbone="resnet9000")
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("windwo: 3\n")
    with pytest.raises(ConfigError, match="windwo"):
        load_settings(config_file=str(cfg))
    with pytest.raises(ConfigError, match="clip_len"):
        load_settings(clip_len=0)
    with pytest.raises(ConfigError, match="size: mvit_v2_s needs size=224"):
        load_settings(backbone="mvit_v2_s", size=112)
    monkeypatch.setenv("VAD_STORAGE_OPTIONS", "{not json")
    with pytest.raises(ConfigError, match="storage_options"):
        load_settings()


@flow
def _echo(settings: Settings) -> str:
    from prefect.runtime import flow_run

    return str(flow_run.id)


def test_storage_options_never_reach_stored_flow_parameters(prefect_api):
    run_id = _echo(Settings().replace(storage_options={"secret": "TOPSECRET-123"}))

    async def stored():
        async with get_client() as client:
            return (await client.read_flow_run(run_id)).parameters

    params = asyncio.run(stored())
    assert "settings" in params and "TOPSECRET-123" not in str(params)


def test_a_deployed_run_reads_storage_and_site_settings_where_it_runs(tmp_path, monkeypatch):
    """A deployment's parameters hold only what the operator set there (and never storage options): the run's
    process adds its config file and environment under them."""
    deployed = Settings.model_validate({"schedule": {"include": ["cam*/{yesterday}/*"]}, "model": {"score_batch": 4}})
    monkeypatch.setenv("VAD_ARCHIVE", "s3://cameras")
    monkeypatch.setenv("VAD_SCORE_BATCH", "9")
    monkeypatch.setenv("VAD_STORAGE_OPTIONS", '{"key": "K", "secret": "S"}')
    cfg = tmp_path / "vad.yaml"
    cfg.write_text("storage: {out: s3://vad}\ncluster: {dask_address: 'tcp://sched:8786', gpu_tasks: true}\n")
    monkeypatch.setenv("VAD_CONFIG_FILE", str(cfg))
    run = deployed.at_runtime()
    assert run.storage.options == {"key": "K", "secret": "S"} and run.storage.archive == "s3://cameras"
    assert run.storage.out == "s3://vad" and run.cluster.dask_address == "tcp://sched:8786" and run.cluster.gpu_tasks
    assert run.schedule.include == ["cam*/{yesterday}/*"] and run.model.score_batch == 4  # the deployment's win
    assert "secret" not in str(run.model_dump(mode="json"))
    monkeypatch.delenv("VAD_CONFIG_FILE")  # the flow's config_file parameter names the file instead
    assert deployed.at_runtime(str(cfg)).storage.out == "s3://vad"
    in_process = load_settings(out=str(tmp_path), storage_options={"anon": True})
    assert in_process.at_runtime() is in_process  # a CLI run calling the flow keeps what it was given
