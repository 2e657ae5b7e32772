import pytest
import torch

from anomaly_models import ADNet, layers_for_window


def test_layers_for_window_formula_10():
    assert layers_for_window(64, 3) == 6
    assert layers_for_window(128, 3) == 7


@pytest.mark.parametrize("valid", [10, 1, 23])
def test_padded_features_never_change_valid_outputs(valid):
    torch.manual_seed(0)
    model = ADNet(in_dim=8, hidden=16, stages=3, layers=5).eval()
    x = torch.randn(2, 32, 8)
    mask = torch.zeros(2, 32, dtype=torch.bool)
    mask[:, :valid] = True
    x2 = x.clone()
    x2[:, valid:] = torch.randn(2, 32 - valid, 8) * 100
    out1, out2 = model(x, mask), model(x2, mask)
    assert out1.shape == (3, 2, 32)
    torch.testing.assert_close(out1[:, :, :valid], out2[:, :, :valid], rtol=0, atol=1e-6)
    assert torch.all(out1[:, :, valid:] == 0) and torch.all(out2[:, :, valid:] == 0)
    assert torch.all(out1[:, :, :valid] > 0)
