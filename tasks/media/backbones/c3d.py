"""Sports-1M C3D (Tran et al. 2015) with the parameter names of the common PyTorch port (DavideA/c3d-pytorch), so
its converted weights load as they are: fc6 activations are the pooled feature (the public "C3D features"),
conv5b averaged over time the tokens."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .base import ActionBackbone, ExtractorSpec, map_tokens


def _conv(cin: int, cout: int) -> nn.Conv3d:
    return nn.Conv3d(cin, cout, kernel_size=(3, 3, 3), padding=(1, 1, 1))


class C3DNet(nn.Module):
    """The port's module, attribute for attribute (its state_dict keys are the checkpoint's)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = _conv(3, 64)
        self.pool1 = nn.MaxPool3d(kernel_size=(1, 2, 2), stride=(1, 2, 2))
        self.conv2 = _conv(64, 128)
        self.pool2 = nn.MaxPool3d(kernel_size=(2, 2, 2), stride=(2, 2, 2))
        self.conv3a = _conv(128, 256)
        self.conv3b = _conv(256, 256)
        self.pool3 = nn.MaxPool3d(kernel_size=(2, 2, 2), stride=(2, 2, 2))
        self.conv4a = _conv(256, 512)
        self.conv4b = _conv(512, 512)
        self.pool4 = nn.MaxPool3d(kernel_size=(2, 2, 2), stride=(2, 2, 2))
        self.conv5a = _conv(512, 512)
        self.conv5b = _conv(512, 512)
        self.pool5 = nn.MaxPool3d(kernel_size=(2, 2, 2), stride=(2, 2, 2), padding=(0, 1, 1))
        self.fc6 = nn.Linear(8192, 4096)
        self.fc7 = nn.Linear(4096, 4096)
        self.fc8 = nn.Linear(4096, 487)
        self.dropout = nn.Dropout(p=0.5)
        self.relu = nn.ReLU()

    def conv_features(self, x: torch.Tensor) -> torch.Tensor:
        """[B, 3, 16, 112, 112] -> conv5b after ReLU, before pool5: [B, 512, 2, 7, 7]."""
        r = self.relu
        h = self.pool1(r(self.conv1(x)))
        h = self.pool2(r(self.conv2(h)))
        h = self.pool3(r(self.conv3b(r(self.conv3a(h)))))
        h = self.pool4(r(self.conv4b(r(self.conv4a(h)))))
        return r(self.conv5b(r(self.conv5a(h))))

    def fc6_features(self, conv5b: torch.Tensor) -> torch.Tensor:
        return self.relu(self.fc6(self.pool5(conv5b).flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Sports-1M logits (487 classes), as the port computes them."""
        h = self.dropout(self.fc6_features(self.conv_features(x)))
        return self.fc8(self.dropout(self.relu(self.fc7(h))))


class C3D(ActionBackbone):
    def build(self, spec: ExtractorSpec) -> nn.Module:
        return C3DNet()

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        fmap = self.net.conv_features(x)
        return self.net.fc6_features(fmap), map_tokens(fmap)

    def convert_state_dict(self, state: dict[str, Any]) -> dict[str, Any]:
        """The port's layout is the only one; DataParallel saves prefix every key with `module.`."""
        return {k.removeprefix("module."): v for k, v in state.items()}
