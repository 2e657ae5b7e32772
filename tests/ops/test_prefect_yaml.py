"""prefect.yaml (the `prefect deploy` path) stays consistent with the scan flow it deploys and with the runbook
(docs/operations.md) that deploys it: the deployment says what runs, the worker's environment says where."""

import inspect
import pathlib
import shlex

import yaml

from tests.ops.production import runbook_commands, runbook_environment

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _deployments() -> dict[str, dict]:
    config = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    return {d["name"]: d for d in config["deployments"]}


def test_prefect_yaml_deploys_the_scan_flow_by_module_path_one_run_at_a_time():
    from prefect.flows import load_flow_from_entrypoint

    from flows.settings import Settings

    (deployment,) = _deployments().values()
    assert ":" not in deployment["entrypoint"]  # a module path, importable wherever vad is installed
    flow = load_flow_from_entrypoint(deployment["entrypoint"])
    assert flow.name == "scan"
    assert set(deployment["parameters"]) <= set(inspect.signature(flow.fn).parameters)
    Settings.model_validate(deployment["parameters"]["settings"])  # the settings sections validate
    assert deployment["concurrency_limit"]["limit"] == 1
    assert deployment["schedules"][0]["timezone"] == deployment["parameters"]["timezone"]
    assert "storage_options" not in str(deployment) and "secret" not in str(deployment).lower()


def test_the_runbooks_deploy_command_deploys_a_deployment_of_prefect_yaml_with_the_flows_parameters():
    from flows.scan_flow import scan

    args = shlex.split(runbook_commands()["prefect deploy"])
    assert args[:2] == ["prefect", "deploy"] and "--no-prompt" in args
    assert (ROOT / args[args.index("--prefect-file") + 1]).is_file()
    deployment = _deployments()[args[args.index("--name") + 1]]
    assert deployment["entrypoint"] == f"{scan.fn.__module__}.{scan.fn.__name__}"
    given = {args[i + 1].partition("=")[0] for i, arg in enumerate(args) if arg == "--param"}
    signature = inspect.signature(scan.fn).parameters
    assert given <= set(signature), f"--param names no parameter of the scan flow: {given - set(signature)}"
    assert not given & set(deployment["parameters"]), "a --param also set in prefect.yaml: one place for each"
    required = {name for name, p in signature.items() if p.default is inspect.Parameter.empty}
    assert required <= given | set(deployment["parameters"]), "a required parameter of the flow is given nowhere"
    assert "--params" not in args  # a JSON of parameters: the runbook gives each by name


def test_the_runbooks_work_pool_is_the_deployments():
    commands = runbook_commands()
    (deployment,) = _deployments().values()
    pool = deployment["work_pool"]["name"]
    create, start = shlex.split(commands["prefect work-pool create"]), shlex.split(commands["prefect worker start"])
    assert create[3] == pool and create[create.index("--type") + 1] == "process"
    assert start[start.index("--pool") + 1] == pool and "--with-healthcheck" in start


def test_the_deployments_settings_set_what_runs_and_nothing_the_workers_environment_sets():
    """A run's settings are the deployment's `settings` parameter over the worker's environment
    (`Settings.at_runtime`): a field set in both would silently override the worker's value, and storage options
    (secrets) must never be a flow parameter."""
    from flows.settings import FLAT, Settings

    (deployment,) = _deployments().values()
    raw = deployment["parameters"]["settings"]
    settings = Settings.model_validate(raw)
    assert settings.storage.options == {} and "options" not in raw.get("storage", {})
    assert not set(raw) & set(FLAT), "flat keys in the settings parameter: use sections"
    set_here = {(section, field) for section, fields in raw.items() for field in fields}
    for name in runbook_environment():
        flat = name.removeprefix("VAD_").lower()
        if name.startswith("VAD_") and flat in FLAT:
            assert FLAT[flat] not in set_here, f"prefect.yaml sets {'.'.join(FLAT[flat])}, which {name} sets"
    runbook = (ROOT / "docs" / "operations.md").read_text()
    assert settings.schedule.include and all(f"`{glob}`" in runbook for glob in settings.schedule.include)
