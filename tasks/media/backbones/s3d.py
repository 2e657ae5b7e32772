"""torchvision's S3D: the mean of its last feature map, and the map as tokens."""

from __future__ import annotations

import torch
from torch import nn

from .base import ActionBackbone, ExtractorSpec, map_tokens


class S3D(ActionBackbone):
    def build(self, spec: ExtractorSpec) -> nn.Module:
        from torchvision.models.video import s3d

        return s3d(weights=None)

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        fmap = self.net.features(x)
        return fmap.mean(dim=(2, 3, 4)), map_tokens(fmap)
