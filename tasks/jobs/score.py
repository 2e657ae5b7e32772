"""Score clips with a trained model: windows + stitching, one score per clip, written as
scores/<model_id>/<video_id>.parquet. A model only scores features of the extractor it was trained on."""

from __future__ import annotations

from dataclasses import dataclass

from ..models.card import ModelCard
from ..models.inputs import InputSource
from ..models.repository import load_model
from ..store.manifest import DONE, FAILED, SKIPPED, Timer, VideoOutcome, failure_reason
from ..store.output import OutputStore
from ..store.tables import scores_table


@dataclass(frozen=True)
class ScoreJob:
    """A model (its card and the store holding it), where its inputs are, and where scores go (picklable)."""

    card: ModelCard
    model_store: OutputStore
    source: InputSource
    out: OutputStore
    force: bool = False
    threshold: float | None = None  # reports' threshold when set; else the card's (calibrated or from training)

    @property
    def report_threshold(self) -> float:
        return self.card.threshold if self.threshold is None else self.threshold

    def scores_expected(self, fingerprint: str) -> dict[str, str]:
        """What makes stored scores current: the same video version, scored by the same checkpoint."""
        return {"fingerprint": fingerprint, "checkpoint_sha256": self.card.checkpoint_sha256}


def score_video(job: ScoreJob, video_id: str, device: str = "cpu") -> VideoOutcome:
    timer = Timer()
    card, out = job.card, job.out
    features, inputs = job.source.load(video_id)
    card.require_features(features.metadata["extractor_id"], where=job.source.features_dir)
    target = out.scores(card.model_id, video_id)
    if not job.force and out.is_current(target, job.scores_expected(features.metadata["fingerprint"])):
        return VideoOutcome(video_id, SKIPPED, "score", output=target, started_at=timer.started_at)
    from anomaly_models.training import predict  # torch: only where a video is really scored

    scores = predict(load_model(job.model_store, card, device), inputs, card.window, device)
    meta = {
        **{k: features.metadata[k] for k in ("fps", "frame_count", "fingerprint", "extractor_id")},
        "source_url": features.metadata.get("source_url", ""),
        "model_id": card.model_id,
        "checkpoint_sha256": card.checkpoint_sha256,
        "threshold": card.threshold,
    }
    out.write_table(target, scores_table(features, video_id, scores, meta))
    return VideoOutcome(
        video_id, DONE, "score", seconds=timer.seconds, clips=len(scores), output=target, started_at=timer.started_at
    )


def score_batch(job: ScoreJob, video_ids: list[str], device: str = "cpu") -> list[VideoOutcome]:
    """One task scores a batch of videos (the model is loaded once per worker and cached); one bad table never
    stops the batch."""
    outcomes = []
    for vid in video_ids:
        try:
            outcomes.append(score_video(job, vid, device))
        except Exception as exc:
            outcomes.append(VideoOutcome(vid, FAILED, "score", error=failure_reason(exc)))
    return outcomes
