"""scan: the nightly job. Discover -> extract what is new -> score -> report, in one flow run on Dask.

Incremental at every stage: features are current when the video's fingerprint and extractor id match, scores
when the features' fingerprint and the checkpoint hash match, reports when their scores did not change. A scan of
an unchanged archive starts no Dask cluster and says so.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from prefect import flow, get_run_logger

from tasks.jobs.plan import plan_scan
from tasks.jobs.report import write_index
from tasks.jobs.score import ScoreJob
from tasks.models.inputs import InputSource
from tasks.models.repository import locate_model
from tasks.store.archive import VideoEntry
from tasks.store.manifest import SKIPPED, VideoOutcome, new_run_id, write_summary

from .pipeline import RunRecord, run_extraction, score_and_report
from .progress import say
from .runner import dask_runner
from .settings import Settings, load_settings


def scan_videos(
    settings: Settings,
    model_url: str,
    entries: list[VideoEntry],
    flow_name: str = "scan",
    index: bool = True,
    skipped: dict[str, str] | None = None,
) -> dict:
    """Extract what is new among `entries`, score it, report it, rebuild the index; write the run manifest
    (`skipped`: files discovery left out, with why, recorded as skipped rows)."""
    logger = get_run_logger()
    model_store, card = locate_model(model_url, settings.storage.options)
    settings = settings.for_card(card)
    out = settings.store
    job = ScoreJob(card, model_store, InputSource.for_card(out, card), out, settings.schedule.force)
    run = RunRecord(out, flow_name, {"model_id": card.model_id, "archive": settings.storage.archive,
                                     "extractor_id": card.extractor_id, "videos": len(entries)})  # fmt: skip
    run.outcomes += [VideoOutcome(name, SKIPPED, "discover", error=why) for name, why in (skipped or {}).items()]
    with run.guard():
        plan = plan_scan(job, settings.extract_job, entries)
        run.plan(plan)
        if plan.empty:
            say(f"nothing new: {len(entries)} videos, all features, scores and reports are current")
        else:
            logger.info("scan plan: %s", plan.work)
            with dask_runner(settings.cluster) as runner, run.guard():
                extracted = run_extraction(runner, plan, settings)
                run.outcomes += extracted
                run.outcomes += score_and_report(runner, job, plan, settings, extracted)
    return run.finish(index_model=card.model_id if index else None, work=plan.work)


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
        settings = settings.replace(storage_options=load_settings(config_file).storage.options)
    entries, skipped = settings.archive.listing(include=dated_globs(settings.schedule.include))
    return scan_videos(settings, model_url, entries, skipped=skipped)


@flow(name="backfill-chunk")
def backfill_chunk(settings: Settings, model_url: str, entries: list[VideoEntry]) -> dict:
    return scan_videos(settings, model_url, entries, "backfill-chunk", index=False)


@flow(name="backfill")
def backfill(settings: Settings, model_url: str, chunk: int = 200) -> dict:
    """A scan over a large archive in chunks of videos, each its own flow run with its own manifest, so a long
    backfill shows progress and a crash loses at most one chunk (everything done stays current)."""
    entries = settings.archive.videos(include=dated_globs(settings.schedule.include))
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
    _, card = locate_model(model_url, settings.storage.options)
    index = write_index(settings.store, card.model_id)  # once, not per chunk: it reads every report
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
    return summary
