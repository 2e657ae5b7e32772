"""Planning: what a run must extract, score and report, and why every other video is skipped. Plans read only
small things (Parquet footers, report HEADs), concurrently, so a nightly scan of thousands of videos on object
storage does not wait one round trip at a time; nothing heavy starts until a plan says there is work."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

from anomaly_models.errors import NotFound

from ..store.archive import VideoEntry
from ..store.manifest import FAILED, QUARANTINED, SKIPPED, VideoOutcome, failure_reason
from ..store.output import OutputStore
from .extract import ExtractJob, extraction_current, quarantined_reason
from .report import REPORT_FORMAT
from .score import ScoreJob

T = TypeVar("T")
R = TypeVar("R")


def threaded_map(fn: Callable[[T], R], items: Iterable[T], workers: int = 16) -> list[R]:
    """fn over items on a small thread pool; results keep the input order."""
    items = list(items)
    if len(items) < 2:
        return [fn(i) for i in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        return list(pool.map(fn, items))


@dataclass
class Plan:
    """The work of one run. `outcomes` are the manifest rows of videos that need nothing (or are quarantined);
    `why` says, per skipped video, why."""

    extract: list[VideoEntry] = field(default_factory=list)
    score: list[str] = field(default_factory=list)
    report: list[str] = field(default_factory=list)
    outcomes: list[VideoOutcome] = field(default_factory=list)
    why: dict[str, str] = field(default_factory=dict)

    @property
    def work(self) -> dict[str, int]:
        return {"extract": len(self.extract), "score": len(self.score), "report": len(self.report)}

    @property
    def empty(self) -> bool:
        return not any(self.work.values())


def plan_extraction(store: OutputStore, entries: list[VideoEntry], job: ExtractJob) -> Plan:
    """Videos to extract; videos whose features (and objects) are current (same fingerprint and producer ids);
    videos quarantined by an earlier run (same fingerprint; --force retries them)."""
    plan = Plan()
    if job.force:
        plan.extract = list(entries)
        return plan

    def state(entry: VideoEntry) -> tuple[str | None, str]:
        try:
            if extraction_current(store, job, entry):
                return SKIPPED, "features current"
            reason = quarantined_reason(store, job.spec, entry)
        except Exception as exc:  # a storage fault while planning fails this video, not the run
            return FAILED, failure_reason(exc)
        return (QUARANTINED, reason) if reason else (None, "")

    for entry, (status, reason) in zip(entries, threaded_map(state, entries)):
        if status == SKIPPED:
            plan.outcomes.append(
                VideoOutcome(
                    entry.video_id, SKIPPED, "extract", output=store.features(job.spec.extractor_id, entry.video_id)
                )
            )
            plan.why[entry.video_id] = reason
        elif status == FAILED:
            plan.outcomes.append(VideoOutcome(entry.video_id, FAILED, "plan", error=reason))
            plan.why[entry.video_id] = reason
        elif status == QUARANTINED:
            plan.outcomes.append(VideoOutcome(entry.video_id, QUARANTINED, "extract", error=reason))
            plan.why[entry.video_id] = f"quarantined: {reason}"
        else:
            plan.extract.append(entry)
    return plan


def plan_scoring(job: ScoreJob, video_ids: list[str], plan: Plan) -> Plan:
    """Adds to `plan` the videos whose scores are missing or stale, and the reports to (re)write: those of videos
    scored now, and those missing for videos already scored."""
    out, source, card = job.out, job.source, job.card
    if job.force:
        plan.score += video_ids
        return plan

    def current(vid: str) -> bool | str:
        try:
            fingerprint = source.features_metadata(vid).get("fingerprint", "")
            return out.is_current(out.scores(card.model_id, vid), job.scores_expected(fingerprint))
        except Exception as exc:  # a storage fault while planning fails this video, not the run
            return failure_reason(exc)

    flags = threaded_map(current, video_ids)
    failed = {v: f for v, f in zip(video_ids, flags) if isinstance(f, str)}
    plan.outcomes += [VideoOutcome(v, FAILED, "plan", error=reason) for v, reason in failed.items()]
    plan.why.update(failed)
    scored = [v for v, ok in zip(video_ids, flags) if ok is True]
    plan.score += [v for v, ok in zip(video_ids, flags) if ok is False]
    plan.outcomes += [VideoOutcome(v, SKIPPED, "score") for v in scored]
    plan.why.update({v: "scores current" for v in scored})

    def has_report(vid: str) -> bool:
        """The report exists, in this version's format, made with the threshold and report options in use now
        (a calibrated model's reports are redone, and so are reports from before event clips)."""
        try:
            if not out.exists(out.report(card.model_id, vid, ".html")):
                return False
            report = out.read_json(out.report(card.model_id, vid, ".json"))
            return (report.get("threshold"), report.get("format"), report.get("report_options")) == (
                job.report_threshold, REPORT_FORMAT, job.report.key)  # fmt: skip
        except Exception:  # cannot tell: write it again
            return False

    has_reports = threaded_map(has_report, scored)
    plan.report += [v for v, ok in zip(scored, has_reports) if not ok]
    return plan


def plan_scan(job: ScoreJob, extract: ExtractJob, entries: list[VideoEntry]) -> Plan:
    """The nightly scan: extract what is new, then score and report whatever is not current."""
    plan = plan_extraction(job.out, entries, extract)
    absent = {e.video_id for e in plan.extract} | {
        o.video_id for o in plan.outcomes if o.status in (QUARANTINED, FAILED)
    }
    return plan_scoring(job, [e.video_id for e in entries if e.video_id not in absent], plan)


def plan_score(job: ScoreJob) -> Plan:
    """Scoring an existing features folder: every video in it."""
    ids = job.source.video_ids()
    if not ids:
        raise NotFound(f"no feature tables under {job.source.features_dir}")
    check_inputs(job, ids[:1])
    return plan_scoring(job, ids, Plan())


def check_inputs(job: ScoreJob, video_ids: list[str]) -> None:
    """Refuse before any work when the features come from another extractor than the model was trained on, or
    lack what the model reads (ADOR: spatial tokens and object features)."""
    for vid in video_ids:
        try:
            meta = job.source.features_metadata(vid)
        except FileNotFoundError:  # not extracted after all: that video fails when scored, the check goes on
            continue
        job.card.require_features(meta.get("extractor_id", "<none>"), where=job.source.features_dir)
        job.source.load(vid)
        return
