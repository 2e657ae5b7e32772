"""Decoding where it can be killed: a decoder child process per worker process, under a time limit per video.

Some files make decord spin for ever inside C++ (SIGTERM does not stop it). So every decode of a video (its clips,
its centre frames, its thumbnails) runs in a child process that streams what it decodes back over a socket pair;
the parent enforces the video's time limit (`TimeLimit`: a base plus a multiple of the video's duration) and a
stall limit (no frame for `stall_s`). When either passes, the child is killed and the video fails with
`VideoTimeout` ("timed out after N s"); the next video starts a fresh child. The child is started with
`subprocess` (Dask's worker processes are daemonic and may not use multiprocessing children), imports no torch,
and dies with its parent (PR_SET_PDEATHSIG), so a killed worker leaves no decoder spinning.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from anomaly_models.errors import VideoError

from .video import Clip, ClipReader, VideoDecodeError, VideoSource


class VideoTimeout(VideoError):
    """A video whose decoding passed its time limit; the decoder was killed."""


@dataclass(frozen=True)
class TimeLimit:
    """Per-video decode limits: `base_s + per_video_s * duration`, and at most `stall_s` without a decoded item."""

    base_s: float = 300.0
    per_video_s: float = 10.0  # seconds allowed per second of video (CPU feature extraction runs ~1-2x realtime)
    stall_s: float = 120.0

    def for_duration(self, duration_s: float) -> float:
        return self.base_s + self.per_video_s * max(duration_s, 0.0)


class _Decoder:
    """The parent's handle on one decoder child."""

    def __init__(self) -> None:
        parent, child = socket.socketpair()
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tasks.media.decoder", str(child.fileno()), str(os.getpid())],
            pass_fds=[child.fileno()], env=env, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        child.close()
        self.conn = Connection(parent.detach())

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        if self.alive():
            self.process.kill()
        self.process.wait()
        self.conn.close()


_local = threading.local()


def _decoder() -> _Decoder:
    """This thread's decoder child, started on first use and after a kill."""
    decoder = getattr(_local, "decoder", None)
    if decoder is None or not decoder.alive():
        decoder = _local.decoder = _Decoder()
    return decoder


def shutdown() -> None:
    """Stop this thread's decoder child (tests, clean exits)."""
    decoder = getattr(_local, "decoder", None)
    if decoder is not None:
        decoder.kill()
        _local.decoder = None


class IsolatedVideo:
    """A video opened in the decoder child: the VideoSource interface (n_frames, fps, sizes, clips, frames,
    frames_or_none), every call under the video's time limit. Use as a context manager."""

    def __init__(
        self,
        path: str,
        name: str | None = None,
        limit: TimeLimit | None = None,
        verify: bool = True,
        backend: str = "decord",
    ):
        self.name = name or path
        self.limit = limit or TimeLimit()
        self.started = time.monotonic()
        self.deadline = self.started + self.limit.base_s
        self._decoder = _decoder()
        self._streaming = False
        info = self._call("open", path=path, name=self.name, verify=verify, backend=backend)
        self.n_frames, self.reported_frames, self.fps = info["n_frames"], info["reported_frames"], info["fps"]
        self.native_height, self.native_width = info["native_height"], info["native_width"]
        self.deadline = self.started + self.limit.for_duration(self.n_frames / self.fps)

    def __enter__(self) -> IsolatedVideo:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def duration_s(self) -> float:
        return self.n_frames / self.fps

    def close(self) -> None:
        if self._streaming:  # a stream was left unread (its generator may not be closed yet): start afresh
            self._decoder.kill()
            return
        if self._decoder.alive():
            try:
                self._decoder.conn.send(("close", {}))
                self._receive()
            except (VideoError, OSError, EOFError):
                pass

    def _receive(self) -> Any:
        """The child's next message. Only time spent waiting for the child counts against the limits: what is
        already decoded is taken at once, however long the caller spent between reads (a slow model)."""
        now = time.monotonic()
        wait = min(self.deadline - now, self.limit.stall_s)
        if not self._decoder.conn.poll(0) and (wait <= 0 or not self._decoder.conn.poll(wait)):
            self._decoder.kill()
            elapsed = time.monotonic() - self.started
            stalled = "" if self.deadline - time.monotonic() <= 0 else f", nothing decoded for {self.limit.stall_s:g} s"
            raise VideoTimeout(
                self.name,
                f"timed out after {elapsed:.0f} s (limit {self.deadline - self.started:.0f} s"
                f"{stalled}); the decoder was stopped",
            )
        try:
            kind, value = self._decoder.conn.recv()
        except (EOFError, OSError):
            code = self._decoder.process.poll()
            self._decoder.kill()
            raise VideoDecodeError(self.name, f"the decoder process died (exit code {code})") from None
        if kind == "error":
            raise value
        return value

    def _call(self, method: str, **kwargs: Any) -> Any:
        self._decoder.conn.send((method, kwargs))
        return self._receive()

    def _stream(self, method: str, **kwargs: Any) -> Iterator[Any]:
        """Items of one request. A stream abandoned before its end (the caller failed midway) kills the child: its
        unread items must never be taken as the answers to the next request."""
        self._decoder.conn.send((method, kwargs))
        self._streaming = True
        finished = False
        try:
            while True:
                item = self._receive()
                if isinstance(item, str) and item == _END:
                    finished = True
                    self._streaming = False
                    return
                yield item
        finally:
            if not finished:
                self._decoder.kill()

    def clips(self, clip_len: int = 16, stride: int = 16, short_side: int | None = None, chunk: int = 64,
              part: tuple[int, int] | None = None) -> Iterator[Clip]:  # fmt: skip
        return self._stream("clips", clip_len=clip_len, stride=stride, short_side=short_side, chunk=chunk, part=part)

    def frames(self, indices: Sequence[int], max_short_side: int | None = None, chunk: int = 64
               ) -> Iterator[np.ndarray]:  # fmt: skip
        return self._stream("frames", indices=[int(i) for i in indices], max_short_side=max_short_side, chunk=chunk)

    def frames_or_none(self, indices: Sequence[int]) -> Iterator[np.ndarray | None]:
        return self._stream("frames_or_none", indices=[int(i) for i in indices])


_END = "__vad_decoder_end__"


def _serve(conn: Connection) -> None:
    """The child's loop: one open video at a time; every request answered with values, then the end marker."""
    source: VideoSource | None = None
    while True:
        try:
            method, kwargs = conn.recv()
        except (EOFError, OSError):
            return
        try:
            if method == "open":
                source = VideoSource(kwargs["path"], kwargs["name"], kwargs["verify"], kwargs.get("backend", "decord"))
                conn.send(
                    (
                        "value",
                        {
                            k: getattr(source, k)
                            for k in ("n_frames", "reported_frames", "fps", "native_height", "native_width")
                        },
                    )
                )
            elif method == "close":
                source = None
                conn.send(("value", None))
            elif source is None:
                raise VideoDecodeError("?", f"{method} before open")
            else:
                if method == "clips":
                    items: Iterator[Any] = iter(ClipReader(source, **kwargs))
                else:
                    items = getattr(source, method)(**kwargs)
                for item in items:
                    conn.send(("value", item))
                conn.send(("value", _END))
        except Exception as exc:  # sent back to the parent, which raises it (project errors pickle)
            try:
                conn.send(("error", exc))
            except Exception:
                conn.send(("error", VideoDecodeError("?", f"{exc.__class__.__name__}: {exc}")))


def _die_with_parent() -> None:
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
    except OSError:  # not Linux: the parent's kill on timeout still applies
        pass


if __name__ == "__main__":
    _die_with_parent()
    if os.getppid() != int(sys.argv[2]):  # the parent died before PR_SET_PDEATHSIG took effect
        sys.exit(0)
    _serve(Connection(int(sys.argv[1])))
