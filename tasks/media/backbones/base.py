"""Action feature extractors: a small base class and a registry (lhotse style); one module per backbone family.

Each backbone declares its input (clip length, crop size, resize, normalisation) and returns per clip a pooled
feature vector and, on request, its spatial token map (the last conv / transformer map averaged over time,
[tokens, channels], e.g. 7x7x512 for r3d_18 at 112 px). Weights come from a torchvision enum name, a local
state_dict file, or `random` (explicit, seeded). The extractor id names everything that makes features comparable.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import torch
from torch import nn

from anomaly_models.errors import UsageError

from ..weights import WeightsError, load_state_dict, weights_tag

__all__ = [
    "ExtractorSpec",
    "ActionBackbone",
    "BACKBONES",
    "register",
    "backbone_class",
    "build_extractor",
    "cached_extractor",
    "WeightsError",
    "map_tokens",
]

KINETICS_MEAN, KINETICS_STD = (0.43216, 0.394666, 0.37645), (0.22803, 0.22145, 0.216989)


@dataclass(frozen=True)
class ExtractorSpec:
    """What makes features comparable; `extractor_id` is derived from it."""

    backbone: str = "r3d_18"
    weights: str = "random"  # "random", a torchvision enum name (e.g. KINETICS400_V1), or a local file path
    clip_len: int = 16
    stride: int = 16
    size: int | None = None  # crop size; None = the backbone's native size
    seed: int = 0  # init seed for random weights

    @property
    def crop_size(self) -> int:
        return self.size or backbone_class(self.backbone).crop_size

    @property
    def short_side(self) -> int:
        cls = backbone_class(self.backbone)
        return round(self.crop_size * cls.resize_short / cls.crop_size)

    @property
    def extractor_id(self) -> str:
        return f"{self.backbone}-{weights_tag(self.weights, self.seed)}-c{self.clip_len}s{self.stride}-{self.crop_size}"

    @property
    def is_random(self) -> bool:
        return self.weights == "random"


class ActionBackbone(nn.Module):
    """Base class: subclasses set the class attributes and implement `build` and `forward_features`."""

    name: str = ""
    crop_size: int = 112
    resize_short: int = 128
    mean: tuple[float, float, float] = KINETICS_MEAN
    std: tuple[float, float, float] = KINETICS_STD
    fixed_clip_len: int | None = None  # models that only accept one clip length
    fixed_crop: bool = False  # models that only accept their native crop size
    net: Any  # the wrapped torchvision (or other) network; families reach into its layers
    _mean: torch.Tensor
    _std: torch.Tensor

    def __init__(self, spec: ExtractorSpec):
        super().__init__()
        check_spec(type(self), spec)
        self.spec = spec
        self.net = self.build(spec)
        self.register_buffer("_mean", torch.tensor(self.mean).view(1, 3, 1, 1, 1), persistent=False)
        self.register_buffer("_std", torch.tensor(self.std).view(1, 3, 1, 1, 1), persistent=False)

    def build(self, spec: ExtractorSpec) -> nn.Module:
        raise NotImplementedError

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x [B, 3, T, H, W] normalised -> (pooled [B, D], tokens [B, N, C])."""
        raise NotImplementedError

    def preprocess(self, clips: np.ndarray) -> torch.Tensor:
        """uint8 [B, T, H, W, 3] decoded with short side ~ short_side -> normalised [B, 3, T, crop, crop]."""
        x = torch.from_numpy(np.ascontiguousarray(clips)).to(self._mean.device)
        x = x.permute(0, 4, 1, 2, 3).float().div_(255.0)
        crop = self.spec.crop_size
        h, w = x.shape[-2:]
        if min(h, w) < crop:  # decoded smaller than the crop (tiny videos): upscale frames, keep aspect
            size = (max(crop, round(h * crop / min(h, w))), max(crop, round(w * crop / min(h, w))))
            b, c, t = x.shape[:3]
            x = (
                nn.functional.interpolate(
                    x.transpose(1, 2).reshape(b * t, c, h, w), size=size, mode="bilinear", align_corners=False
                )
                .reshape(b, t, c, *size)
                .transpose(1, 2)
            )
            h, w = size
        top, left = (h - crop) // 2, (w - crop) // 2
        x = x[..., top : top + crop, left : left + crop]
        return (x - self._mean) / self._std

    @torch.no_grad()
    def extract(self, clips: np.ndarray, tokens: bool = False):
        """Features (np.float32 [B, D]) and, when asked, tokens (np.float16 [B, N, C])."""
        pooled, tok = self.forward_features(self.preprocess(clips))
        return pooled.float().cpu().numpy(), (tok.half().cpu().numpy() if tokens else None)


def check_spec(cls: type[ActionBackbone], spec: ExtractorSpec) -> None:
    """Refuse input shapes a backbone cannot take, naming the setting."""
    if cls.fixed_clip_len and spec.clip_len != cls.fixed_clip_len:
        raise UsageError(f"clip_len: {cls.name} needs clip_len={cls.fixed_clip_len}, got {spec.clip_len}")
    if cls.fixed_crop and spec.crop_size != cls.crop_size:
        raise UsageError(f"size: {cls.name} needs size={cls.crop_size} (its native crop), got {spec.crop_size}")


BACKBONES: dict[str, type[ActionBackbone]] = {}


def register(cls: type[ActionBackbone]) -> type[ActionBackbone]:
    BACKBONES[cls.name] = cls
    return cls


def backbone_class(name: str) -> type[ActionBackbone]:
    try:
        return BACKBONES[name]
    except KeyError:
        raise UsageError(f"backbone: unknown backbone {name!r}; known: {sorted(BACKBONES)}") from None


def map_tokens(fmap: torch.Tensor) -> torch.Tensor:
    """[B, C, T, H, W] -> [B, H*W, C], averaged over time."""
    return fmap.mean(dim=2).flatten(2).transpose(1, 2)


def build_extractor(spec: ExtractorSpec, device: str | None = None) -> ActionBackbone:
    cls = backbone_class(spec.backbone)
    if spec.is_random:
        torch.manual_seed(spec.seed)
    model = cls(spec)
    state = load_state_dict(spec.backbone, spec.weights)
    if state is not None:
        model.net.load_state_dict(state)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return model.to(device).eval()


@lru_cache(maxsize=2)
def cached_extractor(spec: ExtractorSpec, device: str | None = None) -> ActionBackbone:
    """One model per worker process and spec: built on the worker, never shipped over the wire."""
    return build_extractor(spec, device)
