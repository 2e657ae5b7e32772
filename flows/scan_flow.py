"""scan: the nightly job. Discover -> extract what is new -> score -> report, in one flow run on Dask.

Incremental at every stage: features are current when the video's fingerprint and extractor id match, scores
when the features' fingerprint and the checkpoint hash match, reports when their scores did not change. A scan of
an unchanged archive starts no Dask cluster and says so.
"""

from __future__ import annotations

from datetime import date, datetime
from datetime import timezone as dt_timezone

from prefect import flow, get_run_logger

from tasks.jobs.plan import plan_scan
from tasks.models.repository import locate_model
from tasks.store.archive import VideoEntry
from tasks.store.manifest import new_run_id, write_summary

from .pipeline import outcome, run_extraction, score_and_report
from .progress import say
from .runner import SharedCluster
from .scan_plan import ScanJob, dated_globs
from .settings import Settings, load_settings


def scan_videos(
    settings: Settings,
    model_url: str,
    entries: list[VideoEntry],
    flow_name: str = "scan",
    index: bool = True,
    skipped: dict[str, str] | None = None,
    cluster: SharedCluster | None = None,
) -> dict:
    """Extract what is new among `entries`, score it, report it, rebuild the index; write the run manifest
    (`skipped`: files discovery left out, with why, recorded as skipped rows). `cluster`: one shared by several
    runs (a backfill's chunks); by default a cluster is started for this run when it has work."""
    logger = get_run_logger()
    scan = ScanJob.load(settings, model_url)
    settings, card, job = scan.settings, scan.card, scan.score
    run = scan.record(flow_name, entries, skipped)
    with run.guard():
        plan = plan_scan(job, settings.extract_job, entries)
        run.plan(plan, index_model=card.model_id if index else None)
        if plan.empty:
            say(f"nothing new: {len(entries)} videos, all features, scores and reports are current")
        else:
            logger.info("scan plan: %s", plan.work)
            with (cluster or SharedCluster(settings.cluster)).runner() as runner, run.guard():
                extracted = run_extraction(runner, plan, settings)
                run.outcomes += extracted
                run.outcomes += score_and_report(runner, job, plan, settings, extracted)
                # the manifest before the cluster closes
                return run.finish(index_model=card.model_id if index else None, work=plan.work)
    return run.finish(index_model=card.model_id if index else None, work=plan.work)


def run_date(timezone: str = "UTC") -> date:
    """The day a run is for: its scheduled start in the schedule's timezone (a late, retried or caught-up run of a
    night still scans that night), else now."""
    from zoneinfo import ZoneInfo

    from prefect.runtime import flow_run

    scheduled = flow_run.scheduled_start_time if flow_run.id else None
    moment = scheduled if scheduled is not None else datetime.now(dt_timezone.utc)
    return moment.astimezone(ZoneInfo(timezone)).date()


@flow(name="scan")
def scan(settings: Settings, model_url: str, config_file: str | None = None, timezone: str = "UTC") -> dict:
    """The nightly job over the whole archive (or the --include globs, with {today}/{yesterday} expanded for the
    run's scheduled day in `timezone`). `config_file` (scheduled runs): storage options are re-read from it and the
    environment at run time, since they are never stored with the deployment."""
    if config_file:
        settings = settings.replace(storage_options=load_settings(config_file).storage.options)
    include = dated_globs(settings.schedule.include, run_date(timezone))
    entries, skipped = settings.archive.listing(include=include)
    return outcome(scan_videos(settings, model_url, entries, skipped=skipped))


@flow(name="backfill")
def backfill(settings: Settings, model_url: str, chunk: int = 200) -> dict:
    """A scan over a large archive in chunks of videos, each its own run with its own manifest, so a long
    backfill shows progress and a crash loses at most one chunk (everything done stays current). All chunks share
    one Dask cluster, started when the first chunk has work."""
    entries = settings.archive.videos(include=dated_globs(settings.schedule.include))
    parts = [entries[i : i + chunk] for i in range(0, len(entries), chunk)]
    summaries = []
    with SharedCluster(settings.cluster) as cluster:
        for n, part in enumerate(parts, 1):
            say(f"backfill chunk {n}/{len(parts)}: {len(part)} videos")
            summaries.append(scan_videos(settings, model_url, part, "backfill-chunk", cluster=cluster))
    counts: dict[str, int] = {}
    for s in summaries:
        for k, v in s["counts"].items():
            counts[k] = counts.get(k, 0) + v
    run_id = new_run_id("backfill")
    _, card = locate_model(model_url, settings.storage.options)
    index = settings.store.index(card.model_id)  # each chunk added its reports to it
    summary = {
        "run_id": run_id,
        "flow": "backfill",
        "videos": len(entries),
        "chunks": [s["run_id"] for s in summaries],
        "counts": counts,
        "failed": {k: v for s in summaries for k, v in s["failed"].items()},
        "quarantined": {k: v for s in summaries for k, v in s["quarantined"].items()},
        "index": index,
    }
    write_summary(settings.store, run_id, summary)
    return outcome(summary)
