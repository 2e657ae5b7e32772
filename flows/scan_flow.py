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

from .dead_runs import ensure_dead_run_automation
from .pipeline import outcome, run_extraction, score_and_report
from .progress import say, survive_lost_output
from .runner import SharedCluster
from .scan_plan import ScanJob, dated_globs
from .settings import Settings


def scan_videos(
    settings: Settings,
    model_url: str,
    entries: list[VideoEntry] | None = None,
    flow_name: str = "scan",
    index: bool = True,
    skipped: dict[str, str] | None = None,
    cluster: SharedCluster | None = None,
    include: tuple[str, ...] = (),
) -> dict:
    """Extract what is new among `entries` (default: the archive's videos matching `include`, listed once the
    run is recorded, so an archive that cannot be listed still leaves a summary), score it, report it, rebuild the
    index; write the run manifest (`skipped`: files discovery left out, with why, recorded as skipped rows).
    `cluster`: one shared by several runs (a backfill's chunks); by default a cluster is started for this run when
    it has work."""
    logger = get_run_logger()
    scan = ScanJob.load(settings, model_url)
    settings, card, job = scan.settings, scan.card, scan.score
    run = scan.record(flow_name, entries or [], skipped)
    logger.info("vad run %s started: %s", run.run_id, settings.store.run_file(run.run_id, "summary.json"))
    index_model = card.model_id if index else None
    with run.guard():
        if entries is None:
            entries, skipped = settings.archive.listing(include=include)
            scan.discovered(run, entries, skipped)
        plan = plan_scan(job, settings.extract_job, entries)
        run.plan(plan, index_model=index_model)
        if plan.empty:
            say(f"nothing new: {len(entries)} videos, all features, scores and reports are current")
        else:
            logger.info("scan plan: %s", plan.work)
            with (cluster or SharedCluster(settings.cluster)).runner() as runner, run.guard():
                extracted = run_extraction(runner, plan, settings)
                run.outcomes += extracted
                run.outcomes += score_and_report(runner, job, plan, settings, extracted)
                # the manifest before the cluster closes
                return run.finish(index_model=index_model, work=plan.work)
    return run.finish(index_model=index_model, work=plan.work)


def run_date(timezone: str = "UTC") -> date:
    """The day a run is for: its scheduled start in the schedule's timezone (a late, retried or caught-up run of a
    night still scans that night), else now."""
    from zoneinfo import ZoneInfo

    from prefect.runtime import flow_run

    scheduled = flow_run.scheduled_start_time if flow_run.id else None
    moment = scheduled if scheduled is not None else datetime.now(dt_timezone.utc)
    return moment.astimezone(ZoneInfo(timezone)).date()


SCAN_TIMEOUT_S = 20 * 3600  # a night's scan unfinished after 20 h is stopped before the next night's is due


def deployed_run_setup() -> None:
    """What a run on a Prefect worker needs before its work: output that survives its worker (whose pipes break
    when it dies), and the server's automation that marks runs Crashed when their process dies."""
    from prefect.runtime import deployment

    survive_lost_output()
    if deployment.id:
        ensure_dead_run_automation()


@flow(name="scan", timeout_seconds=SCAN_TIMEOUT_S)
def scan(settings: Settings, model_url: str, config_file: str | None = None, timezone: str = "UTC") -> dict:
    """The nightly job over the whole archive (or the --include globs, with {today}/{yesterday} expanded for the
    run's scheduled day in `timezone`). `config_file` (scheduled runs): storage options are re-read from it and the
    environment at run time, since they are never stored with the deployment."""
    deployed_run_setup()
    settings = settings.at_runtime(config_file)
    include = dated_globs(settings.schedule.include, run_date(timezone))
    return outcome(scan_videos(settings, model_url, include=include))


@flow(name="backfill")
def backfill(settings: Settings, model_url: str, chunk: int = 200, config_file: str | None = None) -> dict:
    """A scan over a large archive in chunks of videos, each its own run with its own manifest, so a long
    backfill shows progress and a crash loses at most one chunk (everything done stays current). All chunks share
    one Dask cluster, started when the first chunk has work. Storage options: as for `scan`."""
    deployed_run_setup()
    settings = settings.at_runtime(config_file)
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
