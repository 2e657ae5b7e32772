"""A scan before orchestration: the model and jobs it runs, the videos it covers, and its quick path.

A scan with nothing new (the common nightly case once the night's files are done) is planned and recorded here,
under the output's lease, with neither Prefect nor torch loaded and no API server started: about a second. Only a
scan with work runs the `scan` flow (which plans again, under its own lease: the look here holds nothing)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import timezone as dt_timezone
from typing import Any

from tasks.jobs.plan import plan_scan
from tasks.jobs.score import ScoreJob
from tasks.models.card import ModelCard
from tasks.models.inputs import InputSource
from tasks.models.repository import locate_model
from tasks.store.archive import VideoEntry
from tasks.store.manifest import FAILED, SKIPPED, VideoOutcome

from .progress import say
from .run_record import RunRecord
from .settings import Settings


@dataclass(frozen=True)
class ScanJob:
    """A scan's model and jobs: settings follow the model card (its extractor and detector), scores go to the
    output store."""

    settings: Settings
    card: ModelCard
    score: ScoreJob

    @classmethod
    def load(cls, settings: Settings, model_url: str) -> ScanJob:
        model_store, card = locate_model(model_url, settings.storage.options)
        settings = settings.for_card(card)
        out = settings.store
        source = InputSource.for_card(out, card)
        return cls(
            settings,
            card,
            ScoreJob(
                card,
                model_store,
                source,
                out,
                settings.schedule.force,
                settings.model.threshold,
                settings.reports.options,
            ),  # fmt: skip
        )

    def record(self, flow_name: str, entries: list[VideoEntry], skipped: dict[str, str] | None = None) -> RunRecord:
        """A new run's record (its lease taken); `skipped`: files discovery left out, with why."""
        s = self.settings
        info: dict[str, Any] = {"model_id": self.card.model_id, "archive": s.storage.archive,
                                "extractor_id": self.card.extractor_id, "videos": len(entries)}  # fmt: skip
        run = RunRecord(s.store, flow_name, info, s.cluster, s.schedule.webhook_url)
        self.discovered(run, entries, skipped)
        return run

    @staticmethod
    def discovered(run: RunRecord, entries: list[VideoEntry], skipped: dict[str, str] | None) -> None:
        """What discovery found (listed after the run was recorded): the count, and the files it left out."""
        run.info["videos"] = len(entries)
        run.outcomes += [VideoOutcome(name, SKIPPED, "discover", error=why) for name, why in (skipped or {}).items()]


def dated_globs(globs: list[str], today: date | None = None) -> tuple[str, ...]:
    """Expand {today} and {yesterday} (ISO dates) in include globs, so a scheduled scan picks last night's folders."""
    today = today or datetime.now(dt_timezone.utc).date()
    return tuple(g.format(today=today.isoformat(), yesterday=(today - timedelta(days=1)).isoformat()) for g in globs)


def nothing_new(settings: Settings, model_url: str) -> dict | None:
    """The quick path of `vad scan`: when every video's features, scores and reports are current (and no storage
    fault failed a video while planning), record the run and return its summary; else None, having left no trace,
    and the caller runs the `scan` flow."""
    entries, skipped = settings.archive.listing(include=dated_globs(settings.schedule.include))
    scan = ScanJob.load(settings, model_url)
    run = scan.record("scan", entries, skipped)
    with run.guard():
        plan = plan_scan(scan.score, scan.settings.extract_job, entries)
        if not plan.empty or any(o.status == FAILED for o in plan.outcomes):
            run.abandon()
            return None
        run.plan(plan)
        say(f"nothing new: {len(entries)} videos, all features, scores and reports are current")
    return run.finish(index_model=scan.card.model_id, work=plan.work)
