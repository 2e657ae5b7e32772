"""The `vad` command line: one console script, one subcommand per job.

Exit codes: 0 all videos succeeded; 3 some videos failed (see the run manifest); 2 bad usage or configuration
(`UsageError`); 1 a refused job (`RefusedJob`). The commands catch only the project's errors (`VadError`);
anything else is a bug, and says so.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from collections.abc import Callable
from typing import Any, Optional, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from anomaly_models.errors import UsageError, VadError

from .doctor import doctor as doctor_command
from .runs_cli import app as runs_app
from .stopping import interruptions, sigterm_stops_cleanly

app = typer.Typer(
    help="vad: find and localize anomalous events in recorded surveillance video.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()
EXIT_SOME_FAILED = 3
EXIT_INTERRUPTED = 130

ConfigOpt = typer.Option(None, "--config", help="YAML settings file (flags > VAD_* env > file)")
OutOpt = typer.Option(None, "--out", help="output root URL (default ./vad-data)")
DaskOpt = typer.Option(None, "--dask-address", help="existing Dask scheduler, e.g. tcp://scheduler:8786")
WorkersOpt = typer.Option(None, "--workers", help="LocalCluster worker processes (default 1)")
GpuOpt = typer.Option(None, "--gpu-tasks/--no-gpu-tasks", help="tasks ask Dask for the GPU resource")
IncludeOpt = typer.Option(
    None, "--include", help="only video ids matching this glob (repeatable), e.g. 'cam07/2026-11-28/*'"
)


def _prefect_defaults() -> None:
    # the first ephemeral-server start on a fresh machine migrates SQLite and can take over 20 s
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
    import logging

    logging.getLogger("distributed").setLevel(logging.WARNING)


F = TypeVar("F", bound=Callable[..., Any])


def handled(command: F, orchestrated: bool = False) -> F:
    """The project's errors become one line and their documented exit code; anything else is reported as a bug.
    `orchestrated` commands run flows: they get vad's temporary Prefect API server unless one is configured."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        from .api_server import temporary_api_server

        try:
            if not orchestrated:
                return command(*args, **kwargs)
            with temporary_api_server():
                return command(*args, **kwargs)
        except VadError as exc:
            if DEBUG["on"]:
                console.print_exception()
            console.print(f"[red]error:[/red] {escape(str(exc))}")
            raise typer.Exit(exc.exit_code) from None
        except interruptions():  # Ctrl-C or SIGTERM: the manifest is written, cluster closed
            console.print("[yellow]interrupted:[/yellow] stopped; the run's manifest records what finished")
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except (typer.Exit, typer.Abort):
            raise
        except Exception as exc:
            console.print(
                f"[red]internal error (a bug in vad, please report it):[/red] "
                f"{escape(f'{exc.__class__.__name__}: {exc}')}"
            )
            raise

    return run  # type: ignore[return-value]


def orchestrated(command: F) -> F:
    return handled(command, orchestrated=True)


def _settings(**flags):
    from .settings import load_settings

    return load_settings(**flags)


def print_summary(summary: dict, title: str) -> None:
    counts = summary["counts"]
    table = Table(title=f"{title} — run {summary['run_id']}")
    columns = ("done", "skipped", "failed", "quarantined")
    for col in columns:
        table.add_column(col, justify="right")
    table.add_row(*(str(counts.get(c, 0)) for c in columns))
    console.print(table)
    for video_id, error in summary.get("failed", {}).items():
        console.print(f"[red]failed[/red] {escape(video_id)}: {escape(error)}")
    for video_id, error in summary.get("quarantined", {}).items():
        console.print(f"[yellow]quarantined earlier[/yellow] {escape(video_id)}: {escape(error)} (--force retries)")


def parse_overlaps(text: str) -> tuple[float, ...]:
    """'10,25,50' (percent) or '0.1,0.25,0.5' (fractions: every value <= 1) -> fractions in (0, 1]."""
    try:
        values = [float(k) for k in text.split(",") if k.strip()]
    except ValueError:
        values = []
    if not values:
        raise UsageError(f"--overlaps: expected comma-separated percentages like 10,25,50, got {text!r}")
    fractions = values if all(v <= 1 for v in values) else [v / 100 for v in values]
    if any(not 0 < k <= 1 for k in fractions):
        raise UsageError(f"--overlaps: IoU thresholds must be in (0, 100] percent (or (0, 1]), got {text!r}")
    return tuple(fractions)


def exit_for(summary: dict) -> None:
    if summary["counts"].get("failed"):
        raise typer.Exit(EXIT_SOME_FAILED)


DEBUG = {"on": False}


class _ReportedErrors(logging.Filter):
    """Prefect logs a flow's exception with its traceback; for the project's own errors (and interruptions) the CLI
    prints one line instead, so their traceback is dropped from the flow-run log unless --debug (the message
    stays, on the console and in a Prefect server)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not DEBUG["on"] and isinstance(exc, (VadError, *interruptions())):
            record.exc_info, record.exc_text = None, None
        return True


def _quiet_reported_errors() -> None:
    for name in ("prefect.flow_runs", "prefect.task_runs"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _ReportedErrors) for f in logger.filters):
            logger.addFilter(_ReportedErrors())


@app.callback()
def main(debug: bool = typer.Option(False, "--debug", help="show tracebacks of reported errors too")) -> None:
    """vad: find and localize anomalous events in recorded surveillance video."""
    DEBUG["on"] = debug
    _prefect_defaults()
    _quiet_reported_errors()
    sigterm_stops_cleanly()


@app.command()
@orchestrated
def extract(
    archive: str = typer.Option(..., "--archive", help="archive root URL (folder or s3://bucket/prefix)"),
    out: Optional[str] = OutOpt,
    backbone: Optional[str] = typer.Option(
        None, help="r3d_18 | mc3_18 | r2plus1d_18 | s3d | mvit_v2_s | i3d | c3d | tsm"
    ),
    weights: Optional[str] = typer.Option(None, help="random | torchvision enum name | local file"),
    clip_len: Optional[int] = typer.Option(None, "--clip-len"),
    stride: Optional[int] = typer.Option(None),
    size: Optional[int] = typer.Option(None, help="crop size (default: the backbone's)"),
    crops: Optional[int] = typer.Option(
        None, help="1 (centre) | 5 (corners + centre) | 10 (and flips): per-crop features"
    ),
    tokens: Optional[bool] = typer.Option(None, "--tokens/--no-tokens", help="store spatial token maps"),
    dask_address: Optional[str] = DaskOpt,
    workers: Optional[int] = WorkersOpt,
    gpu_tasks: Optional[bool] = GpuOpt,
    force: Optional[bool] = typer.Option(None, "--force/--no-force", help="re-extract current videos"),
    objects: Optional[bool] = typer.Option(None, "--objects/--no-objects", help="also centre-frame object features"),
    detector: Optional[str] = typer.Option(
        None, help="fasterrcnn_mobilenet_v3_large_320_fpn | fasterrcnn_resnet50_fpn"
    ),
    detector_weights: Optional[str] = typer.Option(None, "--detector-weights", help="random | enum name | file"),
    object_mode: Optional[str] = typer.Option(
        None, "--object-mode", help="detections (score > threshold) | proposals (top-k RPN, for random-init detectors)"
    ),
    object_threshold: Optional[float] = typer.Option(None, "--object-threshold", help="default 0.2"),
    max_objects: Optional[int] = typer.Option(None, "--max-objects", help="default 36"),
    include: Optional[list[str]] = IncludeOpt,
    config: Optional[str] = ConfigOpt,
) -> None:
    """Extract per-clip action features of every new or changed video into <out>/features/<extractor_id>/
    (and, with --objects, object features into <out>/objects/<detector_id>/)."""
    from .extract_flow import extract_features

    settings = _settings(
        config_file=config,
        archive=archive,
        out=out,
        backbone=backbone,
        weights=weights,
        clip_len=clip_len,
        stride=stride,
        size=size,
        crops=crops,
        tokens=tokens,
        dask_address=dask_address,
        workers=workers,
        gpu_tasks=gpu_tasks,
        force=force,
        objects=objects,
        detector=detector,
        detector_weights=detector_weights,
        object_mode=object_mode,
        object_threshold=object_threshold,
        max_objects=max_objects,
        include=include or None,
    )
    spec = settings.extractor.spec
    if spec.is_random:
        console.print(
            f"[yellow]note:[/yellow] {spec.backbone} is random-initialised (seed {spec.seed}); "
            "pretrained weights cannot be downloaded here"
        )
    summary = extract_features(settings)
    console.print(f"features: {settings.store.features_dir(summary['extractor_id'])}/", markup=False)
    if settings.detector_spec:
        console.print(f"objects: {settings.store.objects_dir(settings.detector_spec.detector_id)}/", markup=False)
    print_summary(summary, "extract")
    exit_for(summary)


FeaturesOpt = typer.Option(..., "--features", help="features folder of one extractor: <out>/features/<extractor_id>")
AnnotationsOpt = typer.Option(
    ...,
    "--annotations",
    help="UCF-Crime .txt, V2 .json or .csv (comma-join several), or reviews: <out>/reviews/<model_id>",
)


@app.command()
@orchestrated
def train(
    features: str = FeaturesOpt,
    annotations: str = AnnotationsOpt,
    out: Optional[str] = OutOpt,
    model: Optional[str] = typer.Option(None, help="adnet | ador | mlp | edtcn"),
    objects: Optional[str] = typer.Option(None, "--objects", help="ADOR: object features <out>/objects/<detector_id>"),
    model_options: Optional[str] = typer.Option(
        None, "--model-options", help='JSON constructor arguments, e.g. \'{"dim": 64, "depth": 2}\''
    ),
    window: Optional[int] = typer.Option(None, help="clips per window (default 64)"),
    epochs: Optional[int] = typer.Option(None, help="default 30"),
    lr: Optional[float] = typer.Option(None, help="Adam learning rate (default 5e-4)"),
    threshold: Optional[float] = typer.Option(None, help="score threshold stored with the model (default 0.5)"),
    model_id: Optional[str] = typer.Option(None, "--model-id", help="default <model>-w<window>-<extractor_id>"),
    random_crops: Optional[bool] = typer.Option(
        None, "--random-crops/--crop-mean", help="multi-crop features: a random crop per window and epoch (default)"
    ),
    seed: Optional[int] = typer.Option(None, "--seed", help="training seed (default 123): initial weights, order"),
    config: Optional[str] = ConfigOpt,
) -> None:
    """Train a temporal anomaly model from stored features and temporal annotations."""
    from .train_flow import train_model

    try:
        options = json.loads(model_options) if model_options else None
    except json.JSONDecodeError as exc:
        raise UsageError(f"--model-options is not JSON: {exc}") from None
    settings = _settings(
        config_file=config,
        out=out,
        model=model,
        window=window,
        epochs=epochs,
        lr=lr,
        threshold=threshold,
        model_options=options,
        random_crops=random_crops,
        train_seed=seed,
    )
    card = train_model(settings, features, annotations, model_id, objects)
    t = card.training
    console.print(
        f"model {card.model_id}: {t.videos} videos, {t.clips} clips ({t.abnormal_clips} abnormal), "
        f"final loss {t.history[-1]:.4f}",
        markup=False,
    )
    console.print(f"saved: {settings.store.model_dir(card.model_id)}/", markup=False)


@app.command()
@handled
def score(
    video: Optional[str] = typer.Argument(None, help="one video file (local or s3://): extract, score, report it"),
    features: Optional[str] = typer.Option(
        None, "--features", help="features folder of one extractor: <out>/features/<extractor_id>"
    ),
    model: str = typer.Option(..., "--model", help="a trained model folder: <out>/models/<model_id>"),
    out: Optional[str] = OutOpt,
    archive: Optional[str] = typer.Option(
        None, "--archive", help="with VIDEO: the archive root its id is relative to (default: its folder)"
    ),
    dask_address: Optional[str] = DaskOpt,
    workers: Optional[int] = WorkersOpt,
    gpu_tasks: Optional[bool] = GpuOpt,
    force: Optional[bool] = typer.Option(None, "--force/--no-force"),
    config: Optional[str] = ConfigOpt,
) -> None:
    """Score every video under a features folder (--features), or one video end to end (VIDEO: extract what is
    missing, score, report, in this process, no cluster); writes scores, per-video reports and the index."""
    from .api_server import temporary_api_server

    settings = _settings(
        config_file=config, out=out, dask_address=dask_address, workers=workers, gpu_tasks=gpu_tasks, force=force
    )
    if (video is None) == (features is None):
        raise UsageError("score: give either one VIDEO or --features <out>/features/<extractor_id>")
    if video is not None:
        from .score_video import score_video

        summary, report = score_video(settings, video, model, archive)
        print_summary(summary, "score")
        print_events(report, settings.store)
        exit_for(summary)
        return
    from .score_flow import score_features

    with temporary_api_server():
        summary = score_features(settings, features, model)
    print_summary(summary, "score")
    console.print(f"index: {summary['index']}", markup=False)
    exit_for(summary)


def print_events(report: dict, store) -> None:
    """One video's events with their wall-clock times (or offsets into the file) and clips."""
    from tasks.jobs.report import hms, wall_clock

    if not report:
        return
    segments = report["segments"]
    where = f"camera {report['camera']}, " if report.get("camera") else ""
    recorded = wall_clock(report.get("recorded_at")) or "recording time unknown"
    title = f"{report['video_id']} ({where}{recorded}): {len(segments)} events"
    table = Table(title=escape(title))
    for col in ("#", "start", "end", "into the file", "peak score", "clip"):
        table.add_column(col)
    for n, s in enumerate(segments, start=1):
        clip = store.event_media(report["model_id"], report["video_id"], n, ".mp4") if s.get("clip") else ""
        table.add_row(
            str(n), escape(wall_clock(s.get("start_time")) or "-"), escape(wall_clock(s.get("end_time")) or "-"),
            f"{hms(s['start_s'])}–{hms(s['end_s'])}", f"{s['peak_score']:.3f}", escape(clip or s.get("clip_error", "")),
        )  # fmt: skip
    console.print(table)
    console.print(f"report: {store.report(report['model_id'], report['video_id'], '.html')}", markup=False)


@app.command("import-features")
@handled
def import_features(
    source: str = typer.Option(..., "--from", help="folder of public feature files (local or s3://)"),
    layout: str = typer.Option(
        ..., help="rtfm: <name>_i3d.npy [T, K, D] or [T, D] | deepmil: <name>__<k>.npy [T, D] per crop k"
    ),
    out: Optional[str] = OutOpt,
    name: Optional[str] = typer.Option(
        None, help="names the feature set in its extractor id (default <layout>-import)"
    ),
    fps: float = typer.Option(30.0, help="frame rate when no source video gives it"),
    videos: Optional[str] = typer.Option(None, "--videos", help="the source videos: their fps and frame counts"),
    list_file: Optional[str] = typer.Option(None, "--list", help="import only the files named in this list file"),
    as_extractor: Optional[str] = typer.Option(
        None,
        "--as-extractor",
        help="declare the features made by this backbone (e.g. i3d), so models trained on "
        "them can scan new footage with it",
    ),  # fmt: skip
    weights: Optional[str] = typer.Option(None, help="with --as-extractor: the weights file that made them"),
    config: Optional[str] = ConfigOpt,
) -> None:
    """Import a public feature set (UCF-Crime / XD-Violence I3D features) as feature tables that train, score and
    evaluate read: 16-frame snippets, the crop mean as `feature`, each crop in `crop_features`."""
    from tasks.jobs.public_features import import_features as run_import
    from tasks.media.specs import ExtractorSpec

    settings = _settings(config_file=config, out=out)
    options = settings.storage.options
    listed = None
    if list_file:
        try:
            with open(list_file) as f:
                listed = f.read().splitlines()
        except OSError as exc:
            raise UsageError(f"--list: cannot read {list_file}: {exc.strerror}") from None
    spec = ExtractorSpec(as_extractor, weights or "random") if as_extractor else None
    if spec is None and weights:
        raise UsageError("--weights: only with --as-extractor (the extractor the imported features came from)")
    result = run_import(source, settings.store, layout, name, fps, videos, listed, spec, options)
    console.print(
        f"imported {len(result.videos)} videos ({result.crops} crops x {result.dim} values per snippet) as "
        f"{result.extractor_id}",
        markup=False,
    )
    console.print(f"features: {result.features_dir}/", markup=False)


@app.command("export-features")
@handled
def export_features(
    features: str = FeaturesOpt,
    layout: str = typer.Option(..., help="rtfm (<name>_i3d.npy) | deepmil (<name>__<k>.npy per crop)"),
    to: str = typer.Option(..., "--to", help="folder to write into"),
    config: Optional[str] = ConfigOpt,
) -> None:
    """Write one extractor's features in a public layout (plus a list file), for other research code."""
    from tasks.jobs.public_features import export_features as run_export
    from tasks.store.output import OutputStore

    settings = _settings(config_file=config)
    store, extractor_id = OutputStore.locate(features, "features", settings.storage.options)
    files, list_file = run_export(store, extractor_id, to, layout, settings.storage.options)
    console.print(f"wrote {len(files)} files; list: {list_file}", markup=False)


@app.command()
@handled
def report(
    model_id: str = typer.Option(..., "--model-id"),
    out: Optional[str] = OutOpt,
    config: Optional[str] = ConfigOpt,
) -> None:
    """Rebuild the index (index.html, its Parquet parts under <out>/index/<model_id>/) from every per-video report
    of a model: after reports were changed or deleted by hand. Runs keep it current by themselves."""
    from tasks.jobs.report_index import rebuild_index

    settings = _settings(config_file=config, out=out)
    console.print(f"index: {rebuild_index(settings.store, model_id)}", markup=False)


@app.command()
@handled
def review(
    out: Optional[str] = OutOpt,
    host: str = typer.Option("127.0.0.1", help="address to bind (loopback by default: only this machine)"),
    port: int = typer.Option(8765, min=0, max=65535, help="port (0: any free one)"),
    token: Optional[str] = typer.Option(
        None, envvar="VAD_REVIEW_TOKEN", help="access token the browser must present (the printed URL carries it)"
    ),
    reviewer: Optional[str] = typer.Option(None, help="name recorded with each review (default: your user name)"),
    config: Optional[str] = ConfigOpt,
) -> None:
    """Serve the reports of an output (local or s3://) in a local web app where analysts mark each event confirmed,
    false alarm or unsure; reviews go to <out>/reviews/<model_id>/ (Parquet) and become labels for evaluate and
    calibrate (--annotations <out>/reviews/<model_id>)."""
    import getpass
    import socket
    from urllib.parse import quote

    from .review_app import check_binding, serve

    check_binding(host, token)
    settings = _settings(config_file=config, out=out)
    if port == 0:
        with socket.socket() as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
    name = reviewer or getpass.getuser()
    shown = f"[{host}]" if ":" in host else host
    console.print(
        f"reviewing {settings.store.root} as {name}: http://{shown}:{port}/{'?token=' + quote(token) if token else ''}",
        markup=False,
    )
    console.print("Ctrl-C stops", markup=False)
    serve(settings.store, host, port, name, token)


@app.command()
@handled
def evaluate(
    scores: list[str] = typer.Option(..., "--scores", help="scores folder <out>/scores/<model_id>; repeat to compare"),
    annotations: str = AnnotationsOpt,
    overlaps: str = typer.Option("10,25,50", help="IoU thresholds: percentages in (0, 100] (or fractions in (0, 1])"),
    threshold: Optional[float] = typer.Option(
        None, min=0.0, max=1.0, help="score threshold in [0, 1]; default: each model's own"
    ),
    bootstrap: int = typer.Option(1000, min=0, help="bootstrap resamples over videos for 95% intervals (0: none)"),
    config: Optional[str] = ConfigOpt,
) -> None:
    """F1@k (abnormal / normal / all), frame AUC, AP (two conventions), false-alarm rate and detection mAP against
    annotations, with bootstrap intervals; writes evaluation.json/.md/.html by the scores (and, for several models
    under one output, <out>/evaluation.html comparing them)."""
    from tasks.jobs.evaluate import evaluate_models

    settings = _settings(config_file=config)
    options = settings.storage.options
    result = evaluate_models(scores, annotations, parse_overlaps(overlaps), threshold, options, bootstrap)
    console.print(result["markdown"], soft_wrap=True, markup=False)
    print_pages(result)


def print_pages(evaluation: dict) -> None:
    for r in evaluation["results"]:
        console.print(f"evaluation of {r['model_id']}: {r['written'][-1]}", markup=False)
    if evaluation.get("comparison"):
        console.print(f"evaluation page (all models): {evaluation['comparison']}", markup=False)


@app.command()
@handled
def calibrate(
    model: str = typer.Option(..., "--model", help="a trained model folder: <out>/models/<model_id>"),
    scores: str = typer.Option(..., "--scores", help="its scores on a validation split: <out>/scores/<model_id>"),
    annotations: str = AnnotationsOpt,
    by: str = typer.Option(
        "f1", "--by", help="f1 (maximise F1@k) | far (false-alarm rate <= --target %) | recall (recall >= --target %)"
    ),
    k: float = typer.Option(25.0, "--k", help="IoU threshold of F1@k and segment recall, percent"),
    target: Optional[float] = typer.Option(None, "--target", min=0.0, max=100.0, help="percent, for far / recall"),
    config: Optional[str] = ConfigOpt,
) -> None:
    """Choose the model's operating threshold on a validation split; it goes into the model card (the previous one
    into its history) and reports and scans use it from then on."""
    from tasks.jobs.annotations import load_annotations
    from tasks.jobs.calibrate import calibrate as run_calibration
    from tasks.models.repository import locate_model
    from tasks.store.output import OutputStore

    options = _settings(config_file=config).storage.options
    model_store, card = locate_model(model, options)
    scores_store, scored = OutputStore.locate(scores, "scores", options)
    if scored != card.model_id:
        raise UsageError(f"--scores: {scores} holds scores of model {scored}, not of {card.model_id}")
    updated = run_calibration(
        model_store, card, scores_store, load_annotations(annotations, options), annotations, by, k / 100, target
    )
    record = updated.calibration
    assert record is not None
    point = max((p for p in record.curve if p["threshold"] <= updated.threshold), key=lambda p: p["threshold"])
    console.print(
        f"threshold {card.threshold:g} -> {updated.threshold:g} (--by {by}) on {record.videos} validation videos: "
        f"abnormal F1@{k:g} {point['f1']:.2f}, false alarms {point['far']}% of normal frames, "
        f"segment recall {point['recall']}%",
        markup=False,
    )
    console.print(f"saved: {model_store.model_file(card.model_id, 'config.json')}", markup=False)


@app.command()
@handled
def scan(
    archive: str = typer.Option(..., "--archive", help="archive root URL"),
    model: str = typer.Option(..., "--model", help="a trained model folder: <out>/models/<model_id>"),
    out: Optional[str] = OutOpt,
    include: Optional[list[str]] = IncludeOpt,
    dask_address: Optional[str] = DaskOpt,
    workers: Optional[int] = WorkersOpt,
    gpu_tasks: Optional[bool] = GpuOpt,
    force: Optional[bool] = typer.Option(None, "--force/--no-force"),
    config: Optional[str] = ConfigOpt,
) -> None:
    """The nightly job: extract what is new, score it, write reports and the index. Incremental: with nothing new
    the run is recorded (runs/<run_id>/) without starting Prefect or a cluster."""
    from .api_server import temporary_api_server
    from .scan_plan import nothing_new

    flags = dict(archive=archive, out=out, include=include, dask_address=dask_address, workers=workers)

    def run(settings):
        summary = nothing_new(settings, model)
        if summary is None:
            from .scan_flow import scan as scan_flow

            with temporary_api_server():
                summary = scan_flow(settings, model)
        return summary

    _run_scan(run, "scan", config, gpu_tasks=gpu_tasks, force=force, **flags)


@app.command()
@orchestrated
def backfill(
    archive: str = typer.Option(..., "--archive", help="archive root URL"),
    model: str = typer.Option(..., "--model", help="a trained model folder: <out>/models/<model_id>"),
    out: Optional[str] = OutOpt,
    include: Optional[list[str]] = IncludeOpt,
    chunk: int = typer.Option(200, min=1, help="videos per chunk (one flow run and manifest each)"),
    dask_address: Optional[str] = DaskOpt,
    workers: Optional[int] = WorkersOpt,
    gpu_tasks: Optional[bool] = GpuOpt,
    config: Optional[str] = ConfigOpt,
) -> None:
    """Scan a large or old archive in chunks: each chunk is its own run with its own manifest; re-running resumes
    (whatever is done stays current)."""
    from .scan_flow import backfill as backfill_flow

    flags = dict(archive=archive, out=out, include=include, dask_address=dask_address, workers=workers)
    _run_scan(lambda s: backfill_flow(s, model, chunk), "backfill", config, gpu_tasks=gpu_tasks, **flags)


@app.command()
@handled
def serve(
    archive: str = typer.Option(..., "--archive", help="archive root URL"),
    model: str = typer.Option(..., "--model", help="a trained model folder: <out>/models/<model_id>"),
    out: Optional[str] = OutOpt,
    include: Optional[list[str]] = typer.Option(
        None, "--include", help="globs; {yesterday} and {today} expand at run time, e.g. 'cam*/{yesterday}/*'"
    ),
    cron: str = typer.Option("0 2 * * *", help="schedule (cron)"),
    timezone: str = typer.Option("UTC", help="the schedule's timezone (IANA name, e.g. Europe/Istanbul)"),
    name: str = typer.Option(
        "served-scan", help="deployment name (never prefect.yaml's: a worker's deployment is refused, not replaced)"
    ),
    collision: str = typer.Option(
        "enqueue", help="a run due while one runs: enqueue (wait for it) | cancel-new (drop the new one)"
    ),
    retries: int = typer.Option(0, min=0, help="retries of a failed run"),
    retry_delay: int = typer.Option(600, "--retry-delay", min=0, help="seconds between retries"),
    timeout: Optional[float] = typer.Option(None, min=1, help="a run's time limit in seconds (default: none)"),
    dask_address: Optional[str] = DaskOpt,
    gpu_tasks: Optional[bool] = GpuOpt,
    config: Optional[str] = ConfigOpt,
) -> None:
    """Serve the scan as a scheduled Prefect deployment (needs a Prefect server: set PREFECT_API_URL)."""
    from prefect.settings import PREFECT_API_URL

    from .serve import nightly_deployment

    if not PREFECT_API_URL.value():
        raise VadError(
            "vad serve needs a Prefect server for schedules: run `prefect server start` and set "
            "PREFECT_API_URL (the ephemeral API does not run the scheduler)"
        )
    settings = _settings(
        config_file=config,
        archive=archive,
        out=out,
        include=include or None,
        dask_address=dask_address,
        gpu_tasks=gpu_tasks,
    )
    from prefect import serve as prefect_serve

    if collision not in ("enqueue", "cancel-new"):
        raise UsageError(f"--collision: expected enqueue or cancel-new, got {collision!r}")
    deployment = nightly_deployment(
        settings, model, cron, name, timezone, os.path.abspath(config) if config else None, collision, retries,
        retry_delay, timeout,
    )  # fmt: skip
    console.print(f"serving {name}: scan of {archive} on '{cron}' ({timezone}); Ctrl-C stops", markup=False)
    from .dead_runs import mark_dead_runs
    from .serve import refuse_foreign_deployment

    refuse_foreign_deployment(name)
    for run_id in mark_dead_runs(deployment.apply(), settings.store):
        console.print(f"marked Crashed: flow run {run_id} was left Running by a process that died", markup=False)
    prefect_serve(deployment)


def _run_scan(run, title: str, config: str | None, include: list[str] | None = None, **flags) -> None:
    settings = _settings(config_file=config, include=include or None, **flags)
    summary = run(settings)
    print_summary(summary, title)
    console.print(f"index: {summary['index']}", markup=False)
    exit_for(summary)


@app.command()
@orchestrated
def demo(
    out: str = typer.Option("./vad-demo", "--out", help="demo output folder"),
) -> None:
    """Generate a small archive, extract, train ADNet/ADOR/MLP/ED-TCN, scan the test split with each, evaluate
    them side by side; print the F1@k table and the report index."""
    from .demo import demo as demo_flow

    settings = _settings(
        out=os.path.abspath(out), size=64, window=32, tokens=True, objects=True, object_mode="proposals", max_objects=16
    )
    console.print(
        "[yellow]note:[/yellow] the r3d_18 backbone and the Faster R-CNN detector are RANDOM-INITIALISED "
        "(seed 0, 64 px crops; top-16 RPN proposals as objects): pretrained weights cannot be downloaded "
        "on this machine, so features are random projections"
    )
    result = demo_flow(settings)
    console.print(result["evaluation"]["markdown"], soft_wrap=True, markup=False)
    print_pages(result["evaluation"])
    for name, index in result["indexes"].items():
        console.print(f"{name} reports: {index}", markup=False)
    console.print(f"report index: {result['index']}", markup=False)
    if result["alerts"].get("adnet"):
        console.print(f"alerts page (ADNet, test split): {result['alerts']['adnet']}", markup=False)
    console.print(
        f"review the events in a browser: vad review --out {settings.storage.out}  (then open http://127.0.0.1:8765/)",
        markup=False,
    )


app.add_typer(runs_app, name="runs")
app.command("doctor")(handled(doctor_command))


if __name__ == "__main__":
    app()
