"""One typed settings object: a YAML file, then VAD_* environment variables, then CLI flags (flags win).

Unknown keys are errors that name the field. `storage_options` go to fsspec for remote URLs and are never printed.
"""
from __future__ import annotations

import json
import os
from typing import Any

import yaml

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import (BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, SettingsError,
                               YamlConfigSettingsSource)

from tasks.detectors import DETECTORS, DetectorSpec
from tasks.extractors import BACKBONES, ExtractorSpec, backbone_class, check_spec


class ConfigError(ValueError):
    pass


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VAD_", extra="forbid", validate_default=True)

    out: str = Field("./vad-data", description="output root URL (local folder or s3://...)")
    archive: str | None = Field(None, description="archive root URL")
    include: list[str] = Field(default_factory=list, description="only video ids matching these globs")
    backbone: str = "r3d_18"
    weights: str = Field("random", description="'random' (seeded init), a torchvision enum name, or a local file")
    seed: int = 0
    clip_len: int = Field(16, ge=1)
    stride: int = Field(16, ge=1)
    size: int | None = Field(None, ge=16, description="crop size; default: the backbone's native size")
    batch_size: int = Field(8, ge=1, description="clips per forward pass")
    tokens: bool = Field(False, description="also store spatial token maps (for ADOR)")
    dask_address: str | None = Field(None, description="tcp://scheduler:8786 of an existing cluster")
    workers: int = Field(1, ge=1, description="LocalCluster worker processes")
    threads: int = Field(2, ge=1, description="torch threads per worker process")
    gpu_tasks: bool = Field(False, description="extraction/scoring tasks ask Dask for the GPU resource")
    storage_options: dict[str, Any] = Field(default_factory=dict, repr=False, exclude=True)  # never stored/logged
    force: bool = False
    objects: bool = Field(False, description="also extract centre-frame object features (for ADOR)")
    detector: str = "fasterrcnn_mobilenet_v3_large_320_fpn"
    detector_weights: str = "random"
    object_threshold: float = Field(0.2, ge=0, le=1)
    max_objects: int = Field(36, ge=1)
    object_mode: str = Field("detections", pattern="^(detections|proposals)$",
                             description="'proposals' keeps the top-k RPN proposals (for random-init detectors)")
    detector_size: int | None = Field(None, ge=32, description="detector min_size; default: the detector's")
    model_options: dict[str, Any] = Field(default_factory=dict, description="extra model constructor arguments")
    model: str = Field("adnet", description="temporal model to train")
    window: int = Field(64, ge=2, description="clips per window (W)")
    epochs: int = Field(30, ge=1)
    lr: float | None = Field(None, gt=0, description="default: 5e-4, ADOR 5e-5 (the thesis)")
    threshold: float | None = Field(None, ge=0, le=1, description="a clip is anomalous when its score > threshold; "
                                    "training stores it with the model (default 0.5), reports use the model's")
    score_batch: int = Field(16, ge=1, description="videos per scoring task")

    @field_validator("backbone")
    @classmethod
    def _known_backbone(cls, v: str) -> str:
        if v not in BACKBONES:
            raise ValueError(f"unknown backbone {v!r}; known: {sorted(BACKBONES)}")
        return v

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                   file_secret_settings) -> tuple[PydanticBaseSettingsSource, ...]:
        path = settings_cls.model_config.get("yaml_file") or os.environ.get("VAD_CONFIG_FILE")
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if path:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=path))
        return tuple(sources)

    def for_model(self, config: dict) -> "Settings":
        """The same settings with the inputs a trained model needs (scan extracts what the model was trained on)."""
        spec = config["extractor_spec"]
        update = {k: spec[k] for k in ("backbone", "weights", "clip_len", "stride", "size", "seed") if k in spec}
        update["tokens"] = bool(config.get("needs_tokens"))
        det = config.get("detector_spec")
        update["objects"] = det is not None
        if det:
            update.update(detector=det["detector"], detector_weights=det["weights"], object_mode=det["mode"],
                          object_threshold=det["score_threshold"], max_objects=det["max_objects"],
                          detector_size=det["min_size"])
        return self.model_copy(update=update)

    @model_validator(mode="after")
    def _backbone_takes_these_inputs(self) -> "Settings":
        check_spec(backbone_class(self.backbone), self.extractor)
        return self

    @field_validator("model")
    @classmethod
    def _known_model(cls, v: str) -> str:
        from tasks.model_inputs import DEFAULTS

        if v not in DEFAULTS:
            raise ValueError(f"unknown model {v!r}; known: {sorted(DEFAULTS)}")
        return v

    @field_validator("detector")
    @classmethod
    def _known_detector(cls, v: str) -> str:
        if v not in DETECTORS:
            raise ValueError(f"unknown detector {v!r}; known: {sorted(DETECTORS)}")
        return v

    @property
    def detector_spec(self) -> DetectorSpec | None:
        if not self.objects:
            return None
        return DetectorSpec(self.detector, self.detector_weights, self.object_threshold, self.max_objects,
                            self.object_mode, self.detector_size, self.clip_len, self.stride, self.seed)

    @property
    def extractor(self) -> ExtractorSpec:
        return ExtractorSpec(self.backbone, self.weights, self.clip_len, self.stride, self.size, self.seed)


WHOLE_FIELDS = ("storage_options", "model_options")


def _whole_field(key: str, given: dict, config_file: str | None) -> dict:
    """Flags, else VAD_<KEY> (JSON), else the config file, else {} -- one layer wins (credentials for one endpoint
    must never be mixed with another layer's endpoint)."""
    if key in given:
        return given[key]
    env = os.environ.get(f"VAD_{key.upper()}")
    if env is not None:
        try:
            return json.loads(env)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"invalid configuration: {key}: VAD_{key.upper()} is not JSON ({exc})") from None
    if config_file:
        with open(config_file) as f:
            return (yaml.safe_load(f) or {}).get(key) or {}
    return {}


def load_settings(config_file: str | None = None, **flags) -> Settings:
    """Flags that are None were not given and do not override lower layers."""
    given = {k: v for k, v in flags.items() if v is not None}
    cls = Settings
    if config_file:
        if not os.path.exists(config_file):
            raise ConfigError(f"config file not found: {config_file}")

        class FileSettings(Settings):  # the same settings, read from this file below env and flags
            model_config = SettingsConfigDict(yaml_file=config_file)

        cls = FileSettings
    try:
        loaded = cls(**given)
        values = dict(loaded)
        for key in WHOLE_FIELDS:  # taken whole from the highest layer that sets them, never merged across layers
            values[key] = _whole_field(key, given, config_file)
        return Settings.model_validate(values) if values != dict(loaded) or cls is not Settings else loaded
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'config'}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"invalid configuration: {problems}") from None
    except SettingsError as exc:  # e.g. VAD_STORAGE_OPTIONS that is not JSON
        raise ConfigError(f"invalid configuration: {exc}") from None
