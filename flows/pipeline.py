"""The one way through a run's work, shared by extract, score, scan and backfill: submit a plan's extraction to
the Dask runner, then score and report; `outcome` turns the run's summary into its Prefect state. What a run
records (its manifest, lease and index) is `run_record.RunRecord`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prefect.states import Completed

from tasks.jobs.plan import Plan, check_inputs
from tasks.jobs.score import ScoreJob
from tasks.store.archive import VideoEntry
from tasks.store.manifest import DONE, VideoOutcome

from .progress import wait_with_progress
from .runner import submit
from .settings import Settings
from .work import extract_videos_task, report_video_task, score_batch_task

if TYPE_CHECKING:
    from prefect_dask import DaskTaskRunner


def task_groups(entries: list[VideoEntry], videos: int, megabytes: int, workers: int) -> list[list[VideoEntry]]:
    """Videos in archive order, packed into tasks of at most `videos` files and `megabytes` MB (a larger file
    alone), and into at least `workers` tasks when there are that many videos, so every worker gets some: many
    short files cost one task's orchestration, not one each."""
    if not entries:
        return []
    per_task = max(1, min(videos, len(entries) // max(workers, 1)))
    groups: list[list[VideoEntry]] = [[]]
    size = 0
    for entry in entries:
        if groups[-1] and (len(groups[-1]) >= per_task or size + entry.size > megabytes * 2**20):
            groups.append([])
            size = 0
        groups[-1].append(entry)
        size += entry.size
    return groups


def run_extraction(runner: DaskTaskRunner, plan: Plan, settings: Settings) -> list[VideoOutcome]:
    """Extraction tasks of several videos each (`task_groups`) on the Dask runner (GPU-annotated with --gpu-tasks);
    one outcome per video."""
    gpu, e = settings.cluster.gpu_tasks, settings.extractor
    groups = task_groups(plan.extract, e.task_videos, e.task_mb, settings.cluster.workers)
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
    return [o for outcomes in wait_with_progress(futures, "extracting", [len(g) for g in groups]) for o in outcomes]


def score_and_report(
    runner: DaskTaskRunner, job: ScoreJob, plan: Plan, settings: Settings, extracted: list[VideoOutcome] = ()
) -> list[VideoOutcome]:
    """Scores the planned videos plus those just extracted (in batches of videos per task), then reports every
    video scored now and every planned report."""
    to_score = sorted(set(plan.score) | {o.video_id for o in extracted if o.status == DONE})
    outcomes: list[VideoOutcome] = []
    if to_score:
        check_inputs(job, to_score[:1])
        gpu, size = settings.cluster.gpu_tasks, settings.model.score_batch
        futures = [
            submit(runner, score_batch_task, gpu, job=job, video_ids=to_score[i : i + size], gpu_requested=gpu)
            for i in range(0, len(to_score), size)
        ]
        outcomes += [o for batch in wait_with_progress(futures, "scoring") for o in batch]
    to_report = sorted(set(plan.report) | {o.video_id for o in outcomes if o.status == DONE})
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


def outcome(summary: dict) -> Any:
    """What a flow returns: its summary, or, when videos failed, a Completed state named CompletedWithFailures
    (message: the counts) carrying the summary, so Prefect's UI, API and automations tell it from a clean run
    while callers still get the summary."""
    failed = summary.get("counts", {}).get("failed", 0)
    if not failed:
        return summary
    total = sum(summary.get("counts", {}).values())
    return Completed(name="CompletedWithFailures", message=f"{failed} of {total} videos failed", data=summary)
