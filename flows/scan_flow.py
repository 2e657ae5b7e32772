"""scan: the nightly job. Discover -> extract what is new -> score -> report, in one flow run on Dask.

Incremental at every stage: features are current when the video's fingerprint and extractor id match, scores
when the features' fingerprint and the checkpoint hash match, reports when their scores did not change. A scan of
an unchanged archive starts no Dask cluster and says so.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from prefect import flow, get_run_logger

from tasks.discover import VideoEntry, discover_videos
from tasks.feature_store import json_dumps
from tasks.manifest import DONE, QUARANTINED, merge_outcomes, new_run_id, write_manifest
from tasks.model_store import read_model_config
from tasks.reports import write_index
from tasks.storage import join, write_bytes_atomic

from .extract_flow import plan_extraction, submit_extraction
from .progress import say, wait_with_progress
from .runner import dask_runner
from .score_flow import check_inputs, plan_scoring, reports_needed, run_reports, run_scoring
from .settings import Settings, load_settings

def scan_videos(settings: Settings, model_url: str, entries: list[VideoEntry], flow_name: str = "scan",
                index: bool = True) -> dict:
    """Extract what is new among `entries`, score it, report it, rebuild the index; write the run manifest."""
    logger = get_run_logger()
    config = read_model_config(model_url, settings.storage_options)
    settings = settings.for_model(config)
    if settings.extractor.extractor_id != config["extractor_id"]:
        raise ValueError(f"cannot rebuild extractor {config['extractor_id']} from the model's config "
                         f"(got {settings.extractor.extractor_id})")
    features_root = join(settings.out, "features", config["extractor_id"])
    run_id = new_run_id(flow_name)
    to_extract, outcomes = plan_extraction(entries, settings)
    absent = {e.video_id for e in to_extract} | {o.video_id for o in outcomes if o.status == QUARANTINED}
    present = [e.video_id for e in entries if e.video_id not in absent]
    to_score, score_skips = plan_scoring(config, features_root, present, settings)
    scoring = set(to_score)
    to_report = reports_needed(config["model_id"], [], [v for v in present if v not in scoring], settings)
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
    index = write_index(settings.out, config["model_id"], settings.storage_options) if index else None
    return write_manifest(settings.out, run_id, merge_outcomes(outcomes),
                          {"flow": flow_name, "model_id": config["model_id"], "archive": settings.archive,
                           "extractor_id": config["extractor_id"], "work": work, "index": index,
                           "videos": len(entries)}, settings.storage_options)


def dated_globs(globs: list[str], today: date | None = None) -> tuple[str, ...]:
    """Expand {today} and {yesterday} (ISO dates) in include globs, so a scheduled scan picks last night's folders."""
    today = today or datetime.now(timezone.utc).date()
    return tuple(g.format(today=today.isoformat(), yesterday=(today - timedelta(days=1)).isoformat()) for g in globs)


@flow(name="scan")
def scan(settings: Settings, model_url: str, config_file: str | None = None) -> dict:
    """The nightly job over the whole archive (or the --include globs, with {today}/{yesterday} expanded).
    `config_file` (scheduled runs): storage options are re-read from it and the environment at run time, since
    they are never stored with the deployment."""
    if config_file:
        settings = settings.model_copy(update={"storage_options": load_settings(config_file).storage_options})
    return scan_videos(settings, model_url, discover_videos(settings.archive, settings.storage_options,
                                                            include=dated_globs(settings.include)))


@flow(name="backfill-chunk")
def backfill_chunk(settings: Settings, model_url: str, entries: list[VideoEntry]) -> dict:
    return scan_videos(settings, model_url, entries, "backfill-chunk", index=False)


@flow(name="backfill")
def backfill(settings: Settings, model_url: str, chunk: int = 200) -> dict:
    """A scan over a large archive in chunks of videos, each its own flow run with its own manifest, so a long
    backfill shows progress and a crash loses at most one chunk (everything done stays current)."""
    entries = discover_videos(settings.archive, settings.storage_options, include=dated_globs(settings.include))
    parts = [entries[i : i + chunk] for i in range(0, len(entries), chunk)]
    summaries = []
    for n, part in enumerate(parts, 1):
        say(f"backfill chunk {n}/{len(parts)}: {len(part)} videos")
        summaries.append(backfill_chunk(settings, model_url, part))
    counts: dict[str, int] = {}
    for s in summaries:
        for k, v in s["counts"].items():
            counts[k] = counts.get(k, 0) + v
    run_id = new_run_id("backfill")
    index = write_index(settings.out, read_model_config(model_url, settings.storage_options)["model_id"],
                        settings.storage_options)  # once, not per chunk: it reads every report
    summary = {"run_id": run_id, "flow": "backfill", "videos": len(entries), "chunks": [s["run_id"] for s in summaries],
               "counts": counts, "failed": {k: v for s in summaries for k, v in s["failed"].items()},
               "quarantined": {k: v for s in summaries for k, v in s["quarantined"].items()},
               "index": index}
    write_bytes_atomic(join(settings.out, "runs", run_id, "summary.json"), json_dumps(summary),
                       settings.storage_options)
    return summary
