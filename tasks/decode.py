"""decord clip decoding in bounded memory.

A video becomes clips of `clip_len` consecutive frames every `stride` frames, plus each clip's centre frame.
Frames are read in chunks of about 64 (decord's fast path) and dropped as soon as no later clip needs them, so the
reader holds at most clip_len - 1 + chunk frames whatever the video's length (`max_buffered` records it).
Frames beyond the last full clip are not scored; a video shorter than one clip gives one clip whose last frame is
repeated. Decoding resizes so the short side is `short_side` (aspect kept), inside decord.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

try:  # decord raises its own DECORDError (not a RuntimeError) on bad streams
    from decord._ffi.base import DECORDError
except Exception:  # pragma: no cover - decord always ships it
    DECORDError = RuntimeError

DECODE_ERRORS = (RuntimeError, DECORDError)


class VideoDecodeError(Exception):
    """A video decord cannot read; `reason` says why (from decord's message)."""

    def __init__(self, video: str, reason: str):
        super().__init__(f"cannot decode {video}: {reason}")
        self.video, self.reason = video, reason


def _reason(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[-1] if lines else exc.__class__.__name__
    if "Check failed" in text:
        text = text[text.index("Check failed"):]
    return f"{exc.__class__.__name__}: {text[:300]}"


@dataclass
class Clip:
    index: int
    start_frame: int
    end_frame: int  # exclusive
    center_frame: int
    frames: np.ndarray  # [clip_len, H, W, 3] uint8

    @property
    def center(self) -> np.ndarray:
        return self.frames[min(self.center_frame - self.start_frame, len(self.frames) - 1)]


def clip_ranges(n_frames: int, clip_len: int, stride: int) -> list[tuple[int, int]]:
    if n_frames <= 0:
        return []
    if n_frames < clip_len:
        return [(0, n_frames)]
    return [(s, s + clip_len) for s in range(0, n_frames - clip_len + 1, stride)]


def scaled_size(height: int, width: int, short_side: int | None) -> tuple[int, int]:
    if not short_side:
        return height, width
    scale = short_side / min(height, width)
    return max(short_side, round(height * scale / 2) * 2), max(short_side, round(width * scale / 2) * 2)


class ClipReader:
    """Iterates clips of one local video file. Raises VideoDecodeError for anything decord cannot read."""

    def __init__(self, path: str, clip_len: int = 16, stride: int = 16, short_side: int | None = None,
                 chunk: int = 64, num_threads: int = 1, name: str | None = None):
        import decord

        if clip_len < 1 or stride < 1 or chunk < 1:
            raise ValueError("clip_len, stride and chunk must be >= 1")
        self.name = name or path
        self.clip_len, self.stride, self.chunk = clip_len, stride, chunk
        self.max_buffered = 0
        try:
            probe = decord.VideoReader(path, num_threads=1)
            self.n_frames = len(probe)
            self.fps = float(probe.get_avg_fps())
            self.native_height, self.native_width = probe[0].shape[:2]
            del probe
            self.height, self.width = scaled_size(self.native_height, self.native_width, short_side)
            self._reader = decord.VideoReader(path, width=self.width, height=self.height, num_threads=num_threads)
        except DECODE_ERRORS as exc:
            raise VideoDecodeError(self.name, _reason(exc)) from exc
        if self.n_frames == 0 or not self.fps > 0:
            raise VideoDecodeError(self.name, f"no frames or no frame rate (frames={self.n_frames}, fps={self.fps})")
        self.ranges = clip_ranges(self.n_frames, clip_len, stride)

    @property
    def n_clips(self) -> int:
        return len(self.ranges)

    @property
    def duration_s(self) -> float:
        return self.n_frames / self.fps

    def _read(self, start: int, stop: int) -> np.ndarray:
        try:
            return self._reader.get_batch(list(range(start, stop))).asnumpy()
        except DECODE_ERRORS as exc:
            raise VideoDecodeError(self.name, _reason(exc)) from exc

    def __iter__(self) -> Iterator[Clip]:
        buf = np.zeros((0, self.height, self.width, 3), np.uint8)
        buf_start = 0  # frame index of buf[0]
        for index, (start, end) in enumerate(self.ranges):
            drop = min(max(start - buf_start, 0), len(buf))
            buf, buf_start = buf[drop:], buf_start + drop
            while buf_start + len(buf) < end:
                read_from = max(buf_start + len(buf), start)
                frames = self._read(read_from, min(self.n_frames, read_from + self.chunk))
                if len(buf) == 0:
                    buf, buf_start = frames, read_from
                else:
                    buf = np.concatenate([buf, frames])
                self.max_buffered = max(self.max_buffered, len(buf))
            frames = buf[start - buf_start : end - buf_start]
            if len(frames) < self.clip_len:  # a video shorter than one clip: repeat its last frame
                frames = np.concatenate([frames, np.repeat(frames[-1:], self.clip_len - len(frames), axis=0)])
            yield Clip(index, start, end, (start + end) // 2, frames)

    def frame(self, index: int) -> np.ndarray:
        return self._read(index, index + 1)[0]
