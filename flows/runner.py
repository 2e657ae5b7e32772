"""Task runners: a LocalCluster by default, an existing Dask cluster when an address is given.

Flows plan first (discovery, staleness) and enter the Dask runner only when there is work, so a nightly scan
with nothing new costs no cluster start.

GPU tasks ask for the `GPU` Dask resource; on a LocalCluster the workers then declare GPU=1 each so those tasks
can run (on CPU with a warning when no CUDA device is visible).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dask
from prefect_dask import DaskTaskRunner

from .settings import ClusterSettings


def task_runner(cluster: ClusterSettings) -> DaskTaskRunner:
    if cluster.dask_address:
        return DaskTaskRunner(address=cluster.dask_address)
    cluster_kwargs: dict[str, Any] = {
        "n_workers": cluster.workers,
        "threads_per_worker": 1,
        "processes": True,
        "dashboard_address": ":0",
        "silence_logs": 40,
    }
    if cluster.gpu_tasks:
        cluster_kwargs["resources"] = {"GPU": 1}
    return DaskTaskRunner(cluster_class="distributed.LocalCluster", cluster_kwargs=cluster_kwargs)


@contextmanager
def gpu_resource(enabled: bool) -> Iterator[None]:
    """Around a submit: the task only lands on workers started with --resources GPU=1."""
    if enabled:
        with dask.annotate(resources={"GPU": 1}):
            yield
    else:
        yield


@contextmanager
def dask_runner(cluster: ClusterSettings) -> Iterator[DaskTaskRunner]:
    """A started DaskTaskRunner for submitting Prefect tasks from inside a running flow."""
    with task_runner(cluster) as runner:
        yield runner


def submit(runner: DaskTaskRunner, task: Any, gpu: bool = False, **parameters: Any) -> Any:
    with gpu_resource(gpu):
        return runner.submit(task, parameters)
