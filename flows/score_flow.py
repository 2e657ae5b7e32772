"""score_features: clip scores for every video under a features folder, one Dask task per batch of videos,
then a report per scored video and the run index."""

from __future__ import annotations

from prefect import flow, get_run_logger

from tasks.jobs.plan import plan_score
from tasks.jobs.score import ScoreJob
from tasks.models.inputs import InputSource
from tasks.models.repository import locate_model
from tasks.store.output import OutputStore

from .pipeline import outcome, score_and_report
from .run_record import RunRecord
from .runner import dask_runner
from .settings import Settings


@flow(name="score-features")
def score_features(settings: Settings, features_url: str, model_url: str) -> dict:
    settings = settings.at_runtime()
    logger = get_run_logger()
    features_store, extractor_id = OutputStore.locate(features_url, "features", settings.storage.options)
    model_store, card = locate_model(model_url, settings.storage.options)
    job = ScoreJob(
        card,
        model_store,
        InputSource(features_store, card.model, extractor_id, card.detector_id, card.max_objects),
        settings.store,
        settings.schedule.force,
        settings.model.threshold,
        settings.reports.options,
    )
    run = RunRecord(
        settings.store,
        "score",
        {"model_id": card.model_id, "features": features_url},
        settings.cluster,
        settings.schedule.webhook_url,
    )
    with run.guard():
        plan = plan_score(job)
        run.plan(plan, index_model=card.model_id)
        logger.info("score plan: %s", plan.work)
        if not plan.empty:
            with dask_runner(settings.cluster) as runner, run.guard():
                run.outcomes += score_and_report(runner, job, plan, settings)
                return outcome(run.finish(index_model=card.model_id))  # the manifest before the cluster closes
    return outcome(run.finish(index_model=card.model_id))
