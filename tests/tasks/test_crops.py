"""Multi-crop features: which pixels each crop takes, and what the feature table stores."""

import os
import shutil

import numpy as np
import pytest
import torch

from anomaly_models.errors import UsageError
from tasks.jobs.extract import ExtractJob, extract_video
from tasks.media.backbones import ExtractorSpec, build_extractor
from tasks.store.archive import discover_videos
from tasks.store.output import OutputStore
from tests.conftest import VIDEOS

H, W, C = 40, 60, 32  # a frame larger than the crop on both sides


def position_clip() -> np.ndarray:
    """One clip whose pixels say where they are: R = row, G = column."""
    rows, cols = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
    frame = np.stack([rows, cols, np.zeros_like(rows)], -1).astype(np.uint8)
    return np.repeat(frame[None, None], 16, axis=1)  # [1, 16, H, W, 3]


def positions(model, view: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(rows, columns) of a crop view's first frame, back from the normalised values."""
    pixels = (view[0, :2, 0] * model._std[0, :2, 0] + model._mean[0, :2, 0]) * 255
    rows, cols = (np.rint(p.numpy()).astype(int) for p in pixels)
    return rows, cols


def test_ten_crops_are_the_corners_the_centre_and_their_flips():
    model = build_extractor(ExtractorSpec(size=C, crops=10), "cpu")
    x = model.normalise(position_clip())
    views = model.crop_views(x)
    assert len(views) == 10 and all(v.shape == (1, 3, 16, C, C) for v in views)
    top, left = (H - C) // 2, (W - C) // 2
    expected = [(0, 0), (0, W - C), (H - C, 0), (H - C, W - C), (top, left)]  # tl, tr, bl, br, centre
    for i, (r0, c0) in enumerate(expected):
        rows, cols = positions(model, views[i])
        assert (rows[0, 0], cols[0, 0]) == (r0, c0) and (rows[-1, -1], cols[-1, -1]) == (r0 + C - 1, c0 + C - 1)
        flipped_rows, flipped_cols = positions(model, views[5 + i])
        assert (flipped_rows[0, 0], flipped_cols[0, 0]) == (r0, c0 + C - 1)  # mirrored: the row runs right to left
        np.testing.assert_array_equal(flipped_cols, cols[:, ::-1])


def test_five_crops_and_one_crop():
    five = build_extractor(ExtractorSpec(size=C, crops=5), "cpu")
    assert len(five.crop_views(five.normalise(position_clip()))) == 5
    one = build_extractor(ExtractorSpec(size=C), "cpu")
    (centre,) = one.crop_views(one.normalise(position_clip()))
    rows, cols = positions(one, centre)
    assert (rows[0, 0], cols[0, 0]) == ((H - C) // 2, (W - C) // 2)
    with pytest.raises(UsageError, match="crops"):
        build_extractor(ExtractorSpec(size=C, crops=3), "cpu")
    assert ExtractorSpec(size=C, crops=10).extractor_id == f"r3d_18-random0-c16s16-{C}-x10"
    assert ExtractorSpec(size=C).extractor_id == f"r3d_18-random0-c16s16-{C}"  # one crop: ids as before


def test_stored_feature_is_the_mean_of_the_stored_crops_and_tokens_come_from_the_centre(tmp_path):
    archive = tmp_path / "archive"
    archive.mkdir()
    shutil.copy(os.path.join(VIDEOS, "v_GGSY1Qvo990.mp4"), archive / "clip.mp4")
    spec = ExtractorSpec(size=32, crops=5)
    store = OutputStore(str(tmp_path / "out"))
    outcome = extract_video(discover_videos(str(archive))[0], store, ExtractJob(spec, tokens=True))
    assert outcome.status == "done", outcome.error
    table = store.read_table(store.features(spec.extractor_id, "clip.mp4"))
    crops = table.crop_features
    assert crops.shape == (table.table.num_rows, 5, 512) and table.metadata["crops"] == "5"
    np.testing.assert_allclose(table.features, crops.mean(1), rtol=1e-5, atol=1e-6)
    assert not np.allclose(crops[:, 0], crops[:, 4])  # the crops differ
    one = build_extractor(ExtractorSpec(size=32), "cpu")  # the same seed: the centre crop's network output
    model = build_extractor(spec, "cpu")
    clip = np.random.default_rng(0).integers(0, 255, (1, 16, 40, 60, 3), dtype=np.uint8)
    centre = one.extract(clip, tokens=True)
    five = model.extract(clip, tokens=True)
    np.testing.assert_array_equal(five.tokens, centre.tokens)
    np.testing.assert_allclose(five.crops[:, 4], centre.pooled, rtol=1e-5, atol=1e-6)
