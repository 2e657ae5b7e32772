"""The one way through a run, shared by extract, score, scan and backfill: submit a plan's extraction, then
score and report, then write the index and the run manifest."""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from prefect.exceptions import TerminationSignal
from prefect.states import Completed
from prefect_dask import DaskTaskRunner

from anomaly_models.errors import VadError
from tasks.jobs.plan import Plan, check_inputs
from tasks.jobs.report import write_index
from tasks.jobs.score import ScoreJob
from tasks.store.lease import Lease, OutputBusy
from tasks.store.manifest import (
    DONE,
    INTERRUPTED,
    VideoOutcome,
    failure_reason,
    merge_outcomes,
    new_run_id,
    write_manifest,
)
from tasks.store.output import OutputStore
from tasks.store.storage import StorageError, describe

from .notify import post_summary
from .progress import wait_with_progress
from .runner import submit
from .settings import ClusterSettings, Settings
from .work import extract_video_task, report_video_task, score_batch_task


def run_extraction(runner: DaskTaskRunner, plan: Plan, settings: Settings) -> list[VideoOutcome]:
    """One extraction task per planned video on the Dask runner (GPU-annotated with --gpu-tasks)."""
    if not plan.extract:
        return []
    gpu = settings.cluster.gpu_tasks
    futures = [
        submit(
            runner,
            extract_video_task,
            gpu,
            entry=entry,
            store=settings.store,
            job=settings.extract_job,
            archive=settings.archive,
            gpu_requested=gpu,
        )
        for entry in plan.extract
    ]
    return wait_with_progress(futures, "extracting")


def score_and_report(
    runner: DaskTaskRunner, job: ScoreJob, plan: Plan, settings: Settings, extracted: list[VideoOutcome] = ()
) -> list[VideoOutcome]:
    """Scores the planned videos plus those just extracted (in batches of videos per task), then reports every
    video scored now and every planned report."""
    to_score = sorted(set(plan.score) | {o.video_id for o in extracted if o.status == DONE})
    outcomes: list[VideoOutcome] = []
    if to_score:
        check_inputs(job, to_score[:1])
        gpu, size = settings.cluster.gpu_tasks, settings.model.score_batch
        futures = [
            submit(runner, score_batch_task, gpu, job=job, video_ids=to_score[i : i + size], gpu_requested=gpu)
            for i in range(0, len(to_score), size)
        ]
        outcomes += [o for batch in wait_with_progress(futures, "scoring") for o in batch]
    to_report = sorted(set(plan.report) | {o.video_id for o in outcomes if o.status == DONE})
    if to_report:
        futures = [
            submit(
                runner,
                report_video_task,
                False,
                store=job.out,
                model_id=job.card.model_id,
                video_id=vid,
                threshold=settings.model.threshold,
            )
            for vid in to_report
        ]
        outcomes += wait_with_progress(futures, "reports")
    return outcomes


def outcome(summary: dict) -> Any:
    """What a flow returns: its summary, or, when videos failed, a Completed state named CompletedWithFailures
    (message: the counts) carrying the summary, so Prefect's UI, API and automations tell it from a clean run
    while callers still get the summary."""
    failed = summary.get("counts", {}).get("failed", 0)
    if not failed:
        return summary
    total = sum(summary.get("counts", {}).values())
    return Completed(name="CompletedWithFailures", message=f"{failed} of {total} videos failed", data=summary)


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
        started = store.check_writable(self.run_id, self.info)
        try:
            self.lease = Lease(store, self.run_id, cluster.lease_ttl_s).acquire(cluster.lease_wait_s)
        except OutputBusy:
            self._try(lambda: store.delete(started))  # a refused run leaves no trace
            raise

    def plan(self, plan: Plan) -> None:
        self.outcomes += plan.outcomes
        self.planned |= {e.video_id for e in plan.extract} | set(plan.score) | set(plan.report)

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
                finished = {o.video_id for o in self.outcomes
                            if o.status in ("failed", "quarantined") or o.stage == self.last_stage}  # fmt: skip
                stopped = isinstance(exc, (KeyboardInterrupt, TerminationSignal))
                reason = "interrupted" if stopped else f"run failed: {failure_reason(exc)}"
                self.outcomes += [
                    VideoOutcome(v, INTERRUPTED, "run", error=reason) for v in sorted(self.planned - finished)
                ]
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
        """The run index (when a model's reports may have changed) and the manifest; returns the summary."""
        try:
            index = write_index(self.store, index_model) if index_model else None
            return self._write({**info, "index": index})
        finally:  # all tasks have finished here; cleanup never turns a finished run into a failure
            self._try(self.lease.release)
            self._try(self._notify)

    def _notify(self) -> None:
        if self.webhook and self.written is not None:
            post_summary(self.webhook, self.written)
