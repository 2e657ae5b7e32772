"""`vad doctor`: before the night, check that a production setup will work; one line per check.

Each check is a small function that returns a `Result`: (True, line) passes, (False, line) fails, (None, line) is
information or a warning that never fails the exit code (a run holding the output's lease, a deployment that
nothing polls right now). The command exits 0 when no check failed, 1 otherwise.

Every check runs in a daemon thread with a time limit (`--timeout`, 10 s), so an endpoint that never answers is a
failed line, never a hung doctor. Settings come from `--config` / VAD_CONFIG_FILE and the VAD_* environment, like a
run's; when the Prefect deployment answers, the checks use the settings its scheduled runs will see (the
deployment's `settings` parameter over the local ones, as `Settings.at_runtime` does) and its `model_url` unless
`--model` is given (without either: VAD_MODEL_URL, the runbook's variable for the deploy command). Storage
options are never printed: any of their values in an error message is masked.

Prefect and Dask are imported only by the checks that talk to them; torch is never imported.
"""

from __future__ import annotations

import contextvars
import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Optional, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from anomaly_models.errors import VadError

from .dead_runs import DEAD_RUN_AUTOMATION

if TYPE_CHECKING:
    from tasks.store.output import OutputStore

    from .settings import ClusterSettings, Settings

Result = tuple[Optional[bool], str]  # (True pass | False fail | None information, one line)
T = TypeVar("T")

DEFAULT_DEPLOYMENT = "scan/nightly-scan"
DEFAULT_TIMEOUT_S = 10.0
# storage option keys whose values are no secret (an endpoint in an error message helps the operator)
PUBLIC_OPTIONS = {"endpoint_url", "region_name", "region", "anon", "use_ssl"}
MARKS = {True: "[green]✓[/green]", False: "[red]✗[/red]", None: "[yellow]![/yellow]"}

console = Console()


def _secrets(options: Any, key: str = "") -> Iterator[str]:
    if isinstance(options, Mapping):
        for k, v in options.items():
            yield from _secrets(v, str(k))
    elif isinstance(options, (list, tuple)):
        for v in options:
            yield from _secrets(v, key)
    elif isinstance(options, str) and key not in PUBLIC_OPTIONS and len(options) >= 4:
        yield options


def redact(text: str, options: Mapping[str, Any] | None) -> str:
    """`text` with every (non-public) storage option value masked."""
    for secret in sorted(set(_secrets(options or {})), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if isinstance(exc, (VadError, TimeoutError)):  # the project's errors already say what failed
        return text or exc.__class__.__name__
    return f"{exc.__class__.__name__}: {text}"[:400] if text else exc.__class__.__name__


def call(timeout_s: float, fn: Callable[[], T]) -> T:
    """fn() in a daemon thread (with this context: Prefect's settings live in context variables); its exception is
    raised here, and no answer within `timeout_s` is a TimeoutError."""
    box: list[Any] = []

    def run() -> None:
        try:
            box.append((True, fn()))
        except BaseException as exc:  # handed to the caller
            box.append((False, exc))

    context = contextvars.copy_context()
    thread = threading.Thread(target=context.run, args=(run,), name="vad-doctor", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if not box:
        raise TimeoutError(f"no answer within {timeout_s:g} s (--timeout raises the limit)")
    done, value = box[0]
    if not done:
        raise value
    return value


def within(timeout_s: float, name: str, check: Callable[[], Result]) -> Result:
    """A check with a time limit; any exception (a timeout too) is a failure of one line naming the check."""
    try:
        return call(timeout_s, check)
    except BaseException as exc:  # a doctor reports, it never crashes
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        message = one_line(exc)
        return False, message if message.startswith(f"{name}:") else f"{name}: {message}"


# ---- the checks


def check_settings(config: str | None) -> tuple[Settings | None, Result]:
    from .settings import load_settings

    source = config or os.environ.get("VAD_CONFIG_FILE")
    where = f"{source} + VAD_* environment" if source else "VAD_* environment and defaults (no --config)"
    try:
        return load_settings(config), (True, f"settings: {where}")
    except VadError as exc:
        return None, (False, f"settings: {one_line(exc)}")


def prefect_api_url() -> str | None:
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value() or None


def check_prefect_api() -> Result:
    from .api_server import _healthy

    url = prefect_api_url()
    if not url:
        return False, (
            "prefect: PREFECT_API_URL is not set: schedules need a Prefect server (`prefect server start`); "
            "the temporary API of CLI runs does not run the scheduler"
        )
    if not _healthy(url):
        return False, f"prefect: the API at {url} does not answer /health"
    return True, f"prefect: the API at {url} answers"


def read_deployment(name: str) -> tuple[Any, Any]:
    """(the deployment `flow/name`, its work pool), None for what the server does not have."""
    from prefect import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            deployment = client.read_deployment_by_name(name)
        except ObjectNotFound:
            return None, None
        if not deployment.work_pool_name:  # `vad serve` runs it in its own process
            return deployment, None
        try:
            return deployment, client.read_work_pool(deployment.work_pool_name)
        except ObjectNotFound:
            return deployment, None


def check_deployment(deployment: Any, name: str, pool: Any = None) -> Result:
    """Not paused, at least one active schedule, a `model_url` parameter; its work pool (if any) there and not
    paused."""
    problems = []
    if deployment.paused:
        problems.append("it is paused")
    if deployment.work_pool_name and pool is None:
        problems.append(f"its work pool {deployment.work_pool_name!r} does not exist")
    elif pool is not None and pool.is_paused:
        problems.append(f"its work pool {pool.name!r} is paused")
    active = [s for s in deployment.schedules if s.active]
    if not deployment.schedules:
        problems.append("it has no schedule")
    elif not active:
        problems.append("its schedules are inactive")
    model_url = (deployment.parameters or {}).get("model_url")
    if not model_url:
        problems.append("it has no model_url parameter")
    if problems:
        return False, f"deployment {name}: {'; '.join(problems)}"
    when = ", ".join(_describe_schedule(s.schedule) for s in active)
    return True, f"deployment {name}: scheduled {when}; model {model_url}"


def _describe_schedule(schedule: Any) -> str:
    if getattr(schedule, "cron", None):
        return f"'{schedule.cron}' ({schedule.timezone or 'UTC'})"
    if getattr(schedule, "interval", None):
        return f"every {schedule.interval}"
    return str(getattr(schedule, "rrule", schedule))


def check_served(deployment: Any, name: str) -> Result:
    """Information: whether a `vad serve` or a Prefect worker polls the deployment now (Prefect's READY status)."""
    status = str(getattr(deployment.status, "value", deployment.status) or "unknown")
    if status == "READY":
        return True, f"deployment {name}: served (a `vad serve` or a worker polls it)"
    return None, (
        f"deployment {name}: {status}: no `vad serve` or Prefect worker polls it now; "
        "scheduled runs wait until one does"
    )


def check_automation(name: str = DEAD_RUN_AUTOMATION) -> Result:
    """The server's automation that marks runs whose process died Crashed (flows/dead_runs.py). The first deployed
    run creates it, so before the first night its absence is a warning; a disabled one is a failure (runs never
    re-enable it)."""
    from prefect import get_client

    with get_client(sync_client=True) as client:
        found = client.read_automations_by_name(name)
    if not found:
        return None, f"automation '{name}': not on the Prefect server yet (the first deployed run creates it)"
    if not any(a.enabled for a in found):
        return False, f"automation '{name}': disabled: runs whose process died would stay Running"
    return True, f"automation '{name}': enabled"


def check_archive(settings: Settings) -> Result:
    if not settings.storage.archive:
        return False, "archive: no archive configured: set storage.archive in the config file or VAD_ARCHIVE"
    archive = settings.archive
    videos, skipped = archive.listing()
    note = f" ({len(skipped)} files left out: names that are no safe id)" if skipped else ""
    return True, f"archive {archive.root}: {len(videos)} video{'' if len(videos) == 1 else 's'}{note}"


def check_output(store: OutputStore) -> Result:
    store.probe_writable()
    return True, f"output {store.root}: writable (a probe written, read back and deleted)"


def check_model(settings: Settings, model_url: str | None) -> Result:
    """The card loads, its checkpoint is there and matches the card's hash, and a scan can rebuild its extractor."""
    from tasks.models.repository import CHECKPOINT, locate_model

    if not model_url:
        return False, "model: no model URL: pass --model or set VAD_MODEL_URL (the deployment's model_url parameter)"
    store, card = locate_model(model_url, settings.storage.options)
    try:
        data = store.read_bytes(store.model_file(card.model_id, CHECKPOINT))
    except FileNotFoundError:
        return False, f"model {card.model_id}: no {CHECKPOINT} in {store.model_dir(card.model_id)}"
    if card.checkpoint_sha256 and hashlib.sha256(data).hexdigest() != card.checkpoint_sha256:
        return False, f"model {card.model_id}: {CHECKPOINT} does not match its card (sha256 differs)"
    settings.for_card(card)  # a scan extracts what the model was trained on: a card it cannot rebuild from fails
    return True, f"model {card.model_id}: {card.model}, extractor {card.extractor_id}"


def check_dask(cluster: ClusterSettings, timeout_s: float) -> Result:
    if not cluster.dask_address:
        gpu = ", workers offer GPU" if cluster.gpu_tasks else ""
        return True, f"dask: LocalCluster (embedded): {cluster.workers} worker process(es) started per run{gpu}"
    from distributed import Client

    address = cluster.dask_address
    with Client(address, timeout=max(1.0, timeout_s - 1), set_as_default=False) as client:
        workers = client.scheduler_info().get("workers", {}).values()
        gpu = [w for w in workers if w.get("resources", {}).get("GPU", 0) >= 1]
    if not workers:
        return False, f"dask {address}: the scheduler answers but no worker is connected: tasks would wait"
    if cluster.gpu_tasks and not gpu:
        return False, (
            f"dask {address}: {len(workers)} workers, none offers the GPU resource (gpu_tasks is on): "
            "start one with `dask worker ... --resources GPU=1`"
        )
    with_gpu = f", {len(gpu)} with GPU" if cluster.gpu_tasks else ""
    return True, f"dask {address}: {len(workers)} worker{'' if len(workers) == 1 else 's'}{with_gpu}"


def check_lease(store: OutputStore) -> Result:
    """Information only: a run holding the output now (its scheduled run would wait or be refused), or a stale lease
    of a run that died (the next run takes it over)."""
    try:
        lease = store.read_json(store.lease_file())
    except FileNotFoundError:
        return True, "lease: free (no run holds the output)"
    except ValueError:
        return None, "lease: runs/lease.json is not readable JSON (the next run overwrites it)"
    flow_run = f", flow run {lease['flow_run_id']}" if lease.get("flow_run_id") else ""
    holder = f"run {lease.get('run_id')} (host {lease.get('host')}, pid {lease.get('pid')}{flow_run})"
    if float(lease.get("expires", 0)) > time.time():
        return None, f"lease: held by {holder} until {lease.get('expires_at')} unless renewed: a run is in progress"
    return None, f"lease: {holder} expired at {lease.get('expires_at')}: it died; the next run takes the lease over"


# ---- the command


def run_checks(config: str | None, model: str | None, deployment_name: str, timeout_s: float) -> Iterator[Result]:
    """Every check in order, each result as soon as it is known."""
    settings, result = check_settings(config)
    yield result
    options = settings.storage.options if settings else {}

    def timed(name: str, check: Callable[[], Result]) -> Result:
        ok, line = within(timeout_s, name, check)
        return ok, redact(line, options)

    deployment = None
    api = timed("prefect", check_prefect_api)
    yield api
    if api[0]:
        try:
            deployment, pool = call(timeout_s, lambda: read_deployment(deployment_name))
        except Exception as exc:
            yield False, redact(f"deployment {deployment_name}: {one_line(exc)}", options)
        else:
            if deployment is None:
                missing = (
                    f"deployment {deployment_name}: not on the Prefect server (`prefect deploy` with prefect.yaml "
                    "makes scan/nightly-scan; `vad serve` makes scan/served-scan: pass --deployment)"
                )
                yield False, missing
            else:
                yield check_deployment(deployment, deployment_name, pool)
                yield check_served(deployment, deployment_name)
        yield timed("automation", check_automation)
    else:
        yield None, "deployment, automation: not checked (no Prefect API)"
    params = dict(deployment.parameters or {}) if deployment is not None else {}
    if settings is not None and params.get("settings"):
        settings, result = _deployment_settings(params, config)
        yield result[0], redact(result[1], options)
        options = settings.storage.options if settings else options  # what `timed` masks from here on
    if settings is None:
        yield None, "archive, output, model, dask, lease: not checked (no settings)"
        return
    store = settings.store
    yield timed("archive", lambda: check_archive(settings))
    yield timed("output", lambda: check_output(store))
    model_url = model or params.get("model_url") or os.environ.get("VAD_MODEL_URL")
    yield timed("model", lambda: check_model(settings, model_url))
    yield timed("dask", lambda: check_dask(settings.cluster, timeout_s))
    ok, line = timed("lease", lambda: check_lease(store))
    yield (None if ok is False else ok), line  # information: it never fails the exit code


def _deployment_settings(params: dict[str, Any], config: str | None) -> tuple[Settings | None, Result]:
    """The settings the deployment's scheduled runs will see: its `settings` parameter over this machine's config
    and environment (storage options from here, never from the deployment)."""
    from pydantic import ValidationError

    from .settings import Settings

    config_file = config or params.get("config_file")
    try:
        settings = Settings.model_validate(params["settings"]).at_runtime(config_file)
    except (ValidationError, VadError) as exc:
        return None, (False, f"settings: the deployment's settings parameter: {one_line(exc)}")
    where = f"config {config_file}" if config_file else "the VAD_* environment"
    return settings, (True, f"settings: the deployment's settings parameter over {where} (as its runs see them)")


ConfigOpt = typer.Option(None, "--config", help="YAML settings file (else VAD_CONFIG_FILE; VAD_* env apply)")


def doctor(
    config: Optional[str] = ConfigOpt,
    model: Optional[str] = typer.Option(
        None,
        "--model",
        help="model folder <out>/models/<model_id> (default: the deployment's model_url, else $VAD_MODEL_URL)",
    ),
    deployment: str = typer.Option(DEFAULT_DEPLOYMENT, "--deployment", help="the Prefect deployment, flow/name"),
    timeout: float = typer.Option(DEFAULT_TIMEOUT_S, "--timeout", min=1, help="seconds each check may take"),
) -> None:
    """Check that a production setup will work tonight: settings, Prefect server, deployment and schedule, the
    dead-run automation, archive listing, output write, model card, Dask cluster (and GPU workers), the output's
    lease. One line per check; exit 0 when all pass, 1 when any fails."""
    failed = 0
    for ok, line in run_checks(config, model, deployment, timeout):
        failed += ok is False
        console.print(f"{MARKS[ok]} {escape(line)}", soft_wrap=True, highlight=False)
    if failed:
        console.print(f"[red]{failed} check(s) failed[/red]", highlight=False)
        raise typer.Exit(1)
    console.print("[green]all checks passed[/green]", highlight=False)
