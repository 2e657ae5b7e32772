"""The Prefect @task wrappers of a scan's jobs: thin, one per plain job in tasks/ (which tests call directly). They
import no torch: the jobs load their networks on the worker that runs them."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tasks.jobs.extract import ExtractJob, extract_videos
from tasks.jobs.report import ReportOptions, write_video_report
from tasks.jobs.score import ScoreJob, score_batch
from tasks.media.devices import pick_device
from tasks.store.archive import Archive, VideoEntry
from tasks.store.manifest import VideoOutcome
from tasks.store.output import OutputStore


def device_for(gpu_requested: bool) -> str:
    """The task's torch device; a GPU task that landed on a worker without CUDA says so in the flow run's log
    (task-run logs are the flow run's), naming the worker, not only in the Dask worker's stderr."""
    device = pick_device(gpu_requested)
    if gpu_requested and device == "cpu":
        try:
            from distributed import get_worker

            where = get_worker().address
        except Exception:
            where = "this worker"
        get_run_logger().warning("GPU task running on CPU: no CUDA device is visible on Dask worker %s", where)
    return device


@task(name="extract-videos", cache_policy=NO_CACHE)
def extract_videos_task(
    entries: list[VideoEntry], store: OutputStore, job: ExtractJob, archive: Archive, gpu_requested: bool = False
) -> list[VideoOutcome]:
    return extract_videos(entries, store, job, archive, device_for(gpu_requested))


@task(name="score-videos", cache_policy=NO_CACHE)
def score_batch_task(job: ScoreJob, video_ids: list[str], gpu_requested: bool = False) -> list[VideoOutcome]:
    return score_batch(job, video_ids, device_for(gpu_requested))


@task(name="report-video", cache_policy=NO_CACHE)
def report_video_task(
    store: OutputStore, model_id: str, video_id: str, threshold: float | None, options: ReportOptions
) -> VideoOutcome:
    return write_video_report(store, model_id, video_id, threshold, options=options)
