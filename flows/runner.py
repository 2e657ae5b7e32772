"""Task runners: a LocalCluster by default, an existing Dask cluster when an address is given.

Flows plan first (discovery, staleness) and enter the Dask runner only when there is work, so a nightly scan
with nothing new costs no cluster start.

GPU tasks ask for the `GPU` Dask resource; on a LocalCluster the workers then declare GPU=1 each so those tasks
can run (on CPU with a warning when no CUDA device is visible).
"""
from __future__ import annotations

from contextlib import contextmanager

import dask
from prefect_dask import DaskTaskRunner


def task_runner(dask_address: str | None, workers: int = 1, gpu_tasks: bool = False) -> DaskTaskRunner:
    if dask_address:
        return DaskTaskRunner(address=dask_address)
    cluster_kwargs = {"n_workers": workers, "threads_per_worker": 1, "processes": True,
                      "dashboard_address": ":0", "silence_logs": 40}
    if gpu_tasks:
        cluster_kwargs["resources"] = {"GPU": 1}
    return DaskTaskRunner(cluster_class="distributed.LocalCluster", cluster_kwargs=cluster_kwargs)


@contextmanager
def gpu_resource(enabled: bool):
    """Around a submit: the task only lands on workers started with --resources GPU=1."""
    if enabled:
        with dask.annotate(resources={"GPU": 1}):
            yield
    else:
        yield


def threaded_map(fn, items, workers: int = 16) -> list:
    """Per-video planning checks are small object-store reads (footers, HEADs); doing them concurrently keeps a
    nightly scan of thousands of videos from waiting on one round trip at a time. Results keep the input order."""
    items = list(items)
    if len(items) < 2:
        return [fn(i) for i in items]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        return list(pool.map(fn, items))


@contextmanager
def dask_runner(dask_address: str | None, workers: int = 1, gpu_tasks: bool = False):
    """A started DaskTaskRunner for submitting Prefect tasks from inside a running flow."""
    with task_runner(dask_address, workers, gpu_tasks) as runner:
        yield runner


def submit(runner: DaskTaskRunner, task, gpu: bool = False, **parameters):
    with gpu_resource(gpu):
        return runner.submit(task, parameters)
