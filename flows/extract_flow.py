"""extract_features: archive -> per-clip action features (and objects) in Parquet, one Dask task per video."""

from __future__ import annotations

from prefect import flow, get_run_logger

from tasks.jobs.plan import plan_extraction

from .pipeline import outcome, run_extraction
from .run_record import RunRecord
from .runner import dask_runner
from .settings import Settings


@flow(name="extract-features")
def extract_features(settings: Settings) -> dict:
    settings = settings.at_runtime()
    logger = get_run_logger()
    spec, store = settings.extractor.spec, settings.store
    if spec.is_random:
        logger.warning(
            "backbone %s is RANDOM-INITIALISED (seed %d): features are not pretrained", spec.backbone, spec.seed
        )
    info = {"extractor_id": spec.extractor_id, "archive": settings.storage.archive}
    run = RunRecord(store, "extract", info, settings.cluster, settings.schedule.webhook_url, last_stage="extract")
    with run.guard():
        entries = settings.archive.videos(include=tuple(settings.schedule.include))
        plan = plan_extraction(store, entries, settings.extract_job)
        run.plan(plan)
        logger.info("%d videos found: %d to extract, %d current", len(entries), len(plan.extract), len(plan.outcomes))
        if plan.extract:
            with dask_runner(settings.cluster) as runner, run.guard():
                run.outcomes += run_extraction(runner, plan, settings)
                return outcome(run.finish())  # the manifest before the cluster closes
    return outcome(run.finish())
