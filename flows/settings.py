"""One typed settings object in sections: a YAML file, then VAD_* environment variables, then CLI flags (flags win).

```yaml
storage:   {out: s3://vad, archive: s3://cams, options: {endpoint_url: "http://minio:9000"}}
extractor: {backbone: r3d_18, weights: random, clip_len: 16, stride: 16, size: 112, tokens: false}
detector:  {enabled: false, name: fasterrcnn_mobilenet_v3_large_320_fpn, mode: detections, max_objects: 36}
model:     {name: adnet, window: 64, epochs: 30, threshold: 0.5}
cluster:   {dask_address: tcp://scheduler:8786, workers: 1, threads: 2, gpu_tasks: false}
schedule:  {include: ["cam*/{yesterday}/*"], force: false}
reports:   {time_template: "{camera}/{date:%Y-%m-%d}/{time:%H%M%S}.{ext}", timezone: Europe/Istanbul, clips: true}
```

Each field also has one flat name, used by CLI flags and environment variables (`VAD_BACKBONE`, `VAD_WINDOW`,
`VAD_STORAGE_OPTIONS`, ...; see `FLAT`) and accepted as a top-level YAML key, as before the sections. Unknown keys
are errors that name the field. Dict-valued fields (storage and model options) come whole from the highest layer
that sets them, never merged: credentials for one endpoint must never meet another layer's endpoint.
`storage.options` go to fsspec for remote URLs and are never printed or stored with flow parameters.
"""

from __future__ import annotations

import json
import os
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from anomaly_models.errors import UsageError
from anomaly_models.registry import MODELS
from tasks.jobs.extract import ExtractJob
from tasks.jobs.report import ReportOptions
from tasks.media.backends import DECODERS
from tasks.media.decoder import TimeLimit
from tasks.media.specs import BACKBONES, DETECTORS, DetectorSpec, ExtractorSpec, check_spec
from tasks.models.card import ModelCard
from tasks.store.archive import Archive
from tasks.store.output import OutputStore


class ConfigError(UsageError):
    pass


def one_of(value: str, known: Any, what: str) -> str:
    if value not in known:
        raise ValueError(f"unknown {what} {value!r}; known: {sorted(known)}")
    return value


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class StorageSettings(Section):
    out: str = Field("./vad-data", description="output root URL (local folder or s3://...)")
    archive: str | None = Field(None, description="archive root URL")
    options: dict[str, Any] = Field(default_factory=dict, repr=False, exclude=True)  # never stored/logged


class ExtractorSettings(Section):
    backbone: str = "r3d_18"
    weights: str = Field("random", description="'random' (seeded init), a torchvision enum name, or a local file")
    seed: int = 0
    clip_len: int = Field(16, ge=1)
    stride: int = Field(16, ge=1)
    size: int | None = Field(None, ge=16, description="crop size; default: the backbone's native size")
    crops: int = Field(1, description="1 (centre), 5 (corners + centre) or 10 (and their flips): features per crop")
    batch_size: int = Field(8, ge=1, description="clips per forward pass")
    tokens: bool = Field(False, description="also store spatial token maps (for ADOR)")
    verify_frames: bool = Field(True, description="probe for listed frames that do not decode and never read them")
    decode_workers: int | None = Field(
        None, ge=1, description="videos decoding at once per task (their clips batched together); default: cores / 2"
    )
    task_videos: int = Field(16, ge=1, description="at most this many videos per extraction task (short files share)")
    task_mb: int = Field(
        2048, ge=1, description="... and at most this many MB of video per task (one larger file alone)"
    )
    decoder: str = Field("decord", description="decoder backend: decord | pyav | torchcodec (same clips; see README)")
    precision: str = Field("fp32", description="fp32 | bf16 | fp16: the backbone under autocast (bf16/fp16 on GPUs)")
    channels_last: bool = Field(True, description="3D convolutions channels-last (1.2-2x faster on CPU, see README)")

    @field_validator("backbone")
    @classmethod
    def _known_backbone(cls, v: str) -> str:
        return one_of(v, BACKBONES, "backbone")

    @field_validator("decoder")
    @classmethod
    def _known_decoder(cls, v: str) -> str:
        return one_of(v, DECODERS, "decoder")

    @field_validator("precision")
    @classmethod
    def _known_precision(cls, v: str) -> str:
        return one_of(v, ("fp32", "bf16", "fp16"), "precision")

    @model_validator(mode="after")
    def _backbone_takes_these_inputs(self) -> ExtractorSettings:
        check_spec(self.spec)
        return self

    @property
    def spec(self) -> ExtractorSpec:
        return ExtractorSpec(self.backbone, self.weights, self.clip_len, self.stride, self.size, self.seed, self.crops)


class DetectorSettings(Section):
    enabled: bool = Field(False, description="also extract centre-frame object features (for ADOR)")
    name: str = "fasterrcnn_mobilenet_v3_large_320_fpn"
    weights: str = "random"
    threshold: float = Field(0.2, ge=0, le=1)
    max_objects: int = Field(36, ge=1)
    mode: str = Field(
        "detections",
        pattern="^(detections|proposals)$",
        description="'proposals' keeps the top-k RPN proposals (for random-init detectors)",
    )
    size: int | None = Field(None, ge=32, description="detector min_size; default: the detector's")

    @field_validator("name")
    @classmethod
    def _known_detector(cls, v: str) -> str:
        return one_of(v, DETECTORS, "detector")


class ModelSettings(Section):
    name: str = Field("adnet", description="temporal model to train")
    window: int = Field(64, ge=2, description="clips per window (W)")
    epochs: int = Field(30, ge=1)
    lr: float | None = Field(None, gt=0, description="default: the model's (5e-4; ADOR 5e-5, the thesis)")
    threshold: float | None = Field(
        None,
        ge=0,
        le=1,
        description="a clip is anomalous when its score > threshold; "
        "training stores it with the model (default 0.5), reports use the model's",
    )
    options: dict[str, Any] = Field(default_factory=dict, description="extra model constructor arguments")
    score_batch: int = Field(16, ge=1, description="videos per scoring task")
    seed: int = Field(123, description="training seed: initial weights, window order, random crops")
    random_crops: bool = Field(
        True, description="with multi-crop features, train each window on a random crop per epoch (scoring: mean)"
    )

    @field_validator("name")
    @classmethod
    def _known_model(cls, v: str) -> str:
        return one_of(v, MODELS, "model")


class ClusterSettings(Section):
    dask_address: str | None = Field(None, description="tcp://scheduler:8786 of an existing cluster")
    workers: int = Field(1, ge=1, description="LocalCluster worker processes")
    threads: int = Field(2, ge=1, description="torch threads per worker process")
    gpu_tasks: bool = Field(False, description="extraction/scoring tasks ask Dask for the GPU resource")
    video_timeout_s: float = Field(300.0, gt=0, description="per-video decode time limit: this base ...")
    video_timeout_per_s: float = Field(10.0, ge=0, description="... plus this many seconds per second of video")
    stall_timeout_s: float = Field(120.0, gt=0, description="a decoder that yields nothing for this long is stopped")
    gpu_wait_s: float = Field(300.0, ge=0, description="with gpu_tasks on a cluster: wait this long for a GPU worker")
    dashboard_address: str = Field("127.0.0.1:0", description="LocalCluster dashboard (host:port; loopback only)")
    lease_wait_s: float = Field(0.0, ge=0, description="wait this long for another run to release the output")
    lease_ttl_s: float = Field(120.0, ge=5, description="a lease not renewed for this long is taken over")


class ScheduleSettings(Section):
    include: list[str] = Field(
        default_factory=list, description="only video ids matching these globs; {today}/{yesterday} expand at run time"
    )
    force: bool = Field(False, description="redo work that is current")
    webhook_url: str | None = Field(None, description="POST each run's JSON summary here (failures included)")


class ReportSettings(Section):
    time_template: str | None = Field(
        "{camera}/{date:%Y-%m-%d}/{time:%H%M%S}.{ext}",
        description="camera and recording start from the video id ('|' separates alternatives; null: none); "
        "then the container's creation time (tasks/media/recording_time.py)",
    )
    timezone: str = Field("UTC", description="IANA timezone of the times in video ids (and of naive creation times)")
    clips: bool = Field(True, description="an H.264 clip and a poster frame per event, next to the report")
    clip_padding_s: float = Field(2.0, ge=0, le=600, description="seconds of context before and after each event")
    clip_max_width: int = Field(640, ge=64, le=4096, description="event clips are scaled down to this width")

    @model_validator(mode="after")
    def _template_and_timezone_parse(self) -> ReportSettings:
        self.options.template()  # a bad pattern or timezone is a ConfigError naming the field
        return self

    @property
    def options(self) -> ReportOptions:
        return ReportOptions(self.time_template, self.timezone, self.clips, self.clip_padding_s, self.clip_max_width)


class Settings(Section):
    storage: StorageSettings = Field(default_factory=StorageSettings)
    extractor: ExtractorSettings = Field(default_factory=ExtractorSettings)
    detector: DetectorSettings = Field(default_factory=DetectorSettings)
    model: ModelSettings = Field(default_factory=ModelSettings)
    cluster: ClusterSettings = Field(default_factory=ClusterSettings)
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings)
    reports: ReportSettings = Field(default_factory=ReportSettings)

    @property
    def store(self) -> OutputStore:
        return OutputStore(self.storage.out, self.storage.options)

    @property
    def archive(self) -> Archive:
        if not self.storage.archive:
            raise ConfigError("archive: no archive URL given (--archive or storage.archive)")
        return Archive(self.storage.archive, self.storage.options)

    @property
    def detector_spec(self) -> DetectorSpec | None:
        d, e = self.detector, self.extractor
        if not d.enabled:
            return None
        return DetectorSpec(d.name, d.weights, d.threshold, d.max_objects, d.mode, d.size, e.clip_len, e.stride, e.seed)

    @property
    def extract_job(self) -> ExtractJob:
        c = self.cluster
        limit = TimeLimit(c.video_timeout_s, c.video_timeout_per_s, c.stall_timeout_s)
        e = self.extractor
        return ExtractJob(e.spec, e.tokens, self.detector_spec, e.batch_size, c.threads, self.schedule.force, limit,
                          e.verify_frames, e.decode_workers, e.decoder, e.precision, e.channels_last)  # fmt: skip

    def at_runtime(self, config_file: str | None = None) -> Settings:
        """These settings on the process that runs the flow (a Prefect worker's flow process, `vad serve`): the
        config file (`config_file`, else VAD_CONFIG_FILE) and VAD_* environment variables read now, under the fields
        this object sets (a deployment's parameters set only what the operator put there, e.g. the include globs).
        Storage options never travel with flow parameters (excluded from every dump), so they always come from here;
        a CLI run that calls the flow in-process already has them and is returned unchanged."""
        if self.storage.options:
            return self
        here = load_settings(config_file)
        runtime = here.model_dump()
        runtime["storage"]["options"] = here.storage.options
        for section, fields in self.model_dump(exclude_unset=True).items():
            runtime[section].update(fields)
        return _validate(runtime)

    def replace(self, **flat: Any) -> Settings:
        """A copy with some fields changed, by flat name (e.g. window=32, storage_options={...})."""
        data = self.model_dump()
        data["storage"]["options"] = dict(self.storage.options)
        for name, value in flat.items():
            section, field = _flat(name)
            data[section][field] = value
        return _validate(data)

    def for_card(self, card: ModelCard) -> Settings:
        """The same settings with the inputs a trained model needs (a scan extracts what the model was trained
        on)."""
        if card.extractor is None:
            raise ConfigError(
                f"model {card.model_id}: its card names no extractor spec, so a scan cannot extract "
                f"its features ({card.extractor_id}); score existing features with `vad score`"
            )
        spec, det = card.extractor, card.detector
        update: dict[str, Any] = {
            "backbone": spec.backbone,
            "weights": spec.weights,
            "clip_len": spec.clip_len,
            "stride": spec.stride,
            "size": spec.size,
            "seed": spec.seed,
            "crops": spec.crops,
            "tokens": card.needs_tokens,
            "objects": det is not None,
        }
        if det:
            update.update(
                detector=det.detector,
                detector_weights=det.weights,
                object_mode=det.mode,
                object_threshold=det.score_threshold,
                max_objects=det.max_objects,
                detector_size=det.min_size,
            )
        settings = self.replace(**update)
        if settings.extractor.spec.extractor_id != card.extractor_id:
            raise ConfigError(
                f"cannot rebuild extractor {card.extractor_id} from model {card.model_id}'s card "
                f"(got {settings.extractor.spec.extractor_id})"
            )
        return settings


# flat name (flags, VAD_* environment variables, top-level YAML keys) -> (section, field)
FLAT: dict[str, tuple[str, str]] = {
    "out": ("storage", "out"),
    "archive": ("storage", "archive"),
    "storage_options": ("storage", "options"),
    **{f: ("extractor", f) for f in ExtractorSettings.model_fields},
    "objects": ("detector", "enabled"),
    "detector": ("detector", "name"),
    "detector_weights": ("detector", "weights"),
    "object_threshold": ("detector", "threshold"),
    "max_objects": ("detector", "max_objects"),
    "object_mode": ("detector", "mode"),
    "detector_size": ("detector", "size"),
    "model": ("model", "name"),
    "window": ("model", "window"),
    "epochs": ("model", "epochs"),
    "lr": ("model", "lr"),
    "threshold": ("model", "threshold"),
    "model_options": ("model", "options"),
    "score_batch": ("model", "score_batch"),
    "random_crops": ("model", "random_crops"),
    "train_seed": ("model", "seed"),
    **{f: ("cluster", f) for f in ClusterSettings.model_fields},
    **{f: ("schedule", f) for f in ScheduleSettings.model_fields},
    **{f: ("reports", f) for f in ReportSettings.model_fields},
}
SECTIONS = tuple(Settings.model_fields)
STRUCTURED = {"storage_options", "model_options", "include"}  # JSON in environment variables


def _flat(name: str) -> tuple[str, str]:
    try:
        return FLAT[name]
    except KeyError:
        raise ConfigError(f"invalid configuration: {name}: unknown setting") from None


def _validate(data: dict[str, Any]) -> Settings:
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'config'}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"invalid configuration: {problems}") from None


def _file_layer(path: str) -> dict[str, Any]:
    """The YAML file as sections; flat top-level keys go to their section, unknown ones stay (and are named)."""
    if not os.path.exists(path):
        raise ConfigError(f"config file not found: {path}")
    try:
        with open(path) as f:
            raw = yaml.safe_load(f) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid configuration: {path} is not valid YAML ({exc})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"invalid configuration: {path} must hold a mapping of settings")
    layer: dict[str, Any] = {}
    for key, value in raw.items():
        if key in SECTIONS:
            if not isinstance(value, dict):
                raise ConfigError(f"invalid configuration: {key}: expected a mapping of settings in {path}")
            layer.setdefault(key, {}).update(value)
        elif key in FLAT:
            section, field = FLAT[key]
            layer.setdefault(section, {})[field] = value
        else:
            layer[key] = value  # an unknown key: validation names it
    return layer


def _env_layer() -> dict[str, Any]:
    layer: dict[str, Any] = {}
    for name, (section, field) in FLAT.items():
        value = os.environ.get(f"VAD_{name.upper()}")
        if value is None:
            continue
        if name in STRUCTURED:
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"invalid configuration: {name}: VAD_{name.upper()} is not JSON ({exc})") from None
        layer.setdefault(section, {})[field] = value
    return layer


def load_settings(config_file: str | None = None, **flags: Any) -> Settings:
    """Flags that are None were not given and do not override lower layers. Each layer sets whole fields: a higher
    layer replaces a field's value (dicts included), it never merges into it."""
    config_file = config_file or os.environ.get("VAD_CONFIG_FILE")
    merged: dict[str, Any] = {}
    layers = [_file_layer(config_file) if config_file else {}, _env_layer()]
    layers.append({})
    for name, value in flags.items():
        if value is not None:
            section, field = _flat(name)
            layers[-1].setdefault(section, {})[field] = value
    for layer in layers:
        for key, value in layer.items():
            if key in SECTIONS and isinstance(value, dict):
                merged.setdefault(key, {}).update(value)
            else:
                merged[key] = value
    return _validate(merged)
