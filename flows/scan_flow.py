"""scan: the nightly job. Discover -> extract what is new -> score -> report, in one flow run on Dask.

Incremental at every stage: features are current when the video's fingerprint and extractor id match, scores
when the features' fingerprint and the checkpoint hash match, reports when their scores did not change. A scan of
an unchanged archive starts no Dask cluster and says so.
"""
from __future__ import annotations

from prefect import flow, get_run_logger

from tasks.discover import discover_videos
from tasks.manifest import DONE, FAILED, QUARANTINED, SKIPPED, VideoOutcome, new_run_id, write_manifest
from tasks.model_store import read_model_config
from tasks.reports import write_index
from tasks.storage import join

from .extract_flow import plan_extraction, submit_extraction
from .progress import say, wait_with_progress
from .runner import dask_runner
from .score_flow import check_inputs, plan_scoring, reports_needed, run_reports, run_scoring
from .settings import Settings

PRECEDENCE = {FAILED: 4, QUARANTINED: 3, DONE: 2, SKIPPED: 1}


def merge_outcomes(outcomes: list[VideoOutcome]) -> list[VideoOutcome]:
    """One row per video: a failure anywhere wins, then work done, then skipped."""
    merged: dict[str, VideoOutcome] = {}
    for o in outcomes:
        prev = merged.get(o.video_id)
        if prev is None or PRECEDENCE[o.status] > PRECEDENCE[prev.status]:
            merged[o.video_id] = o
        if prev is not None:
            merged[o.video_id].seconds = round(prev.seconds + o.seconds, 3)
    return sorted(merged.values(), key=lambda o: o.video_id)


@flow(name="scan")
def scan(settings: Settings, model_url: str) -> dict:
    logger = get_run_logger()
    config = read_model_config(model_url, settings.storage_options)
    settings = settings.for_model(config)
    if settings.extractor.extractor_id != config["extractor_id"]:
        raise ValueError(f"cannot rebuild extractor {config['extractor_id']} from the model's config "
                         f"(got {settings.extractor.extractor_id})")
    features_root = join(settings.out, "features", config["extractor_id"])
    run_id = new_run_id("scan")
    entries = discover_videos(settings.archive, settings.storage_options)
    to_extract, outcomes = plan_extraction(entries, settings)
    present = [e.video_id for e in entries if e not in to_extract and
               not any(o.video_id == e.video_id and o.status == QUARANTINED for o in outcomes)]
    to_score, score_skips = plan_scoring(config, features_root, present, settings)
    to_report = reports_needed(config["model_id"], [], [v for v in present if v not in to_score], settings)
    outcomes += score_skips
    work = {"extract": len(to_extract), "score": len(to_score), "report": len(to_report)}
    if not any(work.values()):
        say(f"nothing new: {len(entries)} videos, all features, scores and reports are current")
    else:
        logger.info("scan plan: %s", work)
        with dask_runner(settings.dask_address, settings.workers, settings.gpu_tasks) as runner:
            extracted = wait_with_progress(submit_extraction(runner, to_extract, settings), "extracting") \
                if to_extract else []
            outcomes += extracted
            new = [o.video_id for o in extracted if o.status == DONE]
            if to_score or new:
                check_inputs(config, features_root, (to_score + new)[:1], settings.storage_options)
                scored = run_scoring(runner, config, model_url, features_root, sorted(to_score + new), settings)
                outcomes += scored
                to_report = sorted(set(to_report) | {o.video_id for o in scored if o.status == DONE})
            outcomes += run_reports(runner, config["model_id"], to_report, settings)
    index = write_index(settings.out, config["model_id"], settings.storage_options)
    summary = write_manifest(settings.out, run_id, merge_outcomes(outcomes),
                             {"flow": "scan", "model_id": config["model_id"], "archive": settings.archive,
                              "extractor_id": config["extractor_id"], "work": work, "index": index},
                             settings.storage_options)
    return summary
