"""Runs that died are not left Running for ever: when `vad serve` starts, runs of its deployment that Prefect still
shows as Running (or Pending) while no live run holds the output's lease were killed with their process (a
SIGKILL, a lost machine): they are marked Crashed, saying why."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tasks.store.output import OutputStore

log = logging.getLogger(__name__)


def lease_is_live(store: OutputStore) -> bool:
    from tasks.store.run_history import live_lease  # pyarrow: not on the CLI's import path

    return live_lease(store) is not None


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


# --- the worker path: Prefect's own zombie detection, and the output's lease of a run known dead ----------------

DEAD_RUN_AUTOMATION = "vad: crash flow runs without heartbeats"
HEARTBEAT_S = 30  # PREFECT_FLOWS_HEARTBEAT_FREQUENCY of deployed runs (prefect.yaml; Prefect's minimum is 30)
DEAD_AFTER_S = 3 * HEARTBEAT_S


def dead_run_automation(within_s: float = DEAD_AFTER_S):
    """Prefect's recipe for zombie flow runs, limited to vad's runs (tag `vad`): a flow run whose process stops
    sending heartbeats (killed with its worker, a lost machine) and says nothing else for `within_s` is marked
    Crashed by the server. Crashed is terminal, so the deployment's concurrency slot is released with it, and the
    next run takes the dead run's output lease at once (`holder_is_dead`)."""
    from datetime import timedelta

    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

    return AutomationCore(
        name=DEAD_RUN_AUTOMATION,
        description="vad: a flow run with no heartbeat and no other event for this long died with its process",
        enabled=True,
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            expect={"prefect.flow-run.*"},
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related={"prefect.resource.role": "tag", "prefect.resource.id": "prefect.tag.vad"},
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=within_s),
        ),
        actions=[
            ChangeFlowRunState(
                state=StateType.CRASHED,
                message=f"no heartbeat for {within_s:g} s: the flow run's process died (killed with its worker?)",
            )
        ],
    )


def ensure_dead_run_automation() -> bool:
    """Create the automation when the server has none of that name (every deployed run asks: the first one on a
    new server creates it); returns whether it was created. Best effort: a server that refuses is a warning."""
    from prefect import get_client

    try:
        with get_client(sync_client=True) as client:
            if client.read_automations_by_name(DEAD_RUN_AUTOMATION):
                return False
            client.create_automation(dead_run_automation())
            log.info("created the Prefect automation %r", DEAD_RUN_AUTOMATION)
            return True
    except Exception as exc:
        log.warning("could not check or create the automation %r: %s", DEAD_RUN_AUTOMATION, exc)
        return False


def this_flow_run_id() -> str | None:
    """The Prefect flow run this process runs, when it runs one (never imports Prefect itself)."""
    if "prefect.runtime" not in sys.modules and "prefect.flows" not in sys.modules:
        return None
    from prefect.runtime import flow_run

    return str(flow_run.id) if flow_run.id else None


def holder_is_dead(lease: dict) -> bool:
    """A lease whose holder's flow run has ended (Crashed by the automation, or any final state) belongs to a dead
    process: a live run releases its lease before its flow run ends."""
    run_id = lease.get("flow_run_id")
    if not run_id or "prefect.flows" not in sys.modules:
        return False
    from prefect import get_client

    try:
        with get_client(sync_client=True) as client:
            state = client.read_flow_run(run_id).state
    except Exception:  # cannot tell: wait for the expiry as before
        return False
    if state is not None and state.is_final():
        log.warning("taking over the output's lease of run %s: its flow run %s is %s", lease.get("run_id"),
                    run_id, state.name)  # fmt: skip
        return True
    return False
