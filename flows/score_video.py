"""`vad score VIDEO --model M`: one file end to end in this process (no cluster, no Prefect): extract what is
missing, score, report (with the events' clips), and record it as a run (`runs/<run_id>/`) and in the model's index
like any scan. The video's id is its path under `--archive` (default: its own folder), so the camera/time template
sees `cam07/2026-11-28/010000.mp4` when the archive root is given."""

from __future__ import annotations

import os
import posixpath

from anomaly_models.errors import UsageError
from tasks.jobs.extract import extract_videos
from tasks.jobs.plan import plan_scan
from tasks.jobs.report import write_video_report
from tasks.jobs.score import score_batch
from tasks.media.devices import pick_device
from tasks.store.manifest import DONE, FAILED
from tasks.store.storage import is_local

from .progress import say
from .scan_plan import ScanJob
from .settings import Settings


def split_video_url(video: str, archive: str | None) -> tuple[str, str]:
    """(archive root, video id): the id is the video's path under `archive` (or relative to it), else its file
    name. Local paths are compared as absolute paths."""
    if archive is None:
        root, name = posixpath.split(video.rstrip("/"))
        return (os.path.abspath(root or ".") if is_local(video) else root), name
    if is_local(archive) and is_local(video):
        root = os.path.abspath(archive.removeprefix("file://"))
        path = video.removeprefix("file://")
        under = os.path.abspath(path) if os.path.isabs(path) or os.path.exists(path) else os.path.join(root, path)
        rel = os.path.relpath(under, root)
        if rel.startswith(".."):
            raise UsageError(f"VIDEO: {video} is not under --archive {archive}")
        return root, rel.replace(os.sep, "/")
    root = archive.rstrip("/")
    if video.startswith(root + "/"):
        return root, video[len(root) + 1 :]
    if "://" in video:
        raise UsageError(f"VIDEO: {video} is not under --archive {archive}; give its path relative to the archive")
    return root, video


def score_video(settings: Settings, video: str, model_url: str, archive: str | None = None) -> tuple[dict, dict]:
    """(run summary, report) of one video."""
    root, video_id = split_video_url(video, archive)
    scan = ScanJob.load(settings.replace(archive=root), model_url)
    settings, card, job = scan.settings, scan.card, scan.score
    entries = [settings.archive.entry(video_id)]
    run = scan.record("score-video", entries)
    with run.guard():
        plan = plan_scan(job, settings.extract_job, entries)
        run.plan(plan, index_model=card.model_id)
        device = pick_device(False) if plan.extract or plan.score else "cpu"
        if plan.extract:
            say(f"extracting {video_id} ({card.extractor_id})")
            run.outcomes += extract_videos(plan.extract, settings.store, settings.extract_job, settings.archive, device)
        extracted = [o.video_id for o in run.outcomes if o.stage == "extract" and o.status == DONE]
        to_score = sorted(set(plan.score) | set(extracted))
        if to_score:
            say(f"scoring with {card.model_id}")
            run.outcomes += score_batch(job, to_score, device)
        scored = {o.video_id for o in run.outcomes if o.stage == "score" and o.status == DONE}
        if set(plan.report) | scored:
            say("reporting (event clips and posters)")
        for vid in sorted(set(plan.report) | scored):
            run.outcomes += [write_video_report(job.out, card.model_id, vid, job.report_threshold, options=job.report)]
        summary = run.finish(index_model=card.model_id, work=plan.work)
    store = settings.store
    report_url = store.report(card.model_id, video_id, ".json")
    failed = any(o.status == FAILED for o in run.outcomes)  # an older report is not this run's result
    report = store.read_json(report_url) if not failed and store.exists(report_url) else {}
    return summary, report
