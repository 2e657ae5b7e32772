"""Task runners: a LocalCluster by default, an existing Dask cluster when an address is given.

Flows plan first (discovery, staleness) and enter the Dask runner only when there is work, so a nightly scan
with nothing new costs no cluster start.

GPU tasks ask for the `GPU` Dask resource; on a LocalCluster the workers then declare GPU=1 each so those tasks
can run (on CPU with a warning when no CUDA device is visible).

Dask and prefect-dask (about 0.5 s to import) are imported when a runner is started, not with this module.
"""

from __future__ import annotations

import contextvars
import logging
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Any

from anomaly_models.errors import RefusedJob, UsageError

from .settings import ClusterSettings

if TYPE_CHECKING:
    from prefect_dask import DaskTaskRunner

log = logging.getLogger(__name__)


def task_runner(cluster: ClusterSettings) -> DaskTaskRunner:
    from prefect_dask import DaskTaskRunner

    if cluster.dask_address:
        return DaskTaskRunner(address=cluster.dask_address)
    cluster_kwargs: dict[str, Any] = {
        "n_workers": cluster.workers,
        "threads_per_worker": 1,
        "processes": True,
        "dashboard_address": cluster.dashboard_address,
        "silence_logs": 40,
    }
    if cluster.gpu_tasks:
        cluster_kwargs["resources"] = {"GPU": 1}
    return DaskTaskRunner(cluster_class="distributed.LocalCluster", cluster_kwargs=cluster_kwargs)


@contextmanager
def gpu_resource(enabled: bool) -> Iterator[None]:
    """Around a submit: the task only lands on workers started with --resources GPU=1."""
    if enabled:
        import dask

        with dask.annotate(resources={"GPU": 1}):
            yield
    else:
        yield


def wait_for_gpu_worker(cluster: ClusterSettings) -> None:
    """With --gpu-tasks on an existing cluster, GPU tasks run only on workers started with `--resources GPU=1`:
    without one they would wait for ever. Wait at most `gpu_wait_s` for such a worker, then refuse the run."""
    if not (cluster.gpu_tasks and cluster.dask_address):
        return
    from distributed import Client

    deadline = time.monotonic() + cluster.gpu_wait_s
    with Client(cluster.dask_address, timeout=30) as client:
        while True:
            workers = client.scheduler_info().get("workers", {}).values()
            if any(w.get("resources", {}).get("GPU", 0) >= 1 for w in workers):
                return
            if time.monotonic() >= deadline:
                raise RefusedJob(
                    f"--gpu-tasks: no worker of the Dask cluster at {cluster.dask_address} offers the GPU resource "
                    f"(waited {cluster.gpu_wait_s:g} s); start one with `dask worker ... --resources GPU=1`"
                )
            time.sleep(1.0)


@contextmanager
def dask_runner(cluster: ClusterSettings) -> Iterator[DaskTaskRunner]:
    """A started DaskTaskRunner for submitting Prefect tasks from inside a running flow. Closing it is best
    effort: the run's work and manifest are done by then, so a cluster that fails to close cleanly is a warning,
    never a failed run."""
    try:
        wait_for_gpu_worker(cluster)
        runner = task_runner(cluster)
        runner.__enter__()
    except (OSError, TimeoutError) as exc:  # an address nothing answers at: configuration, not a bug
        where = cluster.dask_address or "a LocalCluster"
        raise UsageError(f"dask_address: cannot start or reach the Dask cluster ({where}): {exc}") from None
    try:
        yield runner
    except BaseException:
        _close(runner, sys.exc_info())
        raise
    _close(runner, (None, None, None))


CLOSE_TIMEOUT_S = 60.0


def _close(runner: DaskTaskRunner, exc_info: Any, timeout_s: float = CLOSE_TIMEOUT_S) -> None:
    """Close the runner (client and LocalCluster) within `timeout_s`; past it the run goes on without waiting (the
    worker processes are the cluster's children and end with this process)."""
    errors: list[BaseException] = []

    def close() -> None:
        try:
            runner.__exit__(*exc_info)
        except BaseException as exc:
            errors.append(exc)

    context = contextvars.copy_context()  # the flow run's context, as the runner had it
    closer = threading.Thread(target=context.run, args=(close,), name="vad-close-cluster", daemon=True)
    closer.start()
    closer.join(timeout_s)
    if closer.is_alive():
        log.warning("the Dask cluster did not close within %g s; going on without it", timeout_s)
    elif errors:
        log.warning("the Dask cluster did not close cleanly: %s: %s", errors[0].__class__.__name__, errors[0])


class SharedCluster:
    """A Dask runner started on first use and kept for later runs (a backfill's chunks), closed at the end."""

    def __init__(self, cluster: ClusterSettings):
        self.cluster = cluster
        self._stack: ExitStack | None = None
        self._runner: DaskTaskRunner | None = None

    def __enter__(self) -> SharedCluster:
        self._stack = ExitStack()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._stack is not None:
            self._stack.close()

    @contextmanager
    def runner(self) -> Iterator[DaskTaskRunner]:
        """The shared runner (started now if needed); without an enclosing `with`, one just for this block."""
        if self._stack is None:
            with dask_runner(self.cluster) as runner:
                yield runner
            return
        if self._runner is None:
            self._runner = self._stack.enter_context(dask_runner(self.cluster))
        yield self._runner


def worker_count(runner: DaskTaskRunner, configured: int, gpu: bool = False) -> int:
    """The workers that can take the run's tasks now (with `gpu`, those offering the GPU resource); `configured`
    when none is connected yet or the cluster cannot tell."""
    try:
        workers = list(runner.client.scheduler_info().get("workers", {}).values())
    except Exception:
        return configured
    if gpu:
        workers = [w for w in workers if w.get("resources", {}).get("GPU", 0) >= 1]
    return len(workers) or configured


def submit(runner: DaskTaskRunner, task: Any, gpu: bool = False, **parameters: Any) -> Any:
    with gpu_resource(gpu):
        return runner.submit(task, parameters)
