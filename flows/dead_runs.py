"""Runs that died are not left Running for ever: when `vad serve` starts, runs of its deployment that Prefect still
shows as Running (or Pending) while no live run holds the output's lease were killed with their process (a
SIGKILL, a lost machine): they are marked Crashed, saying why."""

from __future__ import annotations

import logging
import time

from tasks.store.output import OutputStore

log = logging.getLogger(__name__)


def lease_is_live(store: OutputStore) -> bool:
    try:
        lease = store.read_json(store.lease_file())
    except (FileNotFoundError, ValueError):
        return False
    return float(lease.get("expires", 0)) > time.time()


def mark_dead_runs(deployment_id, store: OutputStore) -> list[str]:
    """Crashes this deployment's Running/Pending runs when the output's lease is not held; returns their ids."""
    from prefect import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.states import Crashed

    if lease_is_live(store):
        return []
    marked = []
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.RUNNING, StateType.PENDING]))
            ),
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
        )
        for run in runs:
            message = "found running when vad serve started, but no live run holds the output's lease: its process died"
            client.set_flow_run_state(run.id, Crashed(message=message), force=True)
            log.warning("flow run %s (%s) marked Crashed: %s", run.name, run.id, message)
            marked.append(str(run.id))
    return marked
