"""infra/: the one-box compose stack is internally consistent, and every Kubernetes manifest validates offline against
the Kubernetes API schemas (kubernetes-validate, strict: unknown fields are errors) and the Dask operator's CRD
schemas (shipped in the dask-kubernetes package's Helm chart). Nothing here talks to Docker or a cluster."""

from __future__ import annotations

import json
import os
import re
import shlex
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.ops.production import runbook_commands, runbook_environment

INFRA = Path(__file__).resolve().parents[2] / "infra"
K8S = INFRA / "k8s"
VERSION = kubernetes_validate.utils.latest_version()
VARIABLE = re.compile(r"(?<!\$)\$\{([A-Z0-9_]+)(?::?[-?][^}]*)?\}")
SECRET_WORDS = ("PASSWORD", "SECRET", "TOKEN", "CONNECTION_URL", "STORAGE_OPTIONS")


def _env_example() -> dict[str, str]:
    out = {}
    for line in (INFRA / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def _substitute(text: str, env: dict[str, str]) -> str:
    return VARIABLE.sub(lambda m: env[m.group(1)], text).replace("$$", "$")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((INFRA / "compose.yaml").read_text())


def test_every_variable_comes_from_the_env_example_and_every_example_is_used():
    text = (INFRA / "compose.yaml").read_text()
    used, defined = set(VARIABLE.findall(text)), set(_env_example())
    assert used <= defined, f"not in infra/.env.example: {sorted(used - defined)}"
    assert defined <= used, f"defined but unused: {sorted(defined - used)}"


def test_services_images_health_restart_volumes_ports_and_secrets(compose):
    services, volumes = compose["services"], set(compose.get("volumes") or {})
    assert {"postgres", "prefect-server", "minio", "minio-init", "dask-scheduler", "dask-worker-cpu",
            "dask-worker-gpu", "prefect-worker"} <= set(services)  # fmt: skip
    for name, service in services.items():
        image = service["image"]
        assert VARIABLE.fullmatch(image) or re.fullmatch(r"[a-z0-9./-]+:[A-Za-z0-9._-]+", image), (name, image)
        assert service.get("network_mode") != "host" and not service.get("privileged"), name
        one_shot = service.get("restart") == "no"
        if not one_shot:
            assert service.get("restart") in ("unless-stopped", "always", "on-failure"), name
            assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"
        for target, condition in (service.get("depends_on") or {}).items():
            assert target in services, (name, target)
            wanted = condition["condition"]
            if wanted == "service_healthy":
                assert services[target].get("healthcheck"), (name, target)
            elif wanted == "service_completed_successfully":
                assert services[target].get("restart") == "no", (name, target)
        for mount in service.get("volumes") or []:
            source = mount.split(":")[0]
            assert source in volumes or VARIABLE.fullmatch(source), f"{name}: undeclared volume {source}"
        for port in service.get("ports") or []:
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond this machine"
        for key, value in (service.get("environment") or {}).items():
            if any(word in key for word in SECRET_WORDS):
                assert VARIABLE.search(str(value)), f"{name}: {key} must come from the environment (.env)"
    used = {m.split(":")[0] for s in services.values() for m in s.get("volumes") or []}
    assert volumes <= used, f"declared but unused volumes: {volumes - used}"


def test_addresses_point_at_services_and_ports_that_exist(compose):
    services, env = compose["services"], _env_example()
    text = _substitute((INFRA / "compose.yaml").read_text(), env)
    commands = {name: " ".join(map(str, s.get("command") or [])) for name, s in services.items()}
    for host, port in set(re.findall(r"(?:http|tcp)://([a-z][a-z0-9-]+):(\d+)", text)) - {("localhost", "")}:
        if host == "localhost":
            continue
        assert host in services, f"{host}:{port} is not a service"
        assert port in commands[host] or (host, port) in {("minio", "9000"), ("postgres", "5432")}, (host, port)
    options = json.loads(_substitute(compose["x-vad-env"]["VAD_STORAGE_OPTIONS"], env))
    assert options["endpoint_url"] == "http://minio:9000" and options["key"] == env["MINIO_ROOT_USER"]
    gpu = services["dask-worker-gpu"]
    assert "GPU=1" in commands["dask-worker-gpu"] and "--resources" in commands["dask-worker-gpu"]
    device = gpu["deploy"]["resources"]["reservations"]["devices"][0]
    assert device["driver"] == "nvidia" and device["count"] == 1 and "gpu" in device["capabilities"]
    assert "--resources" not in commands["dask-worker-cpu"]


def _worker_steps(compose: dict) -> list[str]:
    """The compose prefect-worker's shell script as its `&&` steps, each as the container's shell runs it."""
    worker = compose["services"]["prefect-worker"]
    assert worker["entrypoint"] == ["/bin/sh", "-c"] and len(worker["command"]) == 1
    return [step.strip() for step in worker["command"][0].replace("$$", "$").split("&&")]


def test_the_compose_prefect_worker_runs_the_runbooks_commands_verbatim(compose):
    runbook, steps = runbook_commands(), _worker_steps(compose)
    plain = [re.sub(r"^(?:exec|\{)\s+", "", step) for step in steps]
    order = ["prefect work-pool create", "prefect deploy", "vad doctor", "prefect worker start"]
    at = {}
    for prefix in order:
        found = [i for i, step in enumerate(plain) if step.startswith(prefix)]
        assert len(found) == 1, f"the compose prefect-worker should run `{prefix}` once: {steps}"
        at[prefix] = found[0]
    assert sorted(at.values()) == [at[p] for p in order], f"not in the runbook's order: {steps}"
    for prefix in ("prefect work-pool create", "prefect deploy", "prefect worker start"):
        assert plain[at[prefix]] == runbook[prefix], "compose and docs/operations.md differ"
    # the pre-flight check reports in the container's log but never keeps the worker from starting
    assert re.fullmatch(re.escape(runbook["vad doctor"]) + r" \|\| true; \}", plain[at["vad doctor"]])
    assert steps[at["prefect worker start"]].startswith("exec ") and at["prefect worker start"] == len(steps) - 1
    # the deploy runs in a folder of the image that holds prefect.yaml
    folder = [s.removeprefix("cd ") for s in steps[: at["prefect deploy"]] if s.startswith("cd ")]
    prefect_file = shlex.split(runbook["prefect deploy"])
    prefect_file = prefect_file[prefect_file.index("--prefect-file") + 1]
    assert folder and f" {folder[-1]}/{prefect_file}" in (INFRA / "Dockerfile").read_text()


def _worker_environment(compose: dict) -> dict[str, str]:
    """The compose prefect-worker's environment, with .env.example's values."""
    env = _env_example()
    return {k: _substitute(str(v), env) for k, v in compose["services"]["prefect-worker"]["environment"].items()}


def test_the_compose_prefect_worker_has_the_runbooks_environment(compose):
    services, worker = compose["services"], _worker_environment(compose)
    missing = set(runbook_environment()) - set(worker)
    assert not missing, f"docs/operations.md's worker environment has {sorted(missing)}, compose's prefect-worker not"
    text = (INFRA / "compose.yaml").read_text()
    block = text[text.index("\n  prefect-worker:") :]
    block = block[: block.index("\n    volumes:")]
    assert "<<: *vad-env" in block
    for name in runbook_environment():
        if any(word in name for word in SECRET_WORDS):  # secrets: the anchor the Dask workers share, from .env
            assert name in compose["x-vad-env"] and f"{name}:" not in block, f"{name} must come from x-vad-env"
            for dask in ("dask-worker-cpu", "dask-worker-gpu"):
                assert services[dask]["environment"][name] == compose["x-vad-env"][name], dask
    # where: the archive as the Dask workers mount it, the scheduler, GPU tasks only with a GPU worker
    archive = worker["VAD_ARCHIVE"]
    for name in ("prefect-worker", "dask-worker-cpu", "dask-worker-gpu"):
        assert [m.split(":")[1] for m in services[name]["volumes"]] == [archive], name
    host, port = re.fullmatch(r"tcp://([a-z-]+):(\d+)", worker["VAD_DASK_ADDRESS"]).groups()
    assert services[host]["command"][services[host]["command"].index("--port") + 1] == port
    assert worker["VAD_GPU_TASKS"] == "true" and "GPU=1" in services["dask-worker-gpu"]["command"]


def _run_settings(monkeypatch, env: dict[str, str]):
    """The settings a deployed run of prefect.yaml's nightly-scan sees on a machine with this environment: the
    deployment's `settings` parameter over the config file and the VAD_* environment (`Settings.at_runtime`)."""
    from flows.settings import Settings

    for name in list(os.environ):
        if name.startswith("VAD_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    deployment = yaml.safe_load((INFRA.parent / "prefect.yaml").read_text())["deployments"][0]
    return Settings.model_validate(deployment["parameters"]["settings"]).at_runtime(), deployment


def test_a_run_on_the_compose_prefect_worker_reads_this_stacks_settings(compose, monkeypatch):
    env = _worker_environment(compose)
    settings, deployment = _run_settings(monkeypatch, env)
    assert settings.storage.archive == "/archive" and settings.storage.out == env["VAD_OUT"]
    assert settings.storage.options == json.loads(env["VAD_STORAGE_OPTIONS"])
    assert settings.cluster.dask_address == "tcp://dask-scheduler:8786" and settings.cluster.gpu_tasks is True
    assert settings.cluster.gpu_wait_s == float(env["VAD_GPU_WAIT_S"]) and not settings.schedule.webhook_url
    assert settings.schedule.include == deployment["parameters"]["settings"]["schedule"]["include"]


# ---- Kubernetes


def _documents() -> list[tuple[str, dict]]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    docs = []
    for resource in kustomization["resources"]:
        assert (K8S / resource).is_file(), resource
        docs += [(resource, d) for d in yaml.safe_load_all((K8S / resource).read_text()) if d]
    for generator in kustomization.get("configMapGenerator", []):
        for file in generator["files"]:
            assert (K8S / file).is_file(), file
    return docs


def _crd_schema(kind: str) -> dict:
    import dask_kubernetes

    chart = Path(dask_kubernetes.__file__).parent / "operator/deployment/helm/dask-kubernetes-operator/crds"
    for path in chart.glob("*.yaml"):
        crd = yaml.safe_load(path.read_text())
        if crd["spec"]["names"]["kind"] == kind:
            return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    raise AssertionError(f"no CRD for {kind} in {chart}")


def _validate_pod_spec(spec: dict, where: str) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "check"}, "spec": spec}
    try:
        kubernetes_validate.validate(pod, VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        raise AssertionError(f"{where}: {exc.message}") from None


def test_every_manifest_validates_against_the_kubernetes_and_dask_operator_schemas():
    kinds = []
    for resource, doc in _documents():
        kinds.append(doc["kind"])
        if doc["apiVersion"].startswith("kubernetes.dask.org/"):
            jsonschema.validate(doc, _crd_schema(doc["kind"]))
            for role in ("worker", "scheduler"):
                if role in doc["spec"]:
                    _validate_pod_spec(doc["spec"][role]["spec"], f"{resource} {role}")
        else:
            kubernetes_validate.validate(doc, VERSION, strict=True)
    assert {"Namespace", "Secret", "DaskCluster", "DaskWorkerGroup", "Deployment", "Role", "RoleBinding"} <= set(kinds)


def test_a_broken_manifest_is_caught():
    bad = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"},
           "spec": {"containers": [{"name": "w", "image": "i", "resource": {}}]}}  # fmt: skip
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, VERSION, strict=True)
    cluster = dict(_documents())["daskcluster.yaml"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**cluster, "spec": {"worker": {"replicas": "four"}}}, _crd_schema("DaskCluster"))


def test_gpu_workers_cluster_secret_and_names_line_up():
    docs = _documents()
    by_kind: dict[str, list[dict]] = {}
    for _, doc in docs:
        by_kind.setdefault(doc["kind"], []).append(doc)
    cluster, gpu = by_kind["DaskCluster"][0], by_kind["DaskWorkerGroup"][0]
    assert gpu["spec"]["cluster"] == cluster["metadata"]["name"]
    worker = gpu["spec"]["worker"]["spec"]["containers"][0]
    assert worker["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert " ".join(worker["args"]).count("--resources GPU=1") == 1
    cpu = cluster["spec"]["worker"]["spec"]["containers"][0]
    assert "--resources" not in cpu["args"] and "nvidia.com/gpu" not in str(cpu["resources"])
    secret = by_kind["Secret"][0]["metadata"]["name"]
    for container in (cpu, worker):
        assert container["envFrom"] == [{"secretRef": {"name": secret}}]
    ports = {p["name"]: p["port"] for p in cluster["spec"]["scheduler"]["service"]["ports"]}
    assert ports["tcp-comm"] == 8786
    accounts = {d["metadata"]["name"] for d in by_kind["ServiceAccount"]}
    deployment = by_kind["Deployment"][0]["spec"]["template"]["spec"]
    assert deployment["serviceAccountName"] in accounts
    args = deployment["containers"][0]["args"]
    assert args[args.index("--type") + 1] == "kubernetes"
    generator = yaml.safe_load((K8S / "kustomization.yaml").read_text())["configMapGenerator"][0]
    assert deployment["volumes"][0]["configMap"]["name"] == generator["name"]
    assert all(d["metadata"].get("namespace", "vad") == "vad" for _, d in docs if d["kind"] != "Namespace")


def _render(value, variables: dict):
    """Prefect's templating of a base job template: "{{ name }}" takes the variable's value (None drops the key)."""
    if isinstance(value, dict):
        out = {k: _render(v, variables) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not None}
    if isinstance(value, list):
        return [_render(v, variables) for v in value]
    if isinstance(value, str):
        whole = re.fullmatch(r"\{\{\s*(\w+)\s*\}\}", value)
        if whole:
            return variables.get(whole.group(1))
        return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: str(variables.get(m.group(1)) or ""), value)
    return value


def _rendered_job() -> dict:
    template = json.loads((K8S / "base-job-template.json").read_text())
    variables = {k: v.get("default") for k, v in template["variables"]["properties"].items()}
    variables.update(name="nightly-scan-abc", command="prefect flow-run execute", env=None, labels={"a": "b"})
    job = _render(template["job_configuration"]["job_manifest"], variables)
    job["metadata"]["name"] = "nightly-scan-abc"
    job["spec"]["template"]["spec"]["containers"][0]["args"] = ["prefect", "flow-run", "execute"]
    return job


def test_the_base_job_template_renders_to_a_valid_job_that_runs_prefect_in_the_image():
    job = _rendered_job()
    kubernetes_validate.validate(job, VERSION, strict=True)
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["/usr/bin/tini", "--"]  # not the image's `vad` entrypoint
    assert container["envFrom"] == [{"configMapRef": {"name": "vad-env"}}, {"secretRef": {"name": "vad-storage"}}]
    assert job["metadata"]["namespace"] == "vad"


def _k8s_environment(container: dict) -> dict[str, tuple[str, str]]:
    """A container's environment: name -> (where it comes from, value), from its `envFrom` ConfigMaps and Secrets
    (plain resources of the kustomization: a generated one's name gets a hash suffix that base-job-template.json
    would not follow) and its `env` (which wins)."""
    docs = {(d["kind"], d["metadata"]["name"]): d for _, d in _documents()}
    out: dict[str, tuple[str, str]] = {}
    for ref in container.get("envFrom") or []:
        kind, data = ("ConfigMap", "data") if "configMapRef" in ref else ("Secret", "stringData")
        name = ref["configMapRef" if kind == "ConfigMap" else "secretRef"]["name"]
        assert (kind, name) in docs, f"envFrom names {kind} {name}, which no resource of kustomization.yaml is"
        out.update({key: (kind, value) for key, value in docs[kind, name][data].items()})
    for item in container.get("env") or []:
        out[item["name"]] = ("env", item.get("value"))
    return out


def _k8s_worker() -> dict:
    (deployment,) = [d for _, d in _documents() if d["kind"] == "Deployment"]
    return deployment["spec"]["template"]["spec"]["containers"][0]


def test_flow_run_jobs_and_the_k8s_worker_have_the_runbooks_environment():
    job = _rendered_job()["spec"]["template"]["spec"]["containers"][0]
    for where, container in (("the flow-run Job", job), ("the Prefect worker", _k8s_worker())):
        env = _k8s_environment(container)
        missing = set(runbook_environment()) - set(env)
        assert not missing, f"docs/operations.md's worker environment has {sorted(missing)}, {where} not"
        for name, (source, _) in env.items():
            secret = any(word in name for word in SECRET_WORDS)
            assert (source == "Secret") == secret, f"{where}: {name} comes from a {source}"
    for resource, doc in _documents():  # no secret in a ConfigMap, even one a Secret's key would shadow
        if doc["kind"] == "ConfigMap":
            assert not [key for key in doc.get("data", {}) if any(word in key for word in SECRET_WORDS)], resource


def test_a_flow_run_job_reads_the_clusters_settings(monkeypatch):
    job = _rendered_job()["spec"]["template"]["spec"]["containers"][0]
    env = {name: value for name, (_, value) in _k8s_environment(job).items()}
    settings, deployment = _run_settings(monkeypatch, env)
    by_kind = {d["kind"]: d for _, d in _documents()}
    cluster = by_kind["DaskCluster"]
    port = {p["name"]: p["port"] for p in cluster["spec"]["scheduler"]["service"]["ports"]}["tcp-comm"]
    scheduler = f"tcp://{cluster['metadata']['name']}-scheduler.{cluster['metadata']['namespace']}.svc:{port}"
    assert settings.cluster.dask_address == scheduler  # the operator's scheduler Service
    assert settings.cluster.gpu_tasks is True and "GPU=1" in " ".join(
        by_kind["DaskWorkerGroup"]["spec"]["worker"]["spec"]["containers"][0]["args"]
    )
    assert settings.storage.options == json.loads(env["VAD_STORAGE_OPTIONS"])
    assert settings.storage.archive == env["VAD_ARCHIVE"] and settings.storage.out == env["VAD_OUT"]
    assert settings.schedule.include == deployment["parameters"]["settings"]["schedule"]["include"]


def test_the_readme_deploys_to_the_kubernetes_pool_with_the_runbooks_command():
    args = _k8s_worker()["args"]
    pool, template = args[args.index("--pool") + 1], args[args.index("--base-job-template") + 1]
    lines = [line.strip() for line in (INFRA / "README.md").read_text().splitlines()]
    deploys = [line for line in lines if line.startswith("prefect deploy")]
    assert deploys == [f"{runbook_commands()['prefect deploy']} --pool {pool}"], "README and docs/operations.md differ"
    (create,) = [shlex.split(line) for line in lines if line.startswith("prefect work-pool create")]
    assert create[3] == pool and create[create.index("--type") + 1] == "kubernetes"
    path = create[create.index("--base-job-template") + 1]
    assert (INFRA.parent / path).is_file() and Path(path).name == Path(template).name


def test_the_dockerfile_runs_vad_as_a_non_root_user_from_a_slim_runtime_stage():
    text = (INFRA / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+) AS (\w+)", text, re.M)
    assert [s for _, s in stages] == ["build", "runtime"] and all(base == "${BASE}" for base, _ in stages)
    assert re.search(r"^ARG BASE=debian:bookworm-slim$", text, re.M) and "ARG VARIANT=cpu" in text
    runtime = text.split("AS runtime", 1)[1]
    assert "USER vad" in runtime and '"vad"]' in runtime.split("ENTRYPOINT", 1)[1].splitlines()[0]
    assert "python3-dev" not in runtime and "COPY --from=build /opt/vad /opt/vad" in runtime
    assert os.path.exists(INFRA / "image-test.sh")
