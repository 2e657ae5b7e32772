"""Event clips on real files: a generated source whose frames show their own index (8 black/white bands, one per bit),
cut around events, read back with PyAV and PIL; bad inputs and passed time limits give error entries, no files, and
no export process left running."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import av
import numpy as np
import psutil
import pytest
from PIL import Image

from tasks.media.event_clips import ClipRequest, ExportedClip, export_clips
from tests.conftest import VIDEOS

FPS, SECONDS, W, H = 16, 12, 160, 120
FRAME = 1 / FPS


def _pattern(i: int) -> np.ndarray:
    img = np.zeros((H, W, 3), np.uint8)
    for bit in range(8):
        if (i >> bit) & 1:
            img[:, bit * W // 8 : (bit + 1) * W // 8] = 255
    return img


def _index(gray: np.ndarray) -> int:
    """The frame index a (possibly scaled, compressed) frame shows."""
    row = gray[gray.shape[0] // 2].astype(float)
    width = gray.shape[1]
    return sum(1 << bit for bit in range(8) if row[int((bit + 0.5) * width / 8)] > 128)


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("source") / "source.mp4")
    with av.open(path, "w") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.codec_context.gop_size = 2 * FPS  # a keyframe every 2 s: the seeks land before the clips' starts
        for i in range(FPS * SECONDS):
            for packet in stream.encode(av.VideoFrame.from_ndarray(_pattern(i), format="rgb24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def _request(tmp_path, name: str, start: float, end: float, poster: float | None = None) -> ClipRequest:
    peak = (start + end) / 2 if poster is None else poster
    return ClipRequest(start, end, peak, str(tmp_path / f"{name}.mp4"), str(tmp_path / f"{name}.jpg"))


def _read_clip(path: str) -> dict:
    with open(path, "rb") as f:
        data = f.read()
    with av.open(path) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        return {
            "codec": stream.codec_context.name,
            "pix_fmt": stream.codec_context.pix_fmt,
            "size": (stream.codec_context.width, stream.codec_context.height),
            "rate": stream.average_rate,
            "stream_s": float(stream.duration * stream.time_base),
            "container_s": container.duration / 1_000_000,
            "times": [float(f.time) for f in frames],
            "indices": [_index(f.to_ndarray(format="gray")) for f in frames],
            "faststart": 0 <= data.find(b"moov") < data.find(b"mdat"),
        }


def _poster_index(path: str) -> tuple[int, tuple[int, int]]:
    with Image.open(path) as image:
        assert image.format == "JPEG"
        return _index(np.asarray(image.convert("L"))), image.size


def _check_clip(clip: ExportedClip, start_s: float, end_s: float, poster_s: float, size=(W, H)) -> None:
    assert clip.error is None
    assert clip.clip_start_s == pytest.approx(start_s) and clip.clip_end_s == pytest.approx(end_s)
    got = _read_clip(clip.clip_path)
    assert (got["codec"], got["pix_fmt"], got["size"], got["rate"]) == ("h264", "yuv420p", size, FPS)
    assert got["faststart"]  # the moov atom before mdat: a browser plays it while loading
    expected_s = end_s - start_s
    assert len(got["times"]) == clip.frames
    for seconds in (clip.frames / FPS, got["stream_s"], got["container_s"]):
        assert abs(seconds - expected_s) <= FRAME + 1e-6
    assert got["times"][0] == 0 and np.allclose(np.diff(got["times"]), FRAME)  # from 0, constant rate
    first = round(start_s * FPS)
    assert abs(got["indices"][0] - first) <= 1
    assert got["indices"] == list(range(got["indices"][0], got["indices"][0] + clip.frames))  # no gap, no repeat
    index, poster_size = _poster_index(clip.poster_path)
    assert abs(index - round(poster_s * FPS)) <= 1 and poster_size == size


def _leftovers(directory) -> list[str]:
    return sorted(name for name in os.listdir(directory) if ".part" in name)


def _export_children() -> list[psutil.Process]:
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if "tasks.media.event_clips" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:
            pass
    return found


def test_two_events_become_padded_faststart_h264_clips_with_posters(source, tmp_path):
    t0 = time.perf_counter()
    a, b = _request(tmp_path, "a", 3.0, 5.0, 4.25), _request(tmp_path, "b", 9.0, 11.5, 10.0)
    clips = export_clips(source, [a, b], padding_s=1.0)
    wall = time.perf_counter() - t0
    assert [c.clip_path for c in clips] == [a.clip_path, b.clip_path]
    _check_clip(clips[0], 2.0, 6.0, 4.25)
    _check_clip(clips[1], 8.0, 12.0, 10.0)  # end + padding (12.5) clamped to the video's 12 s
    assert _leftovers(tmp_path) == []
    print(f"export speed: {sum(c.clip_end_s - c.clip_start_s for c in clips) / wall:.1f} clip s per wall s")


def test_padding_clamps_at_both_ends_and_scales_to_even_size(source, tmp_path):
    start, end = _request(tmp_path, "start", 0.5, 1.0, 0.5), _request(tmp_path, "end", 11.0, 11.8, 11.5)
    clips = export_clips(source, [end, start], padding_s=2.0, max_width=81)
    _check_clip(clips[0], 9.0, 12.0, 11.5, size=(80, 60))
    _check_clip(clips[1], 0.0, 3.0, 0.5, size=(80, 60))


def test_overlapping_and_adjacent_events_are_cut_independently_off_frame_grid(source, tmp_path):
    requests = [
        _request(tmp_path, "late", 7.0, 8.0),
        _request(tmp_path, "early", 4.0, 6.0),
        _request(tmp_path, "overlap", 5.0, 7.0),
        _request(tmp_path, "adjacent", 8.0, 9.0),
        _request(tmp_path, "offgrid", 2.53, 3.1, 2.9),  # starts between frames 40 (2.5 s) and 41 (2.5625 s)
    ]
    late, early, overlap, adjacent, offgrid = export_clips(source, requests, padding_s=0.0)
    _check_clip(late, 7.0, 8.0, 7.5)
    _check_clip(early, 4.0, 6.0, 5.0)
    _check_clip(overlap, 5.0, 7.0, 6.0)
    _check_clip(adjacent, 8.0, 9.0, 8.5)
    assert offgrid.clip_start_s == 41 / FPS  # snapped to the first frame at or after the start
    _check_clip(offgrid, 41 / FPS, 3.1, 2.9)


def test_events_past_the_end_or_empty_are_error_entries(source, tmp_path):
    past, empty, ok = export_clips(
        source,
        [_request(tmp_path, "past", 13.0, 14.0), _request(tmp_path, "empty", 5.0, 5.0), _request(tmp_path, "ok", 1, 2)],
        padding_s=0.0,
    )
    assert past.error and "after the end of the video" in past.error and source in past.error
    assert empty.error and "empty range" in empty.error
    assert ok.error is None and os.path.exists(ok.clip_path)
    assert sorted(os.listdir(tmp_path)) == ["ok.jpg", "ok.mp4"]


def test_garbage_input_gives_error_entries_and_no_files(tmp_path):
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    out = tmp_path / "out"
    clips = export_clips(str(garbage), [_request(out, "a", 1.0, 2.0), _request(out, "b", 3.0, 4.0)])
    assert len(clips) == 2
    for clip in clips:
        assert clip.error and str(garbage) in clip.error and clip.frames == 0
    assert not out.exists() or os.listdir(out) == []
    missing = export_clips(str(tmp_path / "missing.mp4"), [_request(out, "c", 0.0, 1.0)])
    assert missing[0].error and "missing.mp4" in missing[0].error


@pytest.mark.skipif(not os.path.exists(os.path.join(VIDEOS, "corrupted.mp4")), reason="no shared corrupted.mp4")
def test_shared_corrupted_video_fails_only_where_it_cannot_be_decoded(tmp_path):
    video = tmp_path / "corrupted.mp4"
    shutil.copy(os.path.join(VIDEOS, "corrupted.mp4"), video)  # decodes ~2.8 s, then invalid data
    requests = [_request(tmp_path, "broken", 3.0, 4.0), _request(tmp_path, "fine", 0.2, 0.8)]
    broken, fine = export_clips(str(video), requests, padding_s=0.0)
    assert broken.error and "corrupted.mp4" in broken.error and "Invalid data" in broken.error
    assert not os.path.exists(broken.clip_path) and not os.path.exists(broken.poster_path)
    assert fine.error is None and fine.frames == 6 and os.path.exists(fine.clip_path)
    assert _leftovers(tmp_path) == []


def test_a_passed_time_limit_fails_the_remaining_clips_and_kills_the_child(source, tmp_path):
    clips = export_clips(source, [_request(tmp_path, "a", 3.0, 5.0)], time_limit_s=0.001)
    assert clips[0].error == f"{source}: timed out after 0.001 s"
    assert _export_children() == [] and os.listdir(tmp_path) == []

    hang = tmp_path / "hang.mp4"
    os.mkfifo(hang)  # opening it blocks inside C for ever, like a decoder spinning on an odd file
    clips = export_clips(str(hang), [_request(tmp_path, "h", 0.0, 1.0)], time_limit_s=1.0)
    assert clips[0].error == f"{hang}: timed out after 1 s" and _export_children() == []

    many = [_request(tmp_path, f"c{i}", 0.0, 12.0) for i in range(60)]  # ~0.01-0.1 s each: the limit passes part way
    clips = export_clips(source, many, time_limit_s=1.0)
    timed_out = [c for c in clips if c.error]
    assert timed_out and all(c.error == f"{source}: timed out after 1 s" for c in timed_out)
    for clip in clips:
        made = os.path.exists(clip.clip_path), os.path.exists(clip.poster_path)
        assert made == ((True, True) if clip.error is None else (False, False))
    assert _leftovers(tmp_path) == [] and _export_children() == []


def test_the_export_child_dies_with_its_parent(tmp_path):
    hang = tmp_path / "hang.mp4"
    os.mkfifo(hang)  # the child blocks opening it, writing nothing: only PR_SET_PDEATHSIG can end it
    script = (
        "from tasks.media.event_clips import export_clips, ClipRequest; "
        f"export_clips({str(hang)!r}, [ClipRequest(0, 1, 0, {str(tmp_path / 'c.mp4')!r}, {str(tmp_path / 'c.jpg')!r})])"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.DEVNULL)
    children: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 10
        while not children and time.monotonic() < deadline:
            time.sleep(0.05)
            children = psutil.Process(parent.pid).children()
        assert children, "the export child did not start"
        time.sleep(0.5)  # past the child's start, where it sets PR_SET_PDEATHSIG
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        gone, alive = psutil.wait_procs(children, timeout=5)
        assert alive == []
    finally:
        for child in children:
            if child.is_running():
                child.kill()
        if parent.poll() is None:
            parent.kill()
            parent.wait()
