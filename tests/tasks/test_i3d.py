"""I3D: pytorch-i3d's key names (so its released checkpoints load unchanged), hassony2's layout renamed to them,
anything else refused; features are Mixed_5c pooled and as tokens. Tiny clips (64 px, 8 frames) keep it cheap."""

import re

import numpy as np
import pytest
import torch

from tasks.media.backbones import ExtractorSpec, WeightsError, build_extractor

TINY = {"size": 64, "clip_len": 8}
PIERGIAJ_KEY = re.compile(
    r"(Conv3d_1a_7x7|Conv3d_2b_1x1|Conv3d_2c_3x3|Mixed_(3[bc]|4[b-f]|5[bc])\.(b0|b1a|b1b|b2a|b2b|b3b))"
    r"\.(conv3d\.weight|bn\.(weight|bias|running_mean|running_var|num_batches_tracked))"
    r"|logits\.conv3d\.(weight|bias)"
)
TO_HASSONY2_BRANCH = {
    "b0": "branch_0",
    "b1a": "branch_1.0",
    "b1b": "branch_1.1",
    "b2a": "branch_2.0",
    "b2b": "branch_2.1",
    "b3b": "branch_3.1",
}


def clips_for(spec: ExtractorSpec, seed: int = 0) -> np.ndarray:
    side = spec.short_side
    return np.random.default_rng(seed).integers(0, 255, (1, spec.clip_len, side, side * 4 // 3, 3), dtype=np.uint8)


def to_hassony2(key: str) -> str:
    """pytorch-i3d name -> hassony2/kinetics_i3d_pytorch name (the inverse of what the backbone converts)."""
    top, *rest = key.split(".")
    top = "conv3d_0c_1x1" if top == "logits" else top[0].lower() + top[1:]
    rest = [TO_HASSONY2_BRANCH.get(p, "batch3d" if p == "bn" else p) for p in rest]
    return ".".join([top, *rest])


@pytest.fixture(scope="module")
def tiny():
    return build_extractor(ExtractorSpec("i3d", seed=3, **TINY), "cpu")


def test_real_size_clip_gives_1024_d_feature_and_7x7_tokens():
    spec = ExtractorSpec("i3d")
    assert (spec.crop_size, spec.short_side) == (224, 256)
    out = build_extractor(spec, "cpu").extract(clips_for(spec), tokens=True)
    assert out.pooled.shape == (1, 1024) and out.pooled.dtype == np.float32 and np.isfinite(out.pooled).all()
    assert out.tokens is not None and out.tokens.shape == (1, 49, 1024) and out.tokens.dtype == np.float16
    assert out.crops is None


def test_tiny_clip_tokens_follow_the_spatial_size(tiny):
    out = tiny.extract(clips_for(tiny.spec), tokens=True)
    assert out.pooled.shape == (1, 1024) and out.pooled.dtype == np.float32
    assert out.tokens is not None and out.tokens.shape == (1, 4, 1024) and out.tokens.dtype == np.float16  # 64/32
    np.testing.assert_allclose(out.tokens.astype(np.float32).mean(1), out.pooled, rtol=2e-3, atol=2e-3)


def test_pooled_feature_is_the_mean_of_the_token_map(tiny):
    with torch.no_grad():
        pooled, tokens = tiny.forward_features(tiny.preprocess(clips_for(tiny.spec)))
    assert pooled.dtype == tokens.dtype == torch.float32
    torch.testing.assert_close(pooled, tokens.mean(1))


def test_state_dict_uses_pytorch_i3d_names(tiny):
    state = tiny.net.state_dict()
    assert [k for k in state if not PIERGIAJ_KEY.fullmatch(k)] == []
    for key in ("Conv3d_1a_7x7.conv3d.weight", "Conv3d_1a_7x7.bn.running_var", "Mixed_5c.b3b.conv3d.weight"):
        assert key in state
    assert state["logits.conv3d.weight"].shape == (400, 1024, 1, 1, 1) and "logits.conv3d.bias" in state
    assert state["Mixed_4b.b2b.conv3d.weight"].shape == (48, 16, 3, 3, 3)  # 3x3x3 as in the port
    assert sum(p.numel() for p in tiny.net.parameters()) == 12_697_264
    bns = [m for m in tiny.net.modules() if isinstance(m, torch.nn.BatchNorm3d)]
    assert len(bns) == 57 and all(m.eps == 1e-3 and m.momentum == 0.01 for m in bns)
    convs = [m for m in tiny.net.modules() if isinstance(m, torch.nn.Conv3d)]
    assert [m for m in convs if m.bias is not None] == [tiny.net.logits.conv3d]


def test_saved_weights_load_back_and_another_seed_differs(tiny, tmp_path):
    path = tmp_path / "i3d.pt"
    torch.save(tiny.net.state_dict(), path)
    clips = clips_for(tiny.spec, 1)
    loaded = build_extractor(ExtractorSpec("i3d", weights=str(path), **TINY), "cpu")
    np.testing.assert_array_equal(tiny.extract(clips).pooled, loaded.extract(clips).pooled)
    other = build_extractor(ExtractorSpec("i3d", seed=4, **TINY), "cpu")
    assert not np.allclose(tiny.extract(clips).pooled, other.extract(clips).pooled)


def test_hassony2_layout_is_renamed_and_gives_identical_features(tiny, tmp_path):
    # released checkpoints predate BatchNorm's num_batches_tracked: leave the counters out
    state = {to_hassony2(k): v for k, v in tiny.net.state_dict().items() if not k.endswith("num_batches_tracked")}
    assert "mixed_3b.branch_1.0.batch3d.running_mean" in state and "conv3d_0c_1x1.conv3d.bias" in state
    torch.save(state, tmp_path / "model_rgb.pth")
    loaded = build_extractor(ExtractorSpec("i3d", weights=str(tmp_path / "model_rgb.pth"), **TINY), "cpu")
    clips = clips_for(tiny.spec, 2)
    np.testing.assert_array_equal(tiny.extract(clips).pooled, loaded.extract(clips).pooled)


def test_a_classifier_for_another_label_set_loads(tiny, tmp_path):
    """rgb_charades.pt has 157 classes: the unused logits take the checkpoint's size instead of failing."""
    state = tiny.net.state_dict()
    state["logits.conv3d.weight"], state["logits.conv3d.bias"] = torch.zeros(157, 1024, 1, 1, 1), torch.zeros(157)
    torch.save(state, tmp_path / "charades.pt")
    loaded = build_extractor(ExtractorSpec("i3d", weights=str(tmp_path / "charades.pt"), **TINY), "cpu")
    assert loaded.net.logits.conv3d.out_channels == 157
    clips = clips_for(tiny.spec, 3)
    np.testing.assert_array_equal(tiny.extract(clips).pooled, loaded.extract(clips).pooled)


def test_other_layouts_are_refused_naming_keys(tiny, tmp_path):
    from torchvision.models.video import r3d_18

    state = tiny.net.state_dict()
    cases = {
        "prefixed": ({f"foo.{k}": v for k, v in state.items()}, "foo.Conv3d_1a_7x7.conv3d.weight"),
        "r3d_18": (r3d_18(weights=None).state_dict(), "stem.0.weight"),
        # a hassony2 checkpoint with a key of neither layout: renaming must not hide it
        "hassony2+extra": ({**{to_hassony2(k): v for k, v in state.items()}, "fc.weight": torch.zeros(1)}, "fc.weight"),
    }
    for name, (bad, unexpected) in cases.items():
        torch.save(bad, tmp_path / f"{name}.pt")
        spec = ExtractorSpec("i3d", weights=str(tmp_path / f"{name}.pt"), **TINY)
        missing = "missing keys \\[\\]" if name == "hassony2+extra" else "missing keys \\['Conv3d_1a_7x7.conv3d.weight'"
        with pytest.raises(WeightsError, match=f"unexpected keys \\['{re.escape(unexpected)}'.*{missing}"):
            build_extractor(spec, "cpu")
