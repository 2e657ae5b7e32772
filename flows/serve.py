"""The nightly job as a Prefect deployment: the scan flow on a cron schedule.

Schedules need a real Prefect server (`prefect server start`; PREFECT_API_URL pointing at it): the ephemeral API
does not run the scheduler. The deployment names its flow by module path (`flows.scan_flow:scan`), so every
process that runs it (this one with `vad serve`, a Prefect worker, Dask workers) imports the installed package,
never a loose file. At most one run of it at a time: further runs wait (`enqueue`, the default) or are cancelled
(`cancel-new`). Storage options are not part of the deployment's parameters; each run reads them again from the
serving process's environment (VAD_STORAGE_OPTIONS) or the config file (only its path is stored).
"""

from __future__ import annotations

from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.deployments.runner import EntrypointType, RunnerDeployment

from anomaly_models.errors import UsageError

from .scan_flow import scan
from .settings import Settings

COLLISIONS = {"enqueue": ConcurrencyLimitStrategy.ENQUEUE, "cancel-new": ConcurrencyLimitStrategy.CANCEL_NEW}


def nightly_deployment(
    settings: Settings,
    model_url: str,
    cron: str = "0 2 * * *",
    name: str = "served-scan",
    timezone: str = "UTC",
    config_file: str | None = None,
    collision: str = "enqueue",
    retries: int = 0,
    retry_delay_s: int = 600,
    timeout_s: float | None = None,
) -> RunnerDeployment:
    from prefect.client.schemas.schedules import CronSchedule

    flow = scan.with_options(retries=retries, retry_delay_seconds=retry_delay_s, timeout_seconds=timeout_s)
    return flow.to_deployment(
        name=name,
        schedule=CronSchedule(cron=cron, timezone=timezone),
        parameters={
            "settings": settings.model_dump(mode="json"),
            "model_url": model_url,
            "config_file": config_file,
            "timezone": timezone,
        },  # fmt: skip
        description="vad nightly scan: extract what is new, score, report",
        tags=["vad", "nightly"],
        concurrency_limit=ConcurrencyLimitConfig(limit=1, collision_strategy=COLLISIONS[collision]),
        entrypoint_type=EntrypointType.MODULE_PATH,
    )


def refuse_foreign_deployment(name: str) -> None:
    """`vad serve` runs its deployment in its own process and pauses its schedule when it stops. A deployment of
    that name run by a work pool (prefect.yaml's) is another operator's: serving it would replace its parameters and
    leave it paused, so that is refused, naming the pool."""
    from prefect import get_client

    with get_client(sync_client=True) as client:
        try:
            existing = client.read_deployment_by_name(f"{scan.name}/{name}")
        except Exception:  # none of that name: ours to create
            return
    if existing.work_pool_name:
        raise UsageError(
            f"--name: deployment {scan.name}/{name} exists and is run by work pool {existing.work_pool_name!r} "
            f"(prefect deploy); vad serve would replace and pause it: choose another --name"
        )
