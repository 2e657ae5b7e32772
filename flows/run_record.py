"""What one run records, whatever happens: `runs/<run_id>/started.json` first, the output's lease while it
works, the index of the model's reports and the manifest at the end (or at once when the run is stopped), and
the webhook summary. No Prefect here: a scan with nothing new is recorded without orchestration."""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from anomaly_models.errors import VadError
from tasks.jobs.plan import Plan
from tasks.jobs.report_index import mark_pending, update_index
from tasks.store.lease import Lease, OutputBusy
from tasks.store.manifest import (
    DONE,
    FAILED,
    INTERRUPTED,
    QUARANTINED,
    VideoOutcome,
    failure_reason,
    merge_outcomes,
    new_run_id,
    write_manifest,
)
from tasks.store.output import OutputStore
from tasks.store.storage import StorageError, describe

from .dead_runs import holder_is_dead, this_flow_run_id
from .notify import post_summary
from .settings import ClusterSettings
from .stopping import interruptions

NO_OUTCOME = "no outcome: planned, but no task reported on it (a lost task result); the next run redoes it"


class RunRecord:
    """One run's record: `runs/<run_id>/started.json` before any work (an output that cannot be written stops the
    run there, with one clear line), and the manifest at the end, or, when the run is interrupted (SIGTERM,
    Ctrl-C, a crash), at once, with every planned video that did not finish as `interrupted`."""

    def __init__(
        self,
        store: OutputStore,
        flow: str,
        info: dict[str, Any],
        cluster: ClusterSettings,
        webhook: str | None = None,
        last_stage: str = "report",
    ):
        self.store, self.info = store, {"flow": flow, **info}
        self.run_id = new_run_id(flow)
        self.outcomes: list[VideoOutcome] = []
        self.planned: set[str] = set()
        self.written: dict | None = None
        self.webhook = webhook
        self.last_stage = last_stage  # a planned video is finished when it has an outcome of this stage
        self._depth = 0
        store.check_writable(self.run_id, self.info)
        try:
            flow_run_id = this_flow_run_id()
            owner = {"flow_run_id": flow_run_id} if flow_run_id else {}
            lease = Lease(store, self.run_id, cluster.lease_ttl_s, owner=owner, holder_dead=holder_is_dead)
            self.lease = lease.acquire(cluster.lease_wait_s)
        except OutputBusy:
            self._try(lambda: store.delete_run(self.run_id))  # a refused run leaves no trace
            raise

    def abandon(self) -> None:
        """Leave no trace: the run was only a look (a quick scan that found work hands over to the scan flow)."""
        self._try(self.lease.release)
        self._try(lambda: self.store.delete_run(self.run_id))

    def plan(self, plan: Plan, index_model: str | None = None) -> None:
        """Record what the run will do; with `index_model`, mark the videos it may report as pending in that
        model's index first, so a run that dies before `finish` is indexed by the next one."""
        self.outcomes += plan.outcomes
        self.planned |= {e.video_id for e in plan.extract} | set(plan.score) | set(plan.report)
        if index_model and self.planned:
            mark_pending(self.store, index_model, self.run_id, self.planned)

    @contextmanager
    def guard(self) -> Iterator[None]:
        """Around the work: whatever stops it, the manifest is written first (then the cluster may close). Guards
        nest (outside and inside the cluster's block); the outermost one releases the lease, after the cluster has
        closed, so no task of this run still writes when another run may start."""
        self._depth += 1
        try:
            yield
        except BaseException as exc:
            if self.written is None:
                stopped = isinstance(exc, interruptions())
                reason = "interrupted" if stopped else f"run failed: {failure_reason(exc)}"
                self.outcomes += [VideoOutcome(v, INTERRUPTED, "run", error=reason) for v in self.unfinished()]
                if not stopped and not isinstance(exc, VadError):  # a bug: its traceback goes with the run
                    self._try(lambda: self.store.write_bytes(self.store.run_file(self.run_id, "traceback.txt"),
                                                             traceback.format_exc().encode()))  # fmt: skip
                self._try(lambda: self._write({"interrupted": reason, "index": None}))
                self._try(self._notify)
            if self._depth == 1:
                self._try(self.lease.release)
            raise
        finally:
            self._depth -= 1

    def unfinished(self) -> list[str]:
        """Planned videos with neither a failure nor an outcome of the run's last stage."""
        last = self.last_stage
        finished = {o.video_id for o in self.outcomes if o.status in (FAILED, QUARANTINED) or o.stage == last}
        return sorted(self.planned - finished)

    def _try(self, write: Callable[[], Any]) -> None:
        try:
            write()
        except Exception:  # the original error is what the operator must see; the manifest is best effort now
            pass

    def _write(self, info: dict[str, Any]) -> dict:
        try:
            self.written = write_manifest(self.store, self.run_id, merge_outcomes(self.outcomes), {**self.info, **info})
        except VadError:
            raise
        except Exception as exc:
            raise StorageError(
                f"storage: cannot write the run manifest under {self.store.root}: {describe(exc)}"
            ) from None
        return self.written

    def finish(self, index_model: str | None = None, **info: Any) -> dict:
        """The index of `index_model` grown by the reports this run wrote (only those are read) and the manifest;
        returns the summary."""
        # every planned video ends with exactly one status: one that no task reported on is a failure, never a gap
        self.outcomes += [VideoOutcome(v, FAILED, "run", error=NO_OUTCOME) for v in self.unfinished()]
        try:
            index, alerts = self._index(index_model) if index_model else (None, None)
            return self._write({**info, "index": index, "alerts": alerts})
        finally:  # all tasks have finished here; cleanup never turns a finished run into a failure
            self._try(self.lease.release)
            self._try(self._notify)

    def _index(self, model_id: str) -> tuple[str, str | None]:
        """index.html, and this run's alerts page when it reported anything."""
        reported = [o.video_id for o in self.outcomes if o.stage == "report" and o.status == DONE]
        index = update_index(self.store, model_id, self.run_id, reported)
        alerts = self.store.alerts_page(model_id, self.run_id)
        return index, (alerts if self.store.exists(alerts) else None)

    def _notify(self) -> None:
        if self.webhook and self.written is not None:
            post_summary(self.webhook, self.written)
