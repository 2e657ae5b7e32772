"""TSM ResNet-50 (Lin et al. 2019, mit-han-lab/temporal-shift-module): torchvision's ResNet-50 run on 8 frames
(one per segment) as a batch, with a residual temporal shift before every Bottleneck's conv1 that mixes
neighbouring segments. Pooled feature: layer4 averaged over space and segments; tokens: layer4 averaged over
segments."""

from __future__ import annotations

import re
from typing import Any

import torch
from torch import nn

from .base import ActionBackbone, ExtractorSpec, map_tokens

N_SEGMENT = 8
_TV_CONV1 = re.compile(r"^(layer\d+\.\d+\.conv1)\.weight$")  # torchvision's name; the shift wraps it as `.net`
_CLASSIFIERS = {"new_fc.weight", "new_fc.bias", "fc.weight", "fc.bias"}  # reference / torchvision heads, unused


class TemporalShift(nn.Module):
    """Shift part of the channels along time, then apply `net`; the wrapper (not a separate layer) keeps the
    reference checkpoints' key names (`layerX.Y.conv1.net.weight`)."""

    def __init__(self, net: nn.Module, n_segment: int = N_SEGMENT, fold_div: int = 8):
        super().__init__()
        self.net, self.n_segment, self.fold_div = net, n_segment, fold_div

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.shift(x, self.n_segment, self.fold_div))

    @staticmethod
    def shift(x: torch.Tensor, n_segment: int, fold_div: int = 8) -> torch.Tensor:
        """[N*T, C, H, W]: channels [0, fold) take segment t+1, [fold, 2*fold) segment t-1 (zeros at the ends),
        the rest stay (the reference's `TemporalShift.shift`, not in place)."""
        nt, c, h, w = x.shape
        x = x.view(nt // n_segment, n_segment, c, h, w)
        fold = c // fold_div
        out = torch.zeros_like(x)
        out[:, :-1, :fold] = x[:, 1:, :fold]
        out[:, 1:, fold : 2 * fold] = x[:, :-1, fold : 2 * fold]
        out[:, :, 2 * fold :] = x[:, :, 2 * fold :]
        return out.view(nt, c, h, w)


class TSM(ActionBackbone):
    def build(self, spec: ExtractorSpec) -> nn.Module:
        from torchvision.models import resnet50

        net = resnet50(weights=None)
        for layer in (net.layer1, net.layer2, net.layer3, net.layer4):
            for block in layer:
                block.conv1 = TemporalShift(block.conv1, N_SEGMENT, 8)
        net.fc = nn.Identity()  # features only; no head keys, so both checkpoint layouts drop theirs
        return net

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, c, t = x.shape[:3]
        idx = [(2 * i + 1) * t // (2 * N_SEGMENT) for i in range(N_SEGMENT)]  # segment centres
        frames = x[:, :, idx].transpose(1, 2).reshape(b * N_SEGMENT, c, *x.shape[-2:])
        n = self.net
        fmap = n.layer4(n.layer3(n.layer2(n.layer1(n.maxpool(n.relu(n.bn1(n.conv1(frames))))))))
        fmap = fmap.view(b, N_SEGMENT, *fmap.shape[1:]).transpose(1, 2)  # [B, 2048, 8, h, w]
        return fmap.mean(dim=(2, 3, 4)), map_tokens(fmap)

    def convert_state_dict(self, state: dict[str, Any]) -> dict[str, Any]:
        """The reference checkpoint (`module.base_model.*` plus the `module.new_fc` head, possibly inside the
        training checkpoint's `state_dict`) or plain torchvision ResNet-50 weights (`layerX.Y.conv1.weight`, `fc`)
        -> this network's keys. Only the two heads are dropped; anything else unknown is left for the base class
        to refuse."""
        if isinstance(state.get("state_dict"), dict):
            state = state["state_dict"]
        out = {}
        for key, value in state.items():
            k = key.removeprefix("module.")
            if k in _CLASSIFIERS:
                continue
            k = _TV_CONV1.sub(r"\1.net.weight", k.removeprefix("base_model."))
            out[k] = value
        return out
