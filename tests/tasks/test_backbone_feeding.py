"""How batches are fed: bf16 autocast stays within the documented cosine tolerance of fp32 for every family,
channels-last gives the same features, and extraction records both."""

import numpy as np
import pytest

from tasks.jobs.extract import ExtractJob, extract_video
from tasks.media.backbones import PARITY_COSINE, build_extractor
from tasks.media.specs import ExtractorSpec
from tasks.store.archive import discover_videos
from tasks.store.output import OutputStore


@pytest.mark.parametrize("name, size", [("r3d_18", 64), ("i3d", 64), ("c3d", 112), ("tsm", 64)])
def test_bf16_and_channels_last_match_fp32(name, size):
    model = build_extractor(ExtractorSpec(name, size=size), "cpu")
    crop = model.spec.crop_size
    # one clip: bf16 is emulated (minutes per clip at 112 px) on CPUs without AVX-512 BF16
    clips = np.random.default_rng(0).integers(0, 255, (1, model.info.fixed_clip_len or 16, crop + 8, crop + 8, 3),
                                              dtype=np.uint8)  # fmt: skip
    fp32 = model.feeding("fp32").extract(clips).pooled
    bf16 = model.feeding("bf16").extract(clips).pooled
    cosine = (fp32 * bf16).sum(1) / np.linalg.norm(fp32, axis=1) / np.linalg.norm(bf16, axis=1)
    assert cosine.min() >= PARITY_COSINE["bf16"] and bf16.dtype == np.float32
    assert not np.array_equal(fp32, bf16)  # autocast really ran in bf16
    last = model.feeding("fp32", channels_last=True).extract(clips).pooled
    np.testing.assert_allclose(last, fp32, rtol=1e-4, atol=1e-5 * np.abs(fp32).max())
    model.feeding("fp32", channels_last=False)
    with pytest.raises(ValueError, match="precision"):
        model.feeding("int8")


def test_extraction_records_how_it_was_fed(tmp_path, small_archive):
    entry = discover_videos(str(small_archive / "videos"))[0]
    store = OutputStore(str(tmp_path / "out"))
    spec = ExtractorSpec(size=32, stride=64)  # a few clips: bf16 is emulated on CPUs without AVX-512 BF16
    assert extract_video(entry, store, ExtractJob(spec, precision="bf16", channels_last=True)).status == "done"
    meta = store.read_table(store.features(spec.extractor_id, entry.video_id)).metadata
    assert (meta["precision"], meta["channels_last"], meta["decoder"]) == ("bf16", "true", "decord")
