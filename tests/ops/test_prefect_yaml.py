"""prefect.yaml (the `prefect deploy` path) stays consistent with the scan flow it deploys."""

import inspect
import pathlib

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_prefect_yaml_deploys_the_scan_flow_by_module_path_one_run_at_a_time():
    from prefect.flows import load_flow_from_entrypoint

    from flows.settings import Settings

    config = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    (deployment,) = config["deployments"]
    assert ":" not in deployment["entrypoint"]  # a module path, importable wherever vad is installed
    flow = load_flow_from_entrypoint(deployment["entrypoint"])
    assert flow.name == "scan"
    assert set(deployment["parameters"]) <= set(inspect.signature(flow.fn).parameters)
    Settings.model_validate(deployment["parameters"]["settings"])  # the settings sections validate
    assert deployment["concurrency_limit"]["limit"] == 1
    assert deployment["schedules"][0]["timezone"] == deployment["parameters"]["timezone"]
    assert "storage_options" not in str(deployment) and "secret" not in str(deployment).lower()
