"""score_features: clip scores for every video under a features folder, one Dask task per batch of videos,
then a report per scored video and the run index."""
from __future__ import annotations

from prefect import flow, get_run_logger

from anomaly_models.checkpoint import CheckpointError
from tasks.feature_store import list_tables, read_metadata
from tasks.manifest import SKIPPED, VideoOutcome, merge_outcomes, new_run_id, write_manifest
from tasks.model_inputs import load_video_inputs, objects_root_for
from tasks.model_store import read_model_config
from tasks.reports import report_exists, report_video_task, write_index
from tasks.scoring import score_batch_task, score_is_current, scores_url
from tasks.storage import join

from .progress import wait_with_progress
from .runner import dask_runner, submit, threaded_map
from .settings import Settings


def check_inputs(config: dict, features_root: str, video_ids: list[str], storage_options=None) -> None:
    """Refuse before any work when the features come from another extractor than the model was trained on, or
    lack what the model reads (ADOR: spatial tokens and object features)."""
    for vid in video_ids[:1]:
        meta = read_metadata(join(features_root, vid + ".parquet"), storage_options) or {}
        if meta.get("extractor_id") != config["extractor_id"]:
            raise CheckpointError(f"model {config['model_id']} was trained on features of extractor "
                                  f"'{config['extractor_id']}' but {features_root} holds features of extractor "
                                  f"'{meta.get('extractor_id')}'")
        objects_root = objects_root_for(features_root, config["detector_id"]) if config.get("detector_id") else None
        load_video_inputs(config["model"], features_root, vid, objects_root, config.get("max_objects", 36),
                          storage_options)


def plan_scoring(config: dict, features_root: str, video_ids: list[str], settings: Settings):
    if settings.force:
        return list(video_ids), []

    def current(vid: str) -> bool:
        meta = read_metadata(join(features_root, vid + ".parquet"), settings.storage_options) or {}
        return score_is_current(settings.out, config, vid, meta.get("fingerprint", ""), settings.storage_options)

    flags = threaded_map(current, video_ids)
    return ([v for v, ok in zip(video_ids, flags) if not ok],
            [VideoOutcome(v, SKIPPED, "score") for v, ok in zip(video_ids, flags) if ok])


def run_scoring(runner, config: dict, model_url: str, features_root: str, todo: list[str],
                settings: Settings) -> list[VideoOutcome]:
    futures = [submit(runner, score_batch_task, settings.gpu_tasks, video_ids=todo[i : i + settings.score_batch],
                      features_root=features_root, model_url=model_url, out_root=settings.out,
                      storage_options=settings.storage_options, gpu_requested=settings.gpu_tasks,
                      force=settings.force)
               for i in range(0, len(todo), settings.score_batch)]
    return [o for batch in wait_with_progress(futures, "scoring") for o in batch]


def run_reports(runner, model_id: str, video_ids: list[str], settings: Settings) -> list[VideoOutcome]:
    futures = [submit(runner, report_video_task, False,
                      scores_url=scores_url(settings.out, model_id, vid), out_root=settings.out,
                      storage_options=settings.storage_options, threshold=settings.threshold, video_id=vid)
               for vid in video_ids]
    return wait_with_progress(futures, "reports") if futures else []


def reports_needed(model_id: str, scored: list[str], video_ids: list[str], settings: Settings) -> list[str]:
    """Videos scored in this run, plus scored videos whose report is missing."""
    again = set(scored)
    rest = [v for v in video_ids if v not in again]
    exists = threaded_map(lambda v: report_exists(settings.out, model_id, v, settings.storage_options), rest)
    return sorted(again | {v for v, ok in zip(rest, exists) if not ok})


@flow(name="score-features")
def score_features(settings: Settings, features_url: str, model_url: str) -> dict:
    logger = get_run_logger()
    config = read_model_config(model_url, settings.storage_options)
    ids = list_tables(features_url, settings.storage_options)
    if not ids:
        raise FileNotFoundError(f"no feature tables under {features_url}")
    check_inputs(config, features_url, ids, settings.storage_options)
    todo, outcomes = plan_scoring(config, features_url, ids, settings)
    logger.info("%d videos: %d to score, %d current", len(ids), len(todo), len(outcomes))
    run_id = new_run_id("score")
    scoring = set(todo)
    missing_reports = reports_needed(config["model_id"], [], [v for v in ids if v not in scoring], settings)
    if todo or missing_reports:
        with dask_runner(settings.dask_address, settings.workers, settings.gpu_tasks) as runner:
            scored = run_scoring(runner, config, model_url, features_url, todo, settings) if todo else []
            done = [o.video_id for o in scored if o.status == "done"]
            outcomes += scored
            outcomes += run_reports(runner, config["model_id"], sorted(set(missing_reports) | set(done)), settings)
    index = write_index(settings.out, config["model_id"], settings.storage_options)
    return write_manifest(settings.out, run_id, merge_outcomes(outcomes),
                          {"flow": "score-features", "model_id": config["model_id"], "index": index},
                          settings.storage_options)
