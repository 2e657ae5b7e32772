"""The one way through a run's work, shared by extract, score, scan and backfill: submit a plan's extraction to
the Dask runner, then score and report; `outcome` turns the run's summary into its Prefect state. What a run
records (its manifest, lease and index) is `run_record.RunRecord`."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from prefect.states import Completed

from tasks.jobs.plan import Plan, check_inputs
from tasks.jobs.score import ScoreJob
from tasks.store.archive import VideoEntry
from tasks.store.manifest import FAILED, QUARANTINED, VideoOutcome

from .prefect_report import log_summary, summary_artifact
from .progress import GpuWatch, say, wait_with_progress
from .runner import submit, worker_count
from .settings import Settings
from .work import extract_videos_task, report_video_task, score_batch_task

if TYPE_CHECKING:
    from prefect_dask import DaskTaskRunner


MAX_PARTS = 64


def split_large(entries: list[VideoEntry], megabytes: int, workers: int) -> list[VideoEntry]:
    """With several workers, a file larger than `megabytes` becomes parts (`VideoEntry.part`), one task each, at
    most one per worker (and MAX_PARTS): consecutive clip ranges extracted in parallel and merged into the video's
    one Parquet by the last part to finish (`tasks.jobs.extract.merge_parts`)."""
    budget = megabytes * 2**20
    out: list[VideoEntry] = []
    for entry in entries:
        n = min(workers, MAX_PARTS, -(-entry.size // budget)) if entry.size > budget else 1
        split_id = uuid.uuid4().hex[:12]
        out += [replace(entry, part=(k, n), split_id=split_id) for k in range(n)] if n > 1 else [entry]
    return out


def task_groups(entries: list[VideoEntry], videos: int, megabytes: int, workers: int) -> list[list[VideoEntry]]:
    """Videos in archive order, packed into tasks of at most `videos` files and `megabytes` MB (a larger file
    alone; with several workers split into parts, `split_large`), and into at least `workers` tasks when there are
    that many videos, so every worker gets some: many short files cost one task's orchestration, not one each."""
    if not entries:
        return []
    entries = split_large(entries, megabytes, workers)
    per_task = max(1, min(videos, len(entries) // max(workers, 1)))
    groups: list[list[VideoEntry]] = [[]]
    size = 0
    for entry in entries:
        entry_size = entry.size // (entry.part[1] if entry.part else 1)
        alone = entry.part is not None or (groups[-1] and groups[-1][-1].part is not None)  # a part is one task
        if groups[-1] and (len(groups[-1]) >= per_task or size + entry_size > megabytes * 2**20 or alone):
            groups.append([])
            size = 0
        groups[-1].append(entry)
        size += entry_size
    return groups


def run_extraction(runner: DaskTaskRunner, plan: Plan, settings: Settings) -> list[VideoOutcome]:
    """Extraction tasks of several videos each (`task_groups`, sized by the cluster's workers now) on the Dask
    runner (GPU-annotated with --gpu-tasks); one outcome per video (and per part of a split video)."""
    gpu, e = settings.cluster.gpu_tasks, settings.extractor
    workers = worker_count(runner, settings.cluster.workers, gpu)
    groups = task_groups(plan.extract, e.task_videos, e.task_mb, workers)
    split = sorted({(x.video_id, x.part[1]) for g in groups for x in g if x.part})
    for video_id, n in split:
        say(f"{video_id}: larger than a task ({e.task_mb} MB), extracted in {n} parts by {n} tasks, then merged")
    futures = [
        submit(
            runner,
            extract_videos_task,
            gpu,
            entries=group,
            store=settings.store,
            job=settings.extract_job,
            archive=settings.archive,
            gpu_requested=gpu,
        )
        for group in groups
    ]
    lost = lambda i, why: [VideoOutcome(e.video_id, FAILED, "extract", error=why) for e in groups[i]]  # noqa: E731
    done = wait_with_progress(futures, "extracting", [len(g) for g in groups], gpu_watch(runner, settings), lost)
    return [o for outcomes in done for o in outcomes]


def score_and_report(
    runner: DaskTaskRunner, job: ScoreJob, plan: Plan, settings: Settings, extracted: list[VideoOutcome] = ()
) -> list[VideoOutcome]:
    """Scores the planned videos plus every video planned for extraction that did not fail, then reports every
    video whose scores did not fail and every planned report. Whatever an outcome says about an attempt, a video
    whose features exist is scored in this run: a Dask worker that dies makes Dask run its tasks again, and the
    rerun finds the killed attempt's videos current (`skipped`), so "done" alone would drop them for good. A video
    whose features do not exist fails at scoring, with the reason, never silently."""
    failed = {o.video_id for o in extracted if o.status in (FAILED, QUARANTINED)}
    to_score = sorted(set(plan.score) | ({e.video_id for e in plan.extract} - failed))
    outcomes: list[VideoOutcome] = []
    if to_score:
        check_inputs(job, to_score)
        gpu, size = settings.cluster.gpu_tasks, settings.model.score_batch
        batches = [to_score[i : i + size] for i in range(0, len(to_score), size)]
        futures = [submit(runner, score_batch_task, gpu, job=job, video_ids=b, gpu_requested=gpu) for b in batches]
        lost = lambda i, why: [VideoOutcome(v, FAILED, "score", error=why) for v in batches[i]]  # noqa: E731
        scored = wait_with_progress(futures, "scoring", [len(b) for b in batches], gpu_watch(runner, settings), lost)
        outcomes += [o for batch in scored for o in batch]
    not_scored = {o.video_id for o in outcomes if o.status in (FAILED, QUARANTINED)}
    to_report = sorted(set(plan.report) | (set(to_score) - not_scored))
    if to_report:
        futures = [
            submit(
                runner,
                report_video_task,
                False,
                store=job.out,
                model_id=job.card.model_id,
                video_id=vid,
                threshold=job.report_threshold,
                options=job.report,
            )
            for vid in to_report
        ]
        outcomes += wait_with_progress(futures, "reports")
    return outcomes


def gpu_watch(runner: DaskTaskRunner, settings: Settings) -> GpuWatch | None:
    """GPU tasks on an existing cluster wait at most `gpu_wait_s` for a GPU worker, mid-run too (a LocalCluster's
    workers all offer the resource and live as long as the run)."""
    c = settings.cluster
    return GpuWatch(runner, c.gpu_wait_s) if c.gpu_tasks and c.dask_address else None


def outcome(summary: dict) -> Any:
    """What a flow returns: its summary, or, when videos failed, a Completed state named CompletedWithFailures
    (message: the counts) carrying the summary, so Prefect's UI, API and automations tell it from a clean run
    while callers still get the summary."""
    log_summary(summary)
    summary_artifact(summary)
    failed = summary.get("counts", {}).get("failed", 0)
    if not failed:
        return summary
    total = sum(summary.get("counts", {}).values())
    message = f"{failed} of {total} videos failed (vad run {summary.get('run_id')}: runs/<run_id>/summary.json)"
    return Completed(name="CompletedWithFailures", message=message, data=summary)
