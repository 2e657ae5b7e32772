"""The model card: everything the pipeline knows about a trained model, typed, in one JSON document
(`models/<model_id>/config.json`) with a schema version.

It says which features the model reads (the extractor spec and id, and for ADOR the detector's), its window and
threshold, how it was trained and on which videos, and the hash of its checkpoint. Flows, scoring and settings
read it through attributes, never by string keys.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from anomaly_models.checkpoint import require_extractor
from anomaly_models.errors import UsageError
from anomaly_models.registry import ModelEntry, model_entry

from ..media.specs import DetectorSpec, ExtractorSpec
from ..store.names import safe_name

SCHEMA_VERSION = 1


def spec_from_json(cls: type, data: dict | None) -> Any:
    """A frozen spec from its JSON dict, ignoring keys a newer writer may have added."""
    if data is None:
        return None
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class TrainingRecord:
    epochs: int
    lr: float
    loss: str
    seed: int
    history: list[float] = field(default_factory=list)  # mean loss per epoch
    created: str = ""
    videos: int = 0
    clips: int = 0
    abnormal_clips: int = 0
    random_crops: bool = False  # trained on a random crop of multi-crop features per window and epoch


@dataclass(frozen=True)
class AnnotationMatch:
    """How annotation names were matched to the feature tables the model was trained on."""

    trained_videos: list[str] = field(default_factory=list)
    unmatched_annotations: list[str] = field(default_factory=list)
    ambiguous_annotations: list[str] = field(default_factory=list)
    unannotated_videos: list[str] = field(default_factory=list)
    invalid_annotations: dict[str, list[str]] = field(default_factory=dict)  # left out: their segments are invalid


@dataclass(frozen=True)
class Calibration:
    """How the operating threshold was chosen on a validation split (`vad calibrate`), and the curve it came from:
    one point per candidate threshold with abnormal F1@k, the false-alarm rate on normal videos and the recall of
    abnormal segments at IoU k (percent)."""

    criterion: str  # "f1" (maximise F1@k), "far" (false-alarm rate <= target), "recall" (segment recall >= target)
    k: float  # IoU threshold of F1@k and recall, as a fraction
    target: float | None  # percent, for "far" and "recall"
    threshold: float
    scores: str  # the validation scores folder
    annotations: str
    videos: int
    created: str
    curve: list[dict[str, float | None]] = field(default_factory=list)


@dataclass(frozen=True)
class ModelCard:
    model_id: str
    model: str  # a name in anomaly_models.registry.MODELS
    model_config: dict[str, Any]  # constructor arguments
    extractor_id: str
    extractor: ExtractorSpec | None  # None when features were not made by this pipeline's extractors
    window: int
    threshold: float
    training: TrainingRecord
    annotations: AnnotationMatch = field(default_factory=AnnotationMatch)
    detector_id: str | None = None
    detector: DetectorSpec | None = None
    max_objects: int = 36
    checkpoint_sha256: str = ""
    calibration: Calibration | None = None  # the latest; `threshold` is its choice
    threshold_history: list[dict[str, Any]] = field(default_factory=list)  # earlier thresholds, oldest first
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        safe_name(self.model_id, "model id")
        safe_name(self.extractor_id, "extractor id")
        if self.detector_id is not None:
            safe_name(self.detector_id, "detector id")
        model_entry(self.model)

    @property
    def entry(self) -> ModelEntry:
        return model_entry(self.model)

    @property
    def needs_tokens(self) -> bool:
        return self.entry.needs_tokens

    @property
    def needs_objects(self) -> bool:
        return self.entry.needs_objects

    def require_features(self, extractor_id: str, where: str = "the features") -> None:
        """Refuse features of another extractor, naming both ids."""
        require_extractor(self.extractor_id, extractor_id, model=f"model {self.model_id}", where=where)

    def with_checkpoint(self, sha256: str) -> ModelCard:
        return dataclasses.replace(self, checkpoint_sha256=sha256)

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["needs_tokens"], data["needs_objects"] = self.needs_tokens, self.needs_objects  # for readers; derived
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any], where: str = "config.json") -> ModelCard:
        if not isinstance(data, dict):
            raise UsageError(f"{where}: not a model card (expected a JSON object)")
        if "schema_version" not in data:
            data = _from_unversioned(data)
        if data["schema_version"] > SCHEMA_VERSION:
            raise UsageError(
                f"{where}: model card schema {data['schema_version']} is newer than this vad "
                f"({SCHEMA_VERSION}); upgrade vad"
            )
        try:
            return cls(
                model_id=data["model_id"],
                model=data["model"],
                model_config=dict(data["model_config"]),
                extractor_id=data["extractor_id"],
                extractor=spec_from_json(ExtractorSpec, data.get("extractor")),
                window=int(data["window"]),
                threshold=float(data["threshold"]),
                training=spec_from_json(TrainingRecord, data["training"]),
                annotations=spec_from_json(AnnotationMatch, data.get("annotations") or {}),
                detector_id=data.get("detector_id"),
                detector=spec_from_json(DetectorSpec, data.get("detector")),
                max_objects=int(data.get("max_objects", 36)),
                checkpoint_sha256=data.get("checkpoint_sha256", ""),
                calibration=spec_from_json(Calibration, data.get("calibration")),
                threshold_history=list(data.get("threshold_history") or []),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise UsageError(f"{where}: not a valid model card ({exc.__class__.__name__}: {exc})") from None


def _from_unversioned(old: dict[str, Any]) -> dict[str, Any]:
    """Cards written before the schema was versioned (a flat dict of strings) read as schema 1."""
    training = {
        k: old.get(k) for k in ("epochs", "lr", "seed", "history", "created", "videos", "clips", "abnormal_clips")
    }
    training["loss"] = model_entry(old.get("model", "adnet")).loss
    annotations = {k: old.get(k) or [] for k in ("trained_videos", "unmatched_annotations", "unannotated_videos")}
    return {
        **old,
        "schema_version": 1,
        "extractor": old.get("extractor_spec") or None,
        "detector": old.get("detector_spec"),
        "training": training,
        "annotations": annotations,
    }
