"""torchvision's 3D ResNets (r3d_18, mc3_18, r2plus1d_18): pooled layer4 features and its token map."""

from __future__ import annotations

import torch
from torch import nn

from .base import ActionBackbone, ExtractorSpec, map_tokens


class ResNet3D(ActionBackbone):
    """One class for the three: the catalog entry's name picks the torchvision builder."""

    def build(self, spec: ExtractorSpec) -> nn.Module:
        from torchvision.models import video

        return getattr(video, self.info.name)(weights=None)

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n = self.net
        fmap = n.layer4(n.layer3(n.layer2(n.layer1(n.stem(x)))))
        return n.avgpool(fmap).flatten(1), map_tokens(fmap)
