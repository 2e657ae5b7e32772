"""Action feature extractors: a small base class; one module per backbone family, each listed in the catalog
(`specs.BACKBONES`, lhotse style registry) with its input contract (clip length, crop size, resize, normalisation).

Each backbone returns per clip a pooled
feature vector and, on request, its spatial token map (the last conv / transformer map averaged over time,
[tokens, channels], e.g. 7x7x512 for r3d_18 at 112 px). Weights come from a torchvision enum name, a local
state_dict file, or `random` (explicit, seeded). The extractor id names everything that makes features comparable.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
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
    "ClipFeatures",
    "BACKBONES",
    "backbone_class",
    "build_extractor",
    "cached_extractor",
    "check_spec",
    "WeightsError",
    "map_tokens",
]


PRECISIONS = ("fp32", "bf16", "fp16")
# autocast against fp32 on the same clips: the cosine similarity of each clip's feature is at least this (CPU bf16,
# random-init r3d_18, i3d, s3d, c3d, tsm, mvit_v2_s: measured >= 0.99995; tests/tasks/test_backbone_feeding.py).
# fp16 is for CUDA (CPU kernels for it are few and slow): not measured on this machine
PARITY_COSINE = {"bf16": 0.999, "fp16": 0.999}


class ActionBackbone(nn.Module):
    """Base class: subclasses implement `build` and `forward_features`; their input contract (crop, resize,
    normalisation) is their entry in the catalog (`specs.BACKBONES`).

    How a batch is fed (`feeding`): on CUDA the decoded clips are copied from pinned memory without blocking;
    `precision` runs the forward under autocast (bf16 or fp16; features come back as float32); `channels_last`
    stores 3D convolutions' inputs and weights channels-last (on this machine's CPU 1.2x faster for r3d_18 and c3d,
    1.9-2x for i3d and s3d, equal for tsm and mvit; extraction jobs turn it on by default). A new backbone is fp32
    and contiguous. None of them is part of the extractor id; each is recorded in the feature table."""

    info: BackboneInfo
    precision: str = "fp32"
    channels_last: bool = False
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

    def feeding(self, precision: str = "fp32", channels_last: bool = False) -> ActionBackbone:
        """Set how batches are fed (class docstring); returns self."""
        if precision not in PRECISIONS:
            raise ValueError(f"precision: expected one of {PRECISIONS}, got {precision!r}")
        if channels_last != self.channels_last:  # 3D convolutions' weights only (2D layers keep theirs)
            layout = torch.channels_last_3d if channels_last else torch.contiguous_format
            for param in self.net.parameters():
                if param.dim() == 5:
                    param.data = param.data.contiguous(memory_format=layout)
        self.precision, self.channels_last = precision, channels_last
        return self

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x [B, 3, T, H, W] normalised -> (pooled [B, D], tokens [B, N, C])."""
        raise NotImplementedError

    def convert_state_dict(self, state: dict[str, Any]) -> dict[str, Any]:
        """A checkpoint in another public layout -> this network's key names (identity by default)."""
        return state

    def load_weights(self, state: Mapping[str, Any]) -> None:
        """Load a checkpoint in any layout this family reads; anything else is refused naming the first keys it
        does not expect and the first it misses (BatchNorm's `num_batches_tracked` counters may be absent)."""
        state = self.convert_state_dict(dict(state))
        own = self.net.state_dict()
        optional = {k for k in own if k.endswith("num_batches_tracked")}
        unexpected = [k for k in state if k not in own]
        missing = [k for k in own if k not in state and k not in optional]
        if unexpected or missing:
            raise WeightsError(
                f"weights for {self.info.name}: not a checkpoint layout this backbone reads; unexpected keys "
                f"{unexpected[:3]} (of {len(unexpected)}), missing keys {missing[:3]} (of {len(missing)})"
            )
        try:
            self.net.load_state_dict(state, strict=False)
        except RuntimeError as exc:  # same names, other shapes
            raise WeightsError(f"weights for {self.info.name}: {str(exc).strip().splitlines()[-1].strip()}") from None

    def normalise(self, clips: np.ndarray) -> torch.Tensor:
        """uint8 [B, T, H, W, 3] decoded with short side ~ short_side -> normalised float [B, 3, T, H', W'] with
        H', W' >= the crop size."""
        crop = self.spec.crop_size
        h, w = clips.shape[2:4]
        if self.spec.crops == 1 and min(h, w) >= crop:  # only the centre crop is used: convert only it
            top, left = (h - crop) // 2, (w - crop) // 2
            clips = clips[:, :, top : top + crop, left : left + crop]
        x = torch.from_numpy(np.ascontiguousarray(clips))
        device = self._mean.device
        x = x.pin_memory().to(device, non_blocking=True) if device.type == "cuda" else x.to(device)
        x = x.permute(0, 4, 1, 2, 3).float().div_(255.0)
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
        return x.sub_(self._mean).div_(self._std)

    def crop_views(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The spec's crops of normalised clips [B, 3, T, H, W], in torchvision's FiveCrop/TenCrop order: 1 = the
        centre; 5 = top-left, top-right, bottom-left, bottom-right, centre; 10 = those 5, then each flipped
        horizontally. Each view is [B, 3, T, crop, crop]."""
        c = self.spec.crop_size
        h, w = x.shape[-2:]
        centre = ((h - c) // 2, (w - c) // 2)
        corners = [(0, 0), (0, w - c), (h - c, 0), (h - c, w - c)]
        views = [
            x[..., t : t + c, left : left + c] for t, left in ([centre] if self.spec.crops == 1 else [*corners, centre])
        ]
        return views + [v.flip(-1) for v in views] if self.spec.crops == 10 else views

    def preprocess(self, clips: np.ndarray) -> torch.Tensor:
        """uint8 [B, T, H, W, 3] -> the normalised centre crop [B, 3, T, crop, crop]."""
        x = self.normalise(clips)
        c = self.spec.crop_size
        top, left = (x.shape[-2] - c) // 2, (x.shape[-1] - c) // 2
        return x[..., top : top + c, left : left + c]

    @torch.no_grad()
    def extract(self, clips: np.ndarray, tokens: bool = False) -> ClipFeatures:
        """Per clip: the pooled feature averaged over the spec's crops, each crop's feature (when more than one),
        and on request the token map of the centre crop. Crops go through the network one at a time, so 10
        crops cost 10 forwards and no more memory than one."""
        x = self.normalise(clips)
        pooled, maps = [], None
        centre = 0 if self.spec.crops == 1 else 4
        layout = torch.channels_last_3d if self.channels_last else torch.contiguous_format
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)
        for i, view in enumerate(self.crop_views(x)):
            with torch.autocast(x.device.type, dtype=dtype, enabled=dtype is not None):
                p, tok = self.forward_features(view.contiguous(memory_format=layout))
            pooled.append(p.float())
            if i == centre:
                maps = tok.float() if tok is not None else None
        per_crop = torch.stack(pooled, 1)  # [B, K, D]
        return ClipFeatures(
            per_crop.mean(1).cpu().numpy(),
            per_crop.cpu().numpy() if self.spec.crops > 1 else None,
            maps.half().cpu().numpy() if tokens and maps is not None else None,
        )


@dataclass
class ClipFeatures:
    """What a backbone gives for a batch of clips."""

    pooled: np.ndarray  # float32 [B, D]: the mean over crops
    crops: np.ndarray | None  # float32 [B, K, D] when K > 1 crops
    tokens: np.ndarray | None  # float16 [B, N, C] of the centre crop, when asked


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
    state = load_state_dict(model.info.torchvision_weights, spec.weights)
    if state is not None:
        model.load_weights(state)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return model.to(device).eval()


@lru_cache(maxsize=2)
def cached_extractor(spec: ExtractorSpec, device: str | None = None) -> ActionBackbone:
    """One model per worker process and spec: built on the worker, never shipped over the wire."""
    return build_extractor(spec, device)
