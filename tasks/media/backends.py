"""Decoder backends behind one small interface: the stream's size, frame count and rate, and readers that return
frames at indices (in presentation order), resized so the frame is `height` x `width`.

- `decord` (default): frame-accurate random access, resizing inside FFmpeg; fast on chunked reads.
- `pyav`: FFmpeg through PyAV, read forward (a lower index reopens the file); resizing by swscale. The fallback for
  files decord mis-reads (the probe in `video.decodable_frames` already uses PyAV).
- `torchcodec`: PyTorch's decoder (CPU here; `cuda` decoding where the GPU and its build allow it: not tested on
  this machine), exact seeks; resized with antialiased bilinear interpolation in torch. Needs FFmpeg's shared
  libraries (`make install` adds them) and imports torch in the decoder child.

Clip boundaries never depend on the backend (they come from the frame count and `video.clip_ranges`); frames agree
within a tolerance the tests pin (mean absolute difference in 8-bit levels: `PARITY_MAE`): the backends share
FFmpeg's decoding but convert YUV to RGB and resize each their own way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from anomaly_models.errors import UsageError

DECODERS = ("decord", "pyav", "torchcodec")
# mean |difference| to decord in 8-bit levels, on the tests' videos: decoded frames are identical at native size
# (measured 0.0 for both); resizing differs (swscale in PyAV: 0.09-0.16; antialiased bilinear in torchcodec: 0.85-1.0)
PARITY_MAE = {"native": 1.0, "resized": 2.0}


@dataclass(frozen=True)
class StreamInfo:
    n_frames: int
    fps: float
    height: int
    width: int


class FrameReader(Protocol):
    def read(self, indices: Sequence[int]) -> np.ndarray:
        """Frames [N, H, W, 3] uint8 at the indices; IndexError past the end."""
        ...


class Decoder:
    """One backend: `info` opens a file and describes its first video stream; `reader` reads frames from it."""

    name = ""

    def errors(self) -> tuple[type[BaseException], ...]:
        """What this backend raises for a file it cannot read (turned into VideoDecodeError by `video.decoding`)."""
        return (RuntimeError,)

    def info(self, path: str) -> StreamInfo:
        raise NotImplementedError

    def reader(self, path: str, height: int, width: int, threads: int = 1) -> FrameReader:
        raise NotImplementedError


class DecordDecoder(Decoder):
    name = "decord"

    def errors(self) -> tuple[type[BaseException], ...]:
        try:  # decord raises its own DECORDError (not a RuntimeError) on bad streams
            from decord._ffi.base import DECORDError
        except Exception:  # pragma: no cover - decord always ships it
            return (RuntimeError,)
        return (RuntimeError, DECORDError)

    def info(self, path: str) -> StreamInfo:
        import decord

        probe = decord.VideoReader(path, num_threads=1)
        height, width = probe[0].shape[:2] if len(probe) else (0, 0)
        return StreamInfo(len(probe), float(probe.get_avg_fps()), height, width)

    def reader(self, path: str, height: int, width: int, threads: int = 1) -> FrameReader:
        import decord

        return _DecordReader(decord.VideoReader(path, width=width, height=height, num_threads=threads))


class _DecordReader:
    def __init__(self, reader: Any):
        self._reader = reader

    def read(self, indices: Sequence[int]) -> np.ndarray:
        if indices and max(indices) >= len(self._reader):
            raise IndexError(f"frame {max(indices)} of {len(self._reader)}")
        return self._reader.get_batch(list(indices)).asnumpy()


class PyAVDecoder(Decoder):
    name = "pyav"

    def errors(self) -> tuple[type[BaseException], ...]:
        import av

        return (RuntimeError, av.FFmpegError)

    def info(self, path: str) -> StreamInfo:
        import av

        with av.open(path) as container:
            stream = container.streams.video[0]
            frames = stream.frames or sum(1 for p in container.demux(stream) if p.pts is not None)
            rate = stream.average_rate or stream.guessed_rate or 0
            return StreamInfo(int(frames), float(rate), stream.codec_context.height, stream.codec_context.width)

    def reader(self, path: str, height: int, width: int, threads: int = 1) -> FrameReader:
        return _PyAVReader(path, height, width, threads)


class _PyAVReader:
    """Decodes forward, converting only the frames asked for; an index behind the position reopens the file."""

    def __init__(self, path: str, height: int, width: int, threads: int):
        self.path, self.height, self.width, self.threads = path, height, width, threads
        self.container: Any = None
        self._open()

    def _open(self) -> None:
        import av

        if self.container is not None:
            self.container.close()
        self.container = av.open(self.path)
        stream = self.container.streams.video[0]
        stream.thread_type, stream.thread_count = "AUTO", self.threads
        self.frames = self.container.decode(stream)
        self.position = 0  # index of the next frame the decoder yields

    def read(self, indices: Sequence[int]) -> np.ndarray:
        out = []
        for index in (int(i) for i in indices):
            if index < self.position:
                self._open()
            while True:
                try:
                    frame = next(self.frames)
                except StopIteration:
                    raise IndexError(f"frame {index} past the end ({self.position} frames)") from None
                self.position += 1
                if self.position - 1 == index:
                    out.append(frame.to_ndarray(format="rgb24", width=self.width, height=self.height))
                    break
        return np.stack(out) if out else np.zeros((0, self.height, self.width, 3), np.uint8)


class TorchCodecDecoder(Decoder):
    name = "torchcodec"

    def __init__(self, device: str = "cpu"):
        self.device = device

    def errors(self) -> tuple[type[BaseException], ...]:
        return (RuntimeError, ValueError)

    def _open(self, path: str, threads: int = 1) -> Any:
        try:
            from torchcodec.decoders import VideoDecoder
        except (ImportError, OSError, RuntimeError) as exc:
            raise UsageError(
                "decoder: torchcodec cannot load FFmpeg's shared libraries (on Debian 12: apt-get install "
                f"libavcodec59 libavformat59 libavutil57 libswscale6 libswresample4 libavdevice59 libavfilter8): {exc}"
            ) from None

        return VideoDecoder(path, seek_mode="exact", dimension_order="NHWC", num_ffmpeg_threads=threads,
                            device=self.device)  # fmt: skip

    def info(self, path: str) -> StreamInfo:
        meta = self._open(path).metadata
        return StreamInfo(int(meta.num_frames or 0), float(meta.average_fps or 0), int(meta.height), int(meta.width))

    def reader(self, path: str, height: int, width: int, threads: int = 1) -> FrameReader:
        return _TorchCodecReader(self._open(path, threads), height, width)


class _TorchCodecReader:
    def __init__(self, decoder: Any, height: int, width: int):
        self.decoder, self.height, self.width = decoder, height, width

    def read(self, indices: Sequence[int]) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        indices = [int(i) for i in indices]
        if indices and max(indices) >= len(self.decoder):
            raise IndexError(f"frame {max(indices)} of {len(self.decoder)}")
        frames = self.decoder.get_frames_at(indices).data  # [N, H, W, 3] uint8
        if tuple(frames.shape[1:3]) != (self.height, self.width):
            x = frames.permute(0, 3, 1, 2).float()
            x = F.interpolate(x, size=(self.height, self.width), mode="bilinear", antialias=True, align_corners=False)
            frames = x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
        return frames.cpu().numpy()


def decoder(name: str) -> Decoder:
    """The backend called `name` (one of DECODERS)."""
    if name == "decord":
        return DecordDecoder()
    if name == "pyav":
        return PyAVDecoder()
    if name == "torchcodec":
        return TorchCodecDecoder()
    raise UsageError(f"decoder: expected one of {DECODERS}, got {name!r}")
