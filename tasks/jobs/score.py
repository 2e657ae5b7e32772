"""Score clips with a trained model: windows + stitching, one score per clip, written as
scores/<model_id>/<video_id>.parquet. A model only scores features of the extractor it was trained on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..models.card import ModelCard
from ..models.inputs import InputSource
from ..models.repository import load_model
from ..store.manifest import DONE, FAILED, SKIPPED, Timer, VideoOutcome, failure_reason
from ..store.output import OutputStore
from ..store.tables import ClipTable, scores_table
from .report import ReportOptions


@dataclass(frozen=True)
class ScoreJob:
    """A model (its card and the store holding it), where its inputs are, and where scores go (picklable)."""

    card: ModelCard
    model_store: OutputStore
    source: InputSource
    out: OutputStore
    force: bool = False
    threshold: float | None = None  # reports' threshold when set; else the card's (calibrated or from training)
    report: ReportOptions = ReportOptions()  # how reports place events in time and cut their clips

    @property
    def report_threshold(self) -> float:
        return self.card.threshold if self.threshold is None else self.threshold

    def scores_expected(self, fingerprint: str) -> dict[str, str]:
        """What makes stored scores current: the same video version, scored by the same checkpoint."""
        return {"fingerprint": fingerprint, "checkpoint_sha256": self.card.checkpoint_sha256}


def score_batch(job: ScoreJob, video_ids: list[str], device: str = "cpu") -> list[VideoOutcome]:
    """One task scores a batch of videos (the model is loaded once per worker and cached): each video's inputs
    are checked and loaded, then the windows of every video to score go through the model together
    (`predict_many`), and each video's scores are written. One bad table never stops the batch; a failed forward
    pass is retried one video at a time, so only the video that breaks it fails."""
    card, out = job.card, job.out
    outcomes: dict[str, VideoOutcome] = {}
    todo: list[tuple[str, Timer, ClipTable, dict]] = []
    for vid in video_ids:
        timer = Timer()
        try:
            features, inputs = job.source.load(vid)
            card.require_features(features.metadata["extractor_id"], where=job.source.features_dir)
            target = out.scores(card.model_id, vid)
            if not job.force and out.is_current(target, job.scores_expected(features.metadata["fingerprint"])):
                outcomes[vid] = VideoOutcome(vid, SKIPPED, "score", output=target, started_at=timer.started_at)
            else:
                todo.append((vid, timer, features, inputs))
        except Exception as exc:
            outcomes[vid] = VideoOutcome(vid, FAILED, "score", error=failure_reason(exc), started_at=timer.started_at)
    if todo:
        from anomaly_models.training import predict_many  # torch: only where a video is really scored

        all_scores: list[Any]
        try:
            model = load_model(job.model_store, card, device)
            try:
                all_scores = predict_many(model, [t[3] for t in todo], card.window, device)
            except Exception:  # find the video that breaks the batch: the others are scored alone
                all_scores = [_alone(model, t[3], card.window, device) for t in todo]
        except Exception as exc:
            all_scores = [exc] * len(todo)
        for (vid, timer, features, _), scores in zip(todo, all_scores):
            outcomes[vid] = _write(job, vid, timer, features, scores)
    return [outcomes[vid] for vid in video_ids]


def _alone(model, inputs: dict, window: int, device: str):
    from anomaly_models.training import predict

    try:
        return predict(model, inputs, window, device)
    except Exception as exc:
        return exc


def _write(job: ScoreJob, vid: str, timer: Timer, features: ClipTable, scores) -> VideoOutcome:
    card, out = job.card, job.out
    if isinstance(scores, Exception):
        return VideoOutcome(vid, FAILED, "score", error=failure_reason(scores), started_at=timer.started_at)
    try:
        meta = {
            **{k: features.metadata[k] for k in ("fps", "frame_count", "fingerprint", "extractor_id")},
            "source_url": features.metadata.get("source_url", ""),
            "model_id": card.model_id,
            "checkpoint_sha256": card.checkpoint_sha256,
            "threshold": card.threshold,
        }
        target = out.write_table(out.scores(card.model_id, vid), scores_table(features, vid, scores, meta))
    except Exception as exc:
        return VideoOutcome(vid, FAILED, "score", error=failure_reason(exc), started_at=timer.started_at)
    return VideoOutcome(vid, DONE, "score", seconds=timer.seconds, clips=len(scores), output=target,
                        started_at=timer.started_at)  # fmt: skip
