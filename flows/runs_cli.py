"""`vad runs` and `vad runs show RUN_ID`: what the output's recent runs did, read back from `runs/`
(tasks/store/run_history.py). No Prefect and no torch: it answers in a second or two, also while a run works.

flows/cli.py imports this module while it loads, so nothing here imports flows.cli at import time; the commands go
through cli's `handled` when they run (the same one-line errors and exit codes as every other command).
"""

from __future__ import annotations

import functools
import importlib
import json
import sys
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any, Optional, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table

if TYPE_CHECKING:  # imported when a command runs: every `vad` command loads this module
    from tasks.store.output import OutputStore
    from tasks.store.run_history import RunInfo

app = typer.Typer(pretty_exceptions_enable=False)  # its help: the `runs` callback's docstring
console = Console()

OutOpt = typer.Option(None, "--out", help="output root URL (default ./vad-data)")
ConfigOpt = typer.Option(None, "--config", help="YAML settings file (flags > VAD_* env > file)")
JsonOpt = typer.Option(False, "--json", help="print JSON instead of a table")
STYLES = {"completed": "green", "interrupted": "yellow", "running": "cyan"}  # died, with failures: red
SHOWN_FAILURES = 3  # failed videos named per run under the table (`vad runs show` names them all)

F = TypeVar("F", bound=Callable[..., Any])


def _cli() -> ModuleType:
    """The loaded flows.cli. Run as `python -m flows.cli` it is `__main__`: importing it again would load a second
    copy, with its own --debug flag."""
    main = sys.modules.get("__main__")
    if getattr(getattr(main, "__spec__", None), "name", None) == "flows.cli":
        return main  # type: ignore[return-value]
    return importlib.import_module("flows.cli")


def handled(command: F) -> F:
    """flows.cli.handled, applied when the command runs (it cannot be imported while cli loads this module)."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        return _cli().handled(command)(*args, **kwargs)

    return run  # type: ignore[return-value]


def _store(config: str | None, out: str | None) -> OutputStore:
    from .settings import load_settings

    return load_settings(config, out=out).store


@app.callback(invoke_without_command=True)
@handled
def runs(
    ctx: typer.Context,
    out: Optional[str] = OutOpt,
    config: Optional[str] = ConfigOpt,
    limit: int = typer.Option(20, "--limit", min=1, help="how many runs, newest first"),
    as_json: bool = JsonOpt,
) -> None:
    """List the output's recent runs, newest first: start, end, state (completed, completed with failures,
    interrupted, running, died), counts, failed videos and alerts page. `vad runs show RUN_ID` shows one in full."""
    ctx.obj = {"out": out, "config": config, "as_json": as_json}  # `vad runs --out X show ID` works too
    if ctx.invoked_subcommand is not None:
        return
    from tasks.store.run_history import list_runs

    store = _store(config, out)
    found = list_runs(store, limit)
    if as_json:
        _print_json([run.as_json() for run in found])
    elif not found:
        console.print(f"no runs under {store.root}", markup=False, soft_wrap=True)
    else:
        _print_wide(_table(found, store.root))
        for run in found:
            _print_failures_briefly(run)


@app.command()
@handled
def show(
    ctx: typer.Context,
    run_id: str = typer.Argument(..., help="a run id, as `vad runs` lists it"),
    out: Optional[str] = OutOpt,
    config: Optional[str] = ConfigOpt,
    as_json: bool = JsonOpt,
) -> None:
    """One run in full: state, times, counts, every failed, quarantined and interrupted video with its reason, the
    alerts page, the index and, after a crash, the traceback file."""
    from tasks.store.run_history import find_run

    given = ctx.obj or {}
    run = find_run(_store(config or given.get("config"), out or given.get("out")), run_id)
    if as_json or given.get("as_json"):
        _print_json(run.as_json())
    else:
        _print_run(run)


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2))


def _ordered(counts: dict[str, int]) -> dict[str, int]:
    from tasks.store.run_history import COUNTS

    return {k: counts[k] for k in (*COUNTS, *sorted(counts)) if k in counts}


def _when(iso: str | None) -> str:
    """ISO times in UTC without the noise: `2026-12-02 12:01:41`."""
    return iso.replace("T", " ").removesuffix("+00:00") if iso else "-"


def _state(run: RunInfo) -> str:
    return f"[{STYLES.get(run.state, 'red')}]{escape(run.state)}[/]"


def _table(found: list[RunInfo], root: str) -> Table:
    from tasks.store.run_history import COUNTS

    table = Table(title=f"runs under {escape(root)} (newest first, times UTC)")
    table.add_column("run id", no_wrap=True)
    for name in ("flow", "started", "finished", "state"):
        table.add_column(name)
    for name in COUNTS:
        table.add_column(name, justify="right")
    table.add_column("alerts page", overflow="fold")
    for run in found:
        counts = [str(run.counts.get(c, 0)) if run.counts else "-" for c in COUNTS]
        cells = [run.run_id, run.flow, _when(run.started_at), _when(run.finished_at)]
        table.add_row(*map(escape, cells), _state(run), *counts, escape(run.alerts or "-"))
    return table


def _print_wide(table: Table) -> None:
    """One line per run, also in a narrow terminal or a pipe (80 columns): rows folded into ribbons of letters
    are unreadable, and URLs cut in pieces cannot be copied."""
    natural = Measurement.get(console, console.options.update_width(10_000), table).maximum
    width = console.width
    console.width = max(width, natural)  # print(width=) cannot go past the terminal's
    try:
        console.print(table)
    finally:
        console.width = width


def _print_failures_briefly(run: RunInfo) -> None:
    if run.failed:
        names = list(run.failed)
        more = f" and {len(names) - SHOWN_FAILURES} more" if len(names) > SHOWN_FAILURES else ""
        listed = ", ".join(names[:SHOWN_FAILURES])
        console.print(f"{run.run_id}: failed {listed}{more} (vad runs show {run.run_id})", markup=False, soft_wrap=True)
    if run.held_by:
        console.print(f"{run.run_id}: running on {run.held_by}", markup=False, soft_wrap=True)


def _print_run(run: RunInfo) -> None:
    console.print(f"run {escape(run.run_id)} ({escape(run.flow)}): {_state(run)}")
    lines = {
        "started": _when(run.started_at),
        "finished": _when(run.finished_at),
        "model": run.model_id,
        "counts": ", ".join(f"{k} {n}" for k, n in _ordered(run.counts).items()) if run.counts else None,
        "stopped": run.interrupted,
        "running on": run.held_by,
        "alerts page": run.alerts or "none",
        "index": run.index or "none",
        "traceback": run.traceback,
        "chunks": ", ".join(run.chunks) or None,
    }
    for label, value in lines.items():
        if value is not None:
            console.print(f"  {label}: {value}", markup=False, soft_wrap=True)  # URLs stay whole
    for title, videos in (
        ("failed", run.failed),
        ("quarantined", run.quarantined),
        ("interrupted", run.interrupted_videos),
    ):
        if videos:
            console.print(f"{title} videos ({len(videos)}):", markup=False)
            for video_id, reason in videos.items():
                console.print(f"  {video_id}: {reason}", markup=False, soft_wrap=True)
