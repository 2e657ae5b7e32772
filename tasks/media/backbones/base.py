"""Action feature extractors: a small base class; one module per backbone family, each listed in the catalog
(`specs.BACKBONES`, lhotse style registry) with its input contract (clip length, crop size, resize, normalisation).

Each backbone returns per clip a pooled
feature vector and, on request, its spatial token map (the last conv / transformer map averaged over time,
[tokens, channels], e.g. 7x7x512 for r3d_18 at 112 px). Weights come from a torchvision enum name, a local
state_dict file, or `random` (explicit, seeded). The extractor id names everything that makes features comparable.
"""

from __future__ import annotations

import importlib
from functools import lru_cache
from typing import Any

import numpy as np
import torch
from torch import nn

from ..specs import BACKBONES, BackboneInfo, ExtractorSpec, backbone_info, check_spec
from ..weights import WeightsError, load_state_dict

__all__ = [
    "ExtractorSpec",
    "ActionBackbone",
    "BACKBONES",
    "backbone_class",
    "build_extractor",
    "cached_extractor",
    "check_spec",
    "WeightsError",
    "map_tokens",
]


class ActionBackbone(nn.Module):
    """Base class: subclasses implement `build` and `forward_features`; their input contract (crop, resize,
    normalisation) is their entry in the catalog (`specs.BACKBONES`)."""

    info: BackboneInfo
    net: Any  # the wrapped torchvision (or other) network; families reach into its layers
    _mean: torch.Tensor
    _std: torch.Tensor

    def __init__(self, spec: ExtractorSpec):
        super().__init__()
        check_spec(spec)
        self.spec, self.info = spec, spec.info
        self.net = self.build(spec)
        self.register_buffer("_mean", torch.tensor(self.info.mean).view(1, 3, 1, 1, 1), persistent=False)
        self.register_buffer("_std", torch.tensor(self.info.std).view(1, 3, 1, 1, 1), persistent=False)

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


def backbone_class(name: str) -> type[ActionBackbone]:
    """The nn.Module class implementing a catalog entry, imported on first use."""
    module, cls = backbone_info(name).network.split(":")
    return getattr(importlib.import_module(module), cls)


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
