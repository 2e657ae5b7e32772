import numpy as np
import pytest
import torch

from tasks.media.backbones import ExtractorSpec, WeightsError, build_extractor
from tasks.media.backbones.tsm import TemporalShift

TSM_SMALL = {"size": 112, "clip_len": 8}  # 8 frames (one per segment) at 112 px keeps ResNet-50 fast on CPU


def clips_for(spec: ExtractorSpec, seed: int = 0) -> np.ndarray:
    side = spec.short_side
    return np.random.default_rng(seed).integers(0, 255, (1, spec.clip_len, side, side * 4 // 3, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def c3d():
    return build_extractor(ExtractorSpec("c3d", seed=3), "cpu")


@pytest.fixture(scope="module")
def tsm():
    return build_extractor(ExtractorSpec("tsm", seed=3, **TSM_SMALL), "cpu")


def test_c3d_gives_fc6_features_and_conv5b_tokens(c3d):
    out = c3d.extract(clips_for(c3d.spec), tokens=True)
    assert out.pooled.shape == (1, 4096) and out.pooled.dtype == np.float32 and np.isfinite(out.pooled).all()
    assert (out.pooled >= 0).all()  # fc6 after ReLU
    assert out.tokens.shape == (1, 49, 512) and out.tokens.dtype == np.float16


def test_c3d_weights_in_the_port_layout_load_back(c3d, tmp_path):
    clips = clips_for(c3d.spec, 1)
    expected = c3d.extract(clips).pooled
    state = c3d.net.state_dict()
    assert {"conv3a.weight", "conv5b.bias", "fc6.weight", "fc8.bias"} <= set(state)
    assert state["fc6.weight"].shape == (4096, 8192) and state["fc8.weight"].shape == (487, 4096)
    for name, layout in [("plain", state), ("dataparallel", {f"module.{k}": v for k, v in state.items()})]:
        path = tmp_path / f"c3d_{name}.pt"
        torch.save(layout, path)
        loaded = build_extractor(ExtractorSpec("c3d", weights=str(path)), "cpu")
        np.testing.assert_array_equal(loaded.extract(clips).pooled, expected)
        path.unlink()  # ~300 MB each
    other = build_extractor(ExtractorSpec("c3d", seed=4), "cpu")
    assert not np.allclose(other.extract(clips).pooled, expected)


def test_c3d_refuses_another_layout_naming_keys(c3d, tmp_path):
    state = {k.replace("conv3a.", "conv3.0."): v for k, v in c3d.net.state_dict().items() if not k.startswith("fc")}
    path = tmp_path / "other.pt"
    torch.save(state, path)
    with pytest.raises(WeightsError, match=r"unexpected keys \['conv3\.0\.weight'.*missing keys \['conv3a\.weight'"):
        build_extractor(ExtractorSpec("c3d", weights=str(path)), "cpu")


def test_temporal_shift_moves_one_fold_each_way():
    n_seg, c = 8, 16  # fold = 16 // 8 = 2
    x = torch.arange(2 * n_seg * c * 2 * 2, dtype=torch.float32).view(2 * n_seg, c, 2, 2) + 1
    out = TemporalShift.shift(x, n_seg, fold_div=8).view(2, n_seg, c, 2, 2)
    xs = x.view(2, n_seg, c, 2, 2)
    torch.testing.assert_close(out[:, :-1, 0:2], xs[:, 1:, 0:2])  # from t+1
    assert (out[:, -1, 0:2] == 0).all()
    torch.testing.assert_close(out[:, 1:, 2:4], xs[:, :-1, 2:4])  # from t-1
    assert (out[:, 0, 2:4] == 0).all()
    torch.testing.assert_close(out[:, :, 4:], xs[:, :, 4:])
    conv = torch.nn.Conv2d(c, 4, 1)
    torch.testing.assert_close(TemporalShift(conv, n_seg, 8)(x), conv(out.view_as(x)))


def test_tsm_wraps_every_bottleneck_and_gives_layer4_features(tsm):
    state = tsm.net.state_dict()
    assert "layer1.0.conv1.net.weight" in state and "layer4.2.conv1.net.weight" in state
    assert sum(isinstance(m, TemporalShift) for m in tsm.net.modules()) == 16  # 3 + 4 + 6 + 3 blocks
    assert not any(k.startswith("fc.") for k in state)
    out = tsm.extract(clips_for(tsm.spec), tokens=True)
    assert out.pooled.shape == (1, 2048) and out.pooled.dtype == np.float32 and np.isfinite(out.pooled).all()
    assert out.tokens.shape == (1, 16, 2048) and out.tokens.dtype == np.float16


def test_tsm_samples_segment_centres_and_shift_mixes_them(tsm):
    x = torch.randn(1, 3, 16, 32, 32)
    pooled, _ = tsm.forward_features(x)
    torch.testing.assert_close(tsm.forward_features(x[:, :, 1::2])[0], pooled)  # frames 1, 3, ..., 15
    y = x.clone()
    y[:, :, 0::2] = 0  # frames between the segment centres do not matter
    torch.testing.assert_close(tsm.forward_features(y)[0], pooled)
    swapped = x[:, :, 1::2][:, :, [1, 0, 2, 3, 4, 5, 6, 7]]
    assert not torch.allclose(tsm.forward_features(swapped)[0], pooled)  # the shift makes segment order matter


def test_tsm_weights_in_both_layouts_load_back(tsm, tmp_path):
    from torchvision.models import resnet50

    clips = clips_for(tsm.spec, 1)
    expected = tsm.extract(clips).pooled
    own = tsm.net.state_dict()
    reference = {f"module.base_model.{k}": v for k, v in own.items()}
    reference |= {"module.new_fc.weight": torch.randn(400, 2048), "module.new_fc.bias": torch.zeros(400)}
    torchvision_state = resnet50(weights=None).state_dict()
    for k in torchvision_state:
        if not k.startswith("fc."):
            torchvision_state[k] = own[k.replace(".conv1.weight", ".conv1.net.weight") if "layer" in k else k]
    layouts = {
        "reference": reference,
        "reference_checkpoint": {"epoch": 50, "arch": "resnet50", "state_dict": reference},
        "torchvision": torchvision_state,
    }
    for name, state in layouts.items():
        path = tmp_path / f"tsm_{name}.pt"
        torch.save(state, path)
        loaded = build_extractor(ExtractorSpec("tsm", weights=str(path), **TSM_SMALL), "cpu")
        np.testing.assert_array_equal(loaded.extract(clips).pooled, expected, err_msg=name)
    other = build_extractor(ExtractorSpec("tsm", seed=4, **TSM_SMALL), "cpu")
    assert not np.allclose(other.extract(clips).pooled, expected)


def test_tsm_refuses_another_layout_naming_keys(tsm, tmp_path):
    state = {k.replace("bn1.", "stem.bn."): v for k, v in tsm.net.state_dict().items()}
    state["module.classifier.weight"] = torch.zeros(400, 2048)  # an unknown head is not silently dropped
    path = tmp_path / "other.pt"
    torch.save(state, path)
    with pytest.raises(WeightsError, match=r"unexpected keys \['stem\.bn\.weight'.*missing keys \['bn1\.weight'"):
        build_extractor(ExtractorSpec("tsm", weights=str(path), **TSM_SMALL), "cpu")
    torch.save({"module.classifier.weight": torch.zeros(400, 2048)} | tsm.net.state_dict(), path)
    with pytest.raises(WeightsError, match=r"unexpected keys \['classifier\.weight'\].*missing keys \[\]"):
        build_extractor(ExtractorSpec("tsm", weights=str(path), **TSM_SMALL), "cpu")
