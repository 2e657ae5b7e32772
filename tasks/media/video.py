"""One video source over a decoder backend (`backends`: decord by default, PyAV, torchcodec): clips in bounded
memory, frames at given indices, thumbnails.

The one place that opens a video and turns its decoder's errors (RuntimeError, decord's DECORDError, which is not
one, PyAV's FFmpegError) into the project's `VideoDecodeError`.

Clips: `clip_len` consecutive frames every `stride` frames, plus each clip's centre frame. Frames are read in
chunks of about 64 (decord's fast path) and dropped as soon as no later clip needs them, so a reader holds at most
clip_len - 1 + chunk frames whatever the video's length (`max_buffered` records it). Frames beyond the last full
clip are not scored; a video shorter than one clip gives one clip whose last frame is repeated. Decoding resizes
inside decord so the short side is `short_side` (aspect kept).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from anomaly_models.errors import VideoError

from .backends import Decoder, FrameReader, decoder


class VideoDecodeError(VideoError):
    """A video decord cannot read; `reason` says why (from decord's message)."""

    def __str__(self) -> str:
        return f"cannot decode {self.video}: {self.reason}"


def decoder_reason(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[-1] if lines else exc.__class__.__name__
    if "Check failed" in text:
        text = text[text.index("Check failed") :]
    return f"{exc.__class__.__name__}: {text[:300]}"


@contextmanager
def decoding(name: str, backend: Decoder) -> Iterator[None]:
    """The backend's decoder errors inside become VideoDecodeError(name, reason)."""
    try:
        yield
    except backend.errors() as exc:
        raise VideoDecodeError(name, decoder_reason(exc)) from exc


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


def part_range(n_clips: int, k: int, n: int) -> tuple[int, int]:
    """Clips [first, last) of part k of n: consecutive, as equal as can be, together every clip once."""
    if not 0 <= k < n:
        raise ValueError(f"part {k} of {n}")
    return n_clips * k // n, n_clips * (k + 1) // n


def scaled_size(height: int, width: int, short_side: int | None) -> tuple[int, int]:
    if not short_side:
        return height, width
    scale = short_side / min(height, width)
    return max(short_side, round(height * scale / 2) * 2), max(short_side, round(width * scale / 2) * 2)


def decodable_frames(path: str) -> tuple[int, float | None] | None:
    """How many frames really decode, by a cheap probe: the video packets' timestamps (demuxed, not decoded) and a
    decode of the last group of pictures only. Some containers list frames that do not decode (e.g. trailing
    end-of-sequence packets): decord then reports them, repeats the last real frame for them, and spins for ever
    when asked for one directly. Returns (frames that decode, their frame rate from their own timestamps: the
    container's average counts the phantom frames too), or None when PyAV cannot probe the file (decord's count
    is kept)."""
    import av

    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            pts = sorted(p.pts for p in container.demux(stream) if p.pts is not None)
            if not pts:
                return None
            time_base = float(stream.time_base or 0)
            container.seek(pts[-1], stream=stream, backward=True, any_frame=False)
            last = max((f.pts for f in container.decode(stream) if f.pts is not None), default=None)
    except (av.FFmpegError, IndexError, ValueError):
        return None
    if last is None:
        return 0, None
    count = bisect.bisect_right(pts, last)
    span = (last - pts[0]) * time_base
    return count, ((count - 1) / span if count > 1 and span > 0 else None)


class FrameSource(Protocol):
    """What reads frames at indices: a VideoSource here, or one in the decoder child (`decoder.IsolatedVideo`)."""

    def frames(
        self, indices: Sequence[int], max_short_side: int | None = None, chunk: int = 64
    ) -> Iterator[np.ndarray]: ...


class VideoSource:
    """One local video file: frame count, fps and native size on open; readers at a chosen size on demand.

    `n_frames` counts only frames that really decode (`decodable_frames`); when the container lists more,
    `reported_frames` keeps its count and nothing past the real frames is ever read."""

    def __init__(self, path: str, name: str | None = None, verify: bool = True, backend: str = "decord"):
        self.path, self.name = path, name or path
        self.backend = decoder(backend)
        with decoding(self.name, self.backend):
            info = self.backend.info(path)
        self.n_frames = self.reported_frames = info.n_frames
        self.fps, self.native_height, self.native_width = info.fps, info.height, info.width
        if self.n_frames == 0 or not self.fps > 0:
            raise VideoDecodeError(self.name, f"no frames or no frame rate (frames={self.n_frames}, fps={self.fps})")
        probe = decodable_frames(path) if verify else None
        if probe is not None and probe[0] < self.n_frames:
            real, fps = probe
            if real == 0:
                raise VideoDecodeError(self.name, f"no decodable frames (the container lists {self.n_frames})")
            self.n_frames, self.fps = real, fps or self.fps

    @property
    def duration_s(self) -> float:
        return self.n_frames / self.fps

    def reader(self, height: int, width: int, num_threads: int = 1) -> FrameReader:
        with decoding(self.name, self.backend):
            return self.backend.reader(self.path, height, width, num_threads)

    def read(self, reader: FrameReader, indices: Sequence[int]) -> np.ndarray:
        """Frames [N, H, W, 3] uint8 at the indices."""
        with decoding(self.name, self.backend):
            return reader.read(list(indices))

    def clips(
        self, clip_len: int = 16, stride: int = 16, short_side: int | None = None, chunk: int = 64, num_threads: int = 1
    ) -> ClipReader:
        return ClipReader(self, clip_len, stride, short_side, chunk, num_threads)

    def frames(
        self, indices: Sequence[int], max_short_side: int | None = None, chunk: int = 64
    ) -> Iterator[np.ndarray]:
        """Frames at the indices in batches of `chunk`; larger frames are downscaled inside decord so their short
        side is at most `max_short_side`."""
        h, w = self.native_height, self.native_width
        if max_short_side and min(h, w) > max_short_side:
            h, w = scaled_size(h, w, max_short_side)
        reader = self.reader(h, w)
        indices = [int(i) for i in indices]
        for i in range(0, len(indices), chunk):
            yield self.read(reader, indices[i : i + chunk])

    def frames_or_none(self, indices: Sequence[int]) -> Iterator[np.ndarray | None]:
        """One full-size frame at a time; None for a frame that cannot be read (a bad frame blanks only itself)."""
        reader = self.reader(self.native_height, self.native_width)
        for index in indices:
            try:
                yield self.read(reader, [int(index)])[0]
            except (IndexError, VideoDecodeError):
                yield None


class ClipReader:
    """Iterates clips of one video (a VideoSource or a local path). Raises VideoDecodeError for anything decord
    cannot read."""

    def __init__(
        self,
        source: VideoSource | str,
        clip_len: int = 16,
        stride: int = 16,
        short_side: int | None = None,
        chunk: int = 64,
        num_threads: int = 1,
        name: str | None = None,
        backend: str = "decord",
        part: tuple[int, int] | None = None,
    ):
        """`part` (k, n): only the k-th of n consecutive ranges of clips (clip indices stay the video's)."""
        if clip_len < 1 or stride < 1 or chunk < 1:
            raise ValueError("clip_len, stride and chunk must be >= 1")
        self.source = source if isinstance(source, VideoSource) else VideoSource(source, name, backend=backend)
        self.clip_len, self.stride, self.chunk = clip_len, stride, chunk
        self.max_buffered = 0
        self.n_frames, self.fps = self.source.n_frames, self.source.fps
        self.native_height, self.native_width = self.source.native_height, self.source.native_width
        self.height, self.width = scaled_size(self.native_height, self.native_width, short_side)
        self._reader = self.source.reader(self.height, self.width, num_threads)
        self.ranges = clip_ranges(self.n_frames, clip_len, stride)
        self.first = 0
        if part is not None:
            self.first, last = part_range(len(self.ranges), *part)
            self.ranges = self.ranges[self.first : last]

    @property
    def n_clips(self) -> int:
        return len(self.ranges)

    def __iter__(self) -> Iterator[Clip]:
        buf = np.zeros((0, self.height, self.width, 3), np.uint8)
        buf_start = 0  # frame index of buf[0]
        for index, (start, end) in enumerate(self.ranges, start=self.first):
            drop = min(max(start - buf_start, 0), len(buf))
            buf, buf_start = buf[drop:], buf_start + drop
            while buf_start + len(buf) < end:
                read_from = max(buf_start + len(buf), start)
                frames = self.source.read(self._reader, range(read_from, min(self.n_frames, read_from + self.chunk)))
                if len(buf) == 0:
                    buf, buf_start = frames, read_from
                else:
                    buf = np.concatenate([buf, frames])
                self.max_buffered = max(self.max_buffered, len(buf))
            frames = buf[start - buf_start : end - buf_start]
            if len(frames) < self.clip_len:  # a video shorter than one clip: repeat its last frame
                frames = np.concatenate([frames, np.repeat(frames[-1:], self.clip_len - len(frames), axis=0)])
            yield Clip(index, start, end, (start + end) // 2, frames)
