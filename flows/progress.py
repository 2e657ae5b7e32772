"""Progress over Prefect futures, and the closing summary line.

A run outlives its terminal: a deployed run's stdout and stderr are pipes to the Prefect worker, and when the
worker dies they break. So the live bar is drawn only on a terminal (elsewhere a line per tenth of the work goes
to the flow-run log), and nothing written to a broken or closed stream ever stops a run (`survive_lost_output`).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

console = Console(stderr=True)
log = logging.getLogger("vad.progress")
POLL_S = 2.0


class _Survivor:
    """A text stream that drops what it cannot write once its reader is gone (EPIPE, a closed file)."""

    def __init__(self, stream: TextIO):
        self._stream, self.lost = stream, False

    def write(self, text: str) -> int:
        if not self.lost:
            try:
                return self._stream.write(text)
            except (OSError, ValueError):
                self.lost = True
        return len(text)

    def flush(self) -> None:
        if not self.lost:
            try:
                self._stream.flush()
            except (OSError, ValueError):
                self.lost = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def survive_lost_output() -> None:
    """Writes to a stdout/stderr whose reader died are dropped instead of raising (a killed Prefect worker must
    not take its flow run with it). Log handlers hold the streams they were made with, so theirs are wrapped too:
    Prefect's console handler prints with rich, whose answer to a broken pipe is `SystemExit(1)`."""
    originals = {}
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not isinstance(stream, _Survivor):
            originals[id(stream)] = _Survivor(stream)
            setattr(sys, name, originals[id(stream)])
    for stream in (sys.__stdout__, sys.__stderr__):
        if stream is not None and id(stream) not in originals:
            originals[id(stream)] = _Survivor(stream)
    loggers = [
        logging.getLogger(),
        *(x for x in logging.Logger.manager.loggerDict.values() if isinstance(x, logging.Logger)),
    ]
    for handler in {h for logger in loggers for h in logger.handlers}:
        if isinstance(handler, logging.StreamHandler) and id(handler.stream) in originals:
            survivor = originals[id(handler.stream)]
            handler.setStream(survivor)  # type: ignore[arg-type]
            rich_console = getattr(handler, "console", None)
            if isinstance(rich_console, Console):
                rich_console.file = survivor  # type: ignore[assignment]


def _bar_on_terminal(description: str, total: int) -> Callable[[int], None]:
    """An advance(n) callable: a rich bar on a terminal, else a log line at every tenth of `total`."""
    if console.is_terminal:
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        progress = Progress(*columns, console=console, transient=False)
        progress.start()
        bar = progress.add_task(description, total=total)
        advance = lambda n: (progress.advance(bar, n), progress.refresh())  # noqa: E731
        advance.stop = progress.stop  # type: ignore[attr-defined]
        return advance
    done = [0, 0]  # items done, tenths logged

    def advance_lines(n: int) -> None:
        done[0] += n
        tenth = done[0] * 10 // max(total, 1)
        if tenth > done[1] or done[0] >= total:
            done[1] = tenth
            _log_line(f"{description}: {done[0]}/{total}")

    advance_lines.stop = lambda: None  # type: ignore[attr-defined]
    return advance_lines


def wait_with_progress(
    futures: list,
    description: str,
    sizes: list[int] | None = None,
    stalled: Callable[[], str | None] | None = None,
    abandoned: Callable[[int, str], Any] | None = None,
) -> list:
    """Results in completion order, with progress (done/total videos, with `sizes`: each future's count).
    `stalled()`, asked every few seconds, returns a reason when the futures left can never finish (every GPU worker
    gone for longer than allowed): they are cancelled and `abandoned(i, reason)` stands for future i's result."""
    from prefect.futures import wait  # here: `say` is used where Prefect is never loaded

    sizes = sizes or [1] * len(futures)
    position = {id(f): i for i, f in enumerate(futures)}
    results: list = []
    pending = list(futures)
    advance = _bar_on_terminal(description, sum(sizes))
    try:
        while pending:
            done, not_done = wait(pending, timeout=POLL_S)
            for future in done:
                results.append(future.result())
                advance(sizes[position[id(future)]])
            pending = list(not_done)
            reason = stalled() if (pending and stalled) else None
            if reason and abandoned:
                for future in pending:
                    _cancel(future)
                    results.append(abandoned(position[id(future)], reason))
                    advance(sizes[position[id(future)]])
                pending = []
    finally:
        advance.stop()  # type: ignore[attr-defined]
    return results


def _cancel(future: Any) -> None:
    try:
        future.wrapped_future.cancel()
    except Exception:  # already gone with its worker
        pass


class GpuWatch:
    """`stalled` for GPU tasks on a Dask cluster: a reason once no worker has offered the GPU resource for
    `wait_s` seconds; a GPU worker that comes back in time resets the clock."""

    def __init__(self, runner: Any, wait_s: float):
        self.runner, self.wait_s = runner, wait_s
        self.missing_since: float | None = None

    def __call__(self) -> str | None:
        try:
            workers = self.runner.client.scheduler_info(n_workers=-1).get("workers", {}).values()
        except Exception:  # the scheduler cannot tell now: not a verdict
            return None
        if any(w.get("resources", {}).get("GPU", 0) >= 1 for w in workers):
            self.missing_since = None
            return None
        now = time.monotonic()
        if self.missing_since is None:
            self.missing_since = now
            log.warning("no Dask worker offers the GPU resource; waiting up to %g s for one", self.wait_s)
        if now - self.missing_since >= self.wait_s:
            return f"no GPU worker on the Dask cluster for {self.wait_s:g} s (cluster.gpu_wait_s): lost mid-run"
        return None


def _log_line(message: str) -> None:
    """To the flow-run log when in a flow run (what an operator reads in Prefect), else to the terminal."""
    try:
        from prefect import get_run_logger

        get_run_logger().info(message)
    except Exception:
        say(message)


def say(message: str) -> None:
    """Print to the terminal (and to nothing once the terminal is gone). Flow functions call this rather than
    holding `console` themselves: Prefect ships a flow's function (and the globals it names) to Dask workers, and a
    Console holds a lock that cannot be pickled."""
    try:
        console.print(message, markup=False)
    except (OSError, ValueError):
        pass
