"""The nightly job as a Prefect deployment: the scan flow on a cron schedule, served by this process.

Schedules need a real Prefect server (`prefect server start`; PREFECT_API_URL pointing at it): the ephemeral API
does not run the scheduler. Storage options are not part of the deployment's parameters; each run reads them
again from the serving process's environment (VAD_STORAGE_OPTIONS) or the config file (only its path is stored).
"""

from __future__ import annotations

from prefect.deployments.runner import RunnerDeployment

from .scan_flow import scan
from .settings import Settings


def nightly_deployment(
    settings: Settings,
    model_url: str,
    cron: str = "0 2 * * *",
    name: str = "nightly-scan",
    timezone: str = "UTC",
    config_file: str | None = None,
) -> RunnerDeployment:
    from prefect.client.schemas.schedules import CronSchedule

    return scan.to_deployment(
        name=name,
        schedule=CronSchedule(cron=cron, timezone=timezone),
        parameters={"settings": settings.model_dump(mode="json"), "model_url": model_url, "config_file": config_file},
        description="vad nightly scan: extract what is new, score, report",
        tags=["vad", "nightly"],
    )
