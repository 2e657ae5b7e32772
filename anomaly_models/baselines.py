"""The thesis's comparison baselines under the same windows: a per-clip MLP and ED-TCN.

Both return [1, B, T] so the losses, training loop and stitching treat them like ADNet's stages.
"""

from __future__ import annotations

import torch
from torch import nn


class FeatureModel(nn.Module):
    """Baselines read the pooled clip features only; their width is the one derived setting."""

    @classmethod
    def config_for(cls, shapes: dict[str, tuple[int, ...]], window: int) -> dict:
        return {"in_dim": shapes["features"][-1]}


class MLP(FeatureModel):
    """Three layers scoring each clip alone (the thesis's MLP [C3D])."""

    def __init__(self, in_dim: int, hidden: int = 512, dropout: float = 0.6):
        super().__init__()
        self.config = dict(in_dim=in_dim, hidden=hidden, dropout=dropout)
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden // 16),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden // 16, 1),
        )

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return (torch.sigmoid(self.net(features).squeeze(-1)) * mask.to(features.dtype)).unsqueeze(0)


class EDTCN(FeatureModel):
    """Encoder-decoder temporal conv net (Lea et al.): conv + pool per encoder level, upsample + conv per decoder
    level. Window lengths are padded up to a multiple of 2**levels internally."""

    def __init__(self, in_dim: int, channels: tuple[int, ...] = (64, 96), kernel: int = 9):
        super().__init__()
        self.config = dict(in_dim=in_dim, channels=list(channels), kernel=kernel)
        pad = kernel // 2
        enc, dims = [], [in_dim, *channels]
        for a, b in zip(dims[:-1], dims[1:]):
            enc.append(nn.Sequential(nn.Conv1d(a, b, kernel, padding=pad), nn.ReLU(), nn.MaxPool1d(2)))
        dec, rdims = [], list(reversed(channels))
        for a, b in zip(rdims, [*rdims[1:], rdims[-1]]):
            dec.append(nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv1d(a, b, kernel, padding=pad), nn.ReLU()))
        self.encoder, self.decoder = nn.ModuleList(enc), nn.ModuleList(dec)
        self.out = nn.Conv1d(rdims[-1], 1, 1)

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask.to(features.dtype)
        t = features.shape[1]
        mult = 2 ** len(self.encoder)
        pad = (-t) % mult
        x = nn.functional.pad((features * m.unsqueeze(-1)).transpose(1, 2), (0, pad))
        masks = [nn.functional.pad(m, (0, pad)).unsqueeze(1)]  # the mask at every temporal resolution
        for layer in self.encoder:  # zero padded positions after every layer, at that layer's resolution
            masks.append(nn.functional.max_pool1d(masks[-1], 2))
            x = layer(x) * masks[-1]
        for layer in self.decoder:
            masks.pop()
            x = layer(x) * masks[-1]
        return (torch.sigmoid(self.out(x)[:, 0, :t]) * m).unsqueeze(0)
