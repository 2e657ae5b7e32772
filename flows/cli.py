"""The `vad` command line: one console script, one subcommand per job.

Exit codes: 0 all videos succeeded; 3 some videos failed (see the run manifest); 2 bad usage or configuration.
"""
from __future__ import annotations

import os
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="vad: find and localize anomalous events in recorded surveillance video.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
console = Console()
EXIT_SOME_FAILED = 3
EXIT_CONFIG = 2

ConfigOpt = typer.Option(None, "--config", help="YAML settings file (flags > VAD_* env > file)")
OutOpt = typer.Option(None, "--out", help="output root URL (default ./vad-data)")
DaskOpt = typer.Option(None, "--dask-address", help="existing Dask scheduler, e.g. tcp://scheduler:8786")
WorkersOpt = typer.Option(None, "--workers", help="LocalCluster worker processes (default 1)")
GpuOpt = typer.Option(None, "--gpu-tasks/--no-gpu-tasks", help="tasks ask Dask for the GPU resource")


def _prefect_defaults() -> None:
    # the first ephemeral-server start on a fresh machine migrates SQLite and can take over 20 s
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
    import logging

    logging.getLogger("distributed").setLevel(logging.WARNING)


def _settings(**flags):
    from .settings import ConfigError, load_settings

    try:
        return load_settings(**flags)
    except ConfigError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(EXIT_CONFIG) from None


def print_summary(summary: dict, title: str) -> None:
    counts = summary["counts"]
    table = Table(title=f"{title} — run {summary['run_id']}")
    columns = ("done", "skipped", "failed", "quarantined")
    for col in columns:
        table.add_column(col, justify="right")
    table.add_row(*(str(counts.get(c, 0)) for c in columns))
    console.print(table)
    for video_id, error in summary.get("failed", {}).items():
        console.print(f"[red]failed[/red] {video_id}: {error}")
    for video_id, error in summary.get("quarantined", {}).items():
        console.print(f"[yellow]quarantined earlier[/yellow] {video_id}: {error} (--force retries)")


def exit_for(summary: dict) -> None:
    if summary["counts"].get("failed"):
        raise typer.Exit(EXIT_SOME_FAILED)


@app.callback()
def main() -> None:
    """vad: find and localize anomalous events in recorded surveillance video."""
    _prefect_defaults()


@app.command()
def extract(
    archive: str = typer.Option(..., "--archive", help="archive root URL (folder or s3://bucket/prefix)"),
    out: Optional[str] = OutOpt,
    backbone: Optional[str] = typer.Option(None, help="r3d_18, mc3_18, r2plus1d_18, s3d, mvit_v2_s"),
    weights: Optional[str] = typer.Option(None, help="random | torchvision enum name | local file"),
    clip_len: Optional[int] = typer.Option(None, "--clip-len"),
    stride: Optional[int] = typer.Option(None),
    size: Optional[int] = typer.Option(None, help="crop size (default: the backbone's)"),
    tokens: Optional[bool] = typer.Option(None, "--tokens/--no-tokens", help="store spatial token maps"),
    dask_address: Optional[str] = DaskOpt,
    workers: Optional[int] = WorkersOpt,
    gpu_tasks: Optional[bool] = GpuOpt,
    force: Optional[bool] = typer.Option(None, "--force/--no-force", help="re-extract current videos"),
    config: Optional[str] = ConfigOpt,
) -> None:
    """Extract per-clip action features of every new or changed video into <out>/features/<extractor_id>/."""
    from .extract_flow import extract_features

    settings = _settings(config_file=config, archive=archive, out=out, backbone=backbone, weights=weights,
                         clip_len=clip_len, stride=stride, size=size, tokens=tokens, dask_address=dask_address,
                         workers=workers, gpu_tasks=gpu_tasks, force=force)
    if settings.extractor.is_random:
        console.print(f"[yellow]note:[/yellow] {settings.backbone} is random-initialised (seed {settings.seed}); "
                      "pretrained weights cannot be downloaded here")
    summary = extract_features(settings)
    console.print(f"features: {settings.out}/features/{summary['extractor_id']}/")
    print_summary(summary, "extract")
    exit_for(summary)


if __name__ == "__main__":
    app()
