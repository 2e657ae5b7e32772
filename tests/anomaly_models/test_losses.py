import pytest
import torch

from anomaly_models.losses import ad_loss, stage_loss


def test_ad_loss_hand_computed():
    scores = torch.tensor([[0.2, 0.45, 0.3, 0.9]])
    labels = torch.tensor([[1.0, 1.0, 0.0, 0.0]])
    mask = torch.ones(1, 4, dtype=torch.bool)
    # abnormal 0.2 -> closest normal 0.3 ; abnormal 0.45 -> closest normal 0.3
    # sum_A (yA - yHN - a) = (0.2-0.3-0.5) + (0.45-0.3-0.5) = -0.6 + -0.35 = -0.95
    # normal 0.3 -> closest abnormal 0.2; normal 0.9 -> closest abnormal 0.45
    # sum_N (yHA - yN - a) = (0.2-0.3-0.5) + (0.45-0.9-0.5) = -0.6 + -0.95 = -1.55
    # L = max(0.95 + 1.55, 0) = 2.5
    assert float(ad_loss(scores, labels, mask, alpha=0.5)) == pytest.approx(2.5, abs=1e-6)


def test_ad_loss_zero_when_separated_and_ignores_padding():
    scores = torch.tensor([[0.99, 0.01, 0.5]])
    labels = torch.tensor([[1.0, 0.0, 1.0]])
    mask = torch.tensor([[True, True, False]])
    assert float(ad_loss(scores, labels, mask, alpha=0.5)) == 0.0


def test_stage_loss_sums_over_stages_and_ignores_padding():
    stages = torch.tensor([[[0.5, 0.5, 0.9]], [[1.0, 0.0, 0.1]]])
    labels = torch.tensor([[1.0, 0.0, 0.0]])
    mask = torch.tensor([[True, True, False]])
    assert float(stage_loss(stages, labels, mask, "mse")) == pytest.approx(0.25)
