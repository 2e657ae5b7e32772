"""Training losses: per-stage MSE/BCE over valid clips summed over stages, and the thesis's AD loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def stage_loss(stage_scores: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor, kind: str = "mse") -> torch.Tensor:
    """stage_scores [S, B, T] in (0, 1); labels [B, T]; mask [B, T] bool. Mean over valid clips, summed over stages."""
    valid = mask.bool()
    target = labels[valid]
    total = stage_scores.new_zeros(())
    for scores in stage_scores:
        pred = scores[valid]
        if kind == "mse":
            total = total + F.mse_loss(pred, target)
        elif kind == "bce":
            total = total + F.binary_cross_entropy(pred.clamp(1e-6, 1 - 1e-6), target)
        else:
            raise ValueError(f"loss kind must be 'mse' or 'bce', got {kind!r}")
    return total


def ad_loss(scores: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor, alpha: float = 0.5) -> torch.Tensor:
    """L_AD = max(-sum_A (y_A - y_HN - a) - sum_N (y_HA - y_N - a), 0) per sequence, summed over the batch.

    scores/labels/mask: [B, T]. For each abnormal clip A the hard negative HN is the normal clip whose score is
    closest to y_A; for each normal clip N the hard abnormal HA is the abnormal clip closest to y_N. Sequences
    without both classes contribute 0.
    """
    total = scores.new_zeros(())
    for y, lab, m in zip(scores, labels, mask.bool()):
        y, lab = y[m], lab[m]
        abn, nor = y[lab > 0.5], y[lab <= 0.5]
        if len(abn) == 0 or len(nor) == 0:
            continue
        dist = (abn[:, None] - nor[None, :]).abs()  # [A, N]
        hard_neg = nor[dist.argmin(dim=1)]  # for each abnormal clip
        hard_abn = abn[dist.argmin(dim=0)]  # for each normal clip
        value = -(abn - hard_neg - alpha).sum() - (hard_abn - nor - alpha).sum()
        total = total + torch.clamp(value, min=0)
    return total
