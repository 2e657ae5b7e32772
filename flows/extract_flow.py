"""extract_features: archive -> per-clip action features in Parquet, one Dask task per video."""
from __future__ import annotations

from prefect import flow, get_run_logger

from tasks.discover import VideoEntry, discover_videos
from tasks.extract import extract_video_task, extraction_is_current, features_url, quarantined_reason
from tasks.manifest import QUARANTINED, SKIPPED, VideoOutcome, new_run_id, write_manifest

from .progress import wait_with_progress
from .runner import dask_runner, submit, threaded_map
from .settings import Settings


def plan_extraction(entries: list[VideoEntry], settings: Settings) -> tuple[list[VideoEntry], list[VideoOutcome]]:
    """Split discovered videos into work to do, videos whose features are current (same fingerprint and extractor
    id), and videos quarantined by an earlier run (same fingerprint; --force retries them)."""
    spec, todo, skipped = settings.extractor, [], []
    if settings.force:
        return list(entries), []

    def state(entry: VideoEntry):
        if extraction_is_current(entry, spec, settings.out, settings.storage_options, settings.tokens,
                                 settings.detector_spec):
            return SKIPPED, ""
        reason = quarantined_reason(settings.out, spec, entry, settings.storage_options)
        return (QUARANTINED, reason) if reason else (None, "")

    for entry, (status, reason) in zip(entries, threaded_map(state, entries)):
        if status == SKIPPED:
            skipped.append(VideoOutcome(entry.video_id, SKIPPED, "extract",
                                        output=features_url(settings.out, spec, entry.video_id)))
        elif status == QUARANTINED:
            skipped.append(VideoOutcome(entry.video_id, QUARANTINED, "extract", error=reason))
        else:
            todo.append(entry)
    return todo, skipped


def submit_extraction(runner, todo: list[VideoEntry], settings: Settings) -> list:
    """One extraction task per video on the Dask runner (GPU-annotated with --gpu-tasks)."""
    return [submit(runner, extract_video_task, settings.gpu_tasks, entry=entry, spec=settings.extractor,
                   out_root=settings.out, storage_options=settings.storage_options,
                   batch_size=settings.batch_size, tokens=settings.tokens, threads=settings.threads,
                   force=settings.force, detector=settings.detector_spec, gpu_requested=settings.gpu_tasks)
            for entry in todo]


@flow(name="extract-features")
def extract_features(settings: Settings) -> dict:
    logger = get_run_logger()
    spec = settings.extractor
    if spec.is_random:
        logger.warning("backbone %s is RANDOM-INITIALISED (seed %d): features are not pretrained", spec.backbone,
                       spec.seed)
    run_id = new_run_id("extract")
    entries = discover_videos(settings.archive, settings.storage_options, include=tuple(settings.include))
    todo, outcomes = plan_extraction(entries, settings)
    logger.info("%d videos found: %d to extract, %d current", len(entries), len(todo), len(outcomes))
    if todo:
        with dask_runner(settings.dask_address, settings.workers, settings.gpu_tasks) as runner:
            outcomes += wait_with_progress(submit_extraction(runner, todo, settings), "extracting")
    outcomes.sort(key=lambda o: o.video_id)
    return write_manifest(settings.out, run_id, outcomes,
                          {"flow": "extract-features", "extractor_id": spec.extractor_id, "archive": settings.archive},
                          settings.storage_options)
