"""ADNet: MS-TCN with sigmoid outputs (thesis section on ADNet).

A layer and a stage are each one small class; masking keeps padded clips from influencing valid ones:
every layer multiplies its output by the mask, so padded positions are zero before the next dilated conv.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def layers_for_window(window: int, kernel: int = 3) -> int:
    """Formula 10: L = ceil(log2(W / floor(K/2))) -- the receptive field then covers the window."""
    return max(1, math.ceil(math.log2(window / (kernel // 2))))


class DilatedResidualLayer(nn.Module):
    def __init__(self, dilation: int, channels: int, kernel: int = 3):
        super().__init__()
        self.conv_dilated = nn.Conv1d(channels, channels, kernel, padding=dilation * (kernel // 2), dilation=dilation)
        self.conv_1x1 = nn.Conv1d(channels, channels, 1)
        self.dropout = nn.Dropout(0.5)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        out = self.conv_1x1(torch.relu(self.conv_dilated(x)))
        return (x + self.dropout(out)) * mask


class SingleStage(nn.Module):
    def __init__(self, layers: int, channels: int, in_dim: int, kernel: int = 3):
        super().__init__()
        self.conv_in = nn.Conv1d(in_dim, channels, 1)
        self.layers = nn.ModuleList(DilatedResidualLayer(2**i, channels, kernel) for i in range(layers))
        self.conv_out = nn.Conv1d(channels, 1, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        out = self.conv_in(x) * mask
        for layer in self.layers:
            out = layer(out, mask)
        return torch.sigmoid(self.conv_out(out)) * mask


class ADNet(nn.Module):
    """forward(features [B, T, D], mask [B, T] bool) -> sigmoid scores of every stage [S, B, T]."""

    def __init__(self, in_dim: int, hidden: int = 64, stages: int = 5, layers: int = 6, kernel: int = 3):
        super().__init__()
        self.config = dict(in_dim=in_dim, hidden=hidden, stages=stages, layers=layers, kernel=kernel)
        self.stage1 = SingleStage(layers, hidden, in_dim, kernel)
        self.stages = nn.ModuleList(SingleStage(layers, hidden, 1, kernel) for _ in range(stages - 1))

    @classmethod
    def config_for(cls, shapes: dict[str, tuple[int, ...]], window: int) -> dict:
        """in_dim from the features [T, D]; enough layers for the window to be one receptive field."""
        return {"in_dim": shapes["features"][-1], "layers": layers_for_window(window)}

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask.to(features.dtype).unsqueeze(1)  # [B, 1, T]
        out = self.stage1(features.transpose(1, 2) * m, m)
        outputs = [out]
        for stage in self.stages:
            out = stage(out, m)
            outputs.append(out)
        return torch.stack(outputs).squeeze(2)  # [S, B, T]
