"""Progress over Prefect futures with rich, and the closing summary line."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

console = Console(stderr=True)


def wait_with_progress(futures, description: str, sizes: list[int] | None = None) -> list:
    """Results in completion order; a rich bar shows done/total (videos, with `sizes`: each future's count)."""
    from prefect.futures import as_completed  # here: `say` is used where Prefect is never loaded

    weight = {id(f): n for f, n in zip(futures, sizes or [1] * len(futures))}
    results = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        bar = progress.add_task(description, total=sum(weight.values()))
        for future in as_completed(futures):
            results.append(future.result())
            progress.advance(bar, weight[id(future)])
    return results


def say(message: str) -> None:
    """Print to the terminal. Flow functions call this rather than holding `console` themselves: Prefect ships a
    flow's function (and the globals it names) to Dask workers, and a Console holds a lock that cannot be pickled."""
    console.print(message, markup=False)
