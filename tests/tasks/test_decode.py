import os

import decord
import numpy as np
import pytest

from tasks.media.synthetic import render_video
from tasks.media.video import ClipReader, VideoDecodeError, clip_ranges
from tests.conftest import VIDEOS


@pytest.mark.parametrize(
    "name, frames, fps, clips", [("v_GGSY1Qvo990.mp4", 355, 19.62, 22), ("v_ZNVhz7ctTq0.mp4", 420, 30.0, 26)]
)
def test_real_videos_clips_ranges_centres_fps(name, frames, fps, clips):
    reader = ClipReader(os.path.join(VIDEOS, name), clip_len=16, stride=16, short_side=128)
    assert reader.n_frames == frames and reader.fps == pytest.approx(fps, abs=0.01)
    out = list(reader)
    assert len(out) == clips == reader.n_clips
    for i, clip in enumerate(out):
        assert (clip.start_frame, clip.end_frame, clip.center_frame) == (16 * i, 16 * i + 16, 16 * i + 8)
        assert clip.frames.shape == (16, 128, reader.width, 3) and clip.frames.dtype == np.uint8
    assert out[-1].end_frame <= frames


def test_clip_frames_match_direct_decord_reads_with_overlapping_stride():
    path = os.path.join(VIDEOS, "v_GGSY1Qvo990.mp4")
    reader = ClipReader(path, clip_len=16, stride=8, short_side=120, chunk=20)
    vr = decord.VideoReader(path, width=reader.width, height=reader.height)
    clips = list(reader)
    assert len(clips) == (355 - 16) // 8 + 1
    for clip in (clips[0], clips[7], clips[-1]):
        direct = vr.get_batch(list(range(clip.start_frame, clip.end_frame))).asnumpy()
        np.testing.assert_array_equal(clip.frames, direct)
        np.testing.assert_array_equal(clip.center, direct[8])


def test_corrupted_video_raises_typed_error_with_reason():
    with pytest.raises(VideoDecodeError) as info:
        list(ClipReader(os.path.join(VIDEOS, "corrupted.mp4"), short_side=64))
    assert info.value.reason and "DECORDError" in info.value.reason


def test_not_a_video_raises_typed_error(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all" * 100)
    with pytest.raises(VideoDecodeError):
        ClipReader(str(bad))


def test_long_video_holds_about_one_chunk(tmp_path):
    path = str(tmp_path / "long.mp4")
    render_video(path, None, seed=3, fps=16, size=(64, 48), duration_s=90)  # 1440 frames
    reader = ClipReader(path, clip_len=16, stride=16, chunk=64)
    n = sum(1 for _ in reader)
    assert n == 90 and reader.n_frames == 1440
    assert reader.max_buffered <= 16 - 1 + 64


def test_short_video_is_one_clip_with_last_frame_repeated():
    assert clip_ranges(10, 16, 16) == [(0, 10)]
    assert clip_ranges(0, 16, 16) == []
    assert clip_ranges(33, 16, 16) == [(0, 16), (16, 32)]
