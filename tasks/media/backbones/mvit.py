"""torchvision's MViT v2 S: the CLS token as the pooled feature, the last block's tokens averaged over time."""

from __future__ import annotations

import torch
from torch import nn

from .base import ActionBackbone, ExtractorSpec


class MViTV2S(ActionBackbone):
    def build(self, spec: ExtractorSpec) -> nn.Module:
        from torchvision.models.video import mvit_v2_s

        return mvit_v2_s(weights=None)

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n = self.net
        x = n.conv_proj(x)
        x = x.flatten(2).transpose(1, 2)
        x = n.pos_encoding(x)
        thw = (n.pos_encoding.temporal_size,) + n.pos_encoding.spatial_size
        for block in n.blocks:
            x, thw = block(x, thw)
        x = n.norm(x)
        cls, rest = x[:, 0], x[:, 1:]
        t, h, w = thw
        tok = rest.reshape(rest.shape[0], t, h * w, rest.shape[-1]).mean(dim=1)
        return cls, tok
