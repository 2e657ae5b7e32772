import numpy as np
import pytest
import torch

from tasks.media.backbones import BACKBONES, ExtractorSpec, WeightsError, build_extractor


@pytest.mark.parametrize(
    "name, dim", [("r3d_18", 512), ("mc3_18", 512), ("r2plus1d_18", 512), ("s3d", 1024), ("mvit_v2_s", 768)]
)
def test_every_backbone_gives_pooled_features_and_tokens(name, dim):
    assert name in BACKBONES
    spec = ExtractorSpec(backbone=name)
    model = build_extractor(spec, "cpu")
    side = spec.short_side
    clips = np.random.default_rng(0).integers(0, 255, (1, 16, side, side * 4 // 3, 3), dtype=np.uint8)
    out = model.extract(clips, tokens=True)
    feats, tokens = out.pooled, out.tokens
    assert feats.shape == (1, dim) and feats.dtype == np.float32 and np.isfinite(feats).all()
    assert tokens.dtype == np.float16 and tokens.shape[0] == 1 and tokens.shape[1] == 49


def test_extractor_id_names_what_makes_features_comparable():
    assert ExtractorSpec().extractor_id == "r3d_18-random0-c16s16-112"
    assert ExtractorSpec("s3d", stride=8, size=160).extractor_id == "s3d-random0-c16s8-160"
    assert ExtractorSpec(weights="KINETICS400_V1").extractor_id == "r3d_18-kinetics400v1-c16s16-112"


def test_saved_random_weights_loaded_as_file_give_identical_features(tmp_path):
    spec = ExtractorSpec(size=64, seed=5)
    model = build_extractor(spec, "cpu")
    path = tmp_path / "r3d.pt"
    torch.save(model.net.state_dict(), path)
    from_file = build_extractor(ExtractorSpec(size=64, weights=str(path)), "cpu")
    clips = np.random.default_rng(1).integers(0, 255, (2, 16, 73, 97, 3), dtype=np.uint8)
    np.testing.assert_array_equal(model.extract(clips).pooled, from_file.extract(clips).pooled)
    assert ExtractorSpec(size=64, weights=str(path)).extractor_id.startswith("r3d_18-file")
    other = build_extractor(ExtractorSpec(size=64, seed=6), "cpu")
    assert not np.allclose(model.extract(clips).pooled, other.extract(clips).pooled)


def test_missing_weights_are_an_error_not_a_silent_fallback(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        build_extractor(ExtractorSpec(weights=str(tmp_path / "missing.pt")))
    with pytest.raises(WeightsError, match="unknown weights"):
        build_extractor(ExtractorSpec(weights="NOT_A_WEIGHT"))
