"""Feed a model from several videos decoding at once: `workers` decode threads per worker process, each with its
own decoder child (`decoder.IsolatedVideo`), put the clips of the videos they are given into one bounded queue, so
the consumer batches clips across videos while the next ones decode.

Events, in the order the consumer must handle them: `Opened(i)` when video i starts decoding, `Decoded(i, clip)` per
clip, then `Finished(i, info, hold)` or `Failed(i, error)`. With `hold` the decode thread keeps the video open
until the consumer calls `hold.release()` (so it can read the same open video again, e.g. centre frames for the
detector, without a second copy or probe); without it the video is closed before `Finished` is sent.

The decode threads live as long as the worker process (one pool per size), so their decoder children are started
once, not per task. The queue holds at most `depth` clips (memory bound). A consumer that stops early (an error,
SIGTERM) stops the decode threads at their next clip, and each abandoned stream kills its decoder child exactly as a
single-threaded reader does.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from ..store.manifest import Timer
from .decoder import IsolatedVideo
from .video import Clip


def default_decode_workers(cores: int | None = None) -> int:
    """Half the cores (the model and the decoder children need the rest), at least 1, at most 4."""
    return max(1, min(4, (cores or os.cpu_count() or 2) // 2))


@dataclass
class Opened:
    index: int
    timer: Timer


@dataclass
class Decoded:
    index: int
    clip: Clip


@dataclass
class Hold:
    """The decode thread's open video, lent to the consumer until `release()`."""

    video: IsolatedVideo
    _done: threading.Event = field(default_factory=threading.Event)

    def release(self) -> None:
        self._done.set()


@dataclass
class Finished:
    index: int
    info: dict[str, Any]  # fps, frame counts, native size
    hold: Hold | None


@dataclass
class Failed:
    index: int
    error: BaseException


_pools: dict[int, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


def _pool(workers: int) -> ThreadPoolExecutor:
    with _pools_lock:
        if workers not in _pools:
            _pools[workers] = ThreadPoolExecutor(workers, thread_name_prefix=f"vad-decode{workers}")
        return _pools[workers]


def clip_feed(
    items: Sequence[Any],
    open_video: Callable[[Any], AbstractContextManager[IsolatedVideo]],
    read_clips: Callable[[Any, IsolatedVideo], Iterator[Clip]],
    workers: int,
    depth: int = 32,
    hold: bool = False,
) -> Iterator[Opened | Decoded | Finished | Failed]:
    """Every event of every item (module docstring); `open_video(item)` opens one in the decode thread."""
    handoff: queue.Queue = queue.Queue(maxsize=max(depth, 1))
    stop = threading.Event()

    def put(event: object) -> bool:
        while not stop.is_set():
            try:
                handoff.put(event, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def decode(index: int, item: Any) -> None:
        if stop.is_set():
            return
        try:
            put(Opened(index, Timer()))
            with open_video(item) as video:
                for clip in read_clips(item, video):
                    if not put(Decoded(index, clip)):
                        return  # the consumer stopped: leaving the loop abandons (and kills) the stream
                info = {"fps": video.fps, "frame_count": video.n_frames, "reported_frame_count": video.reported_frames,
                        "width": video.native_width, "height": video.native_height}  # fmt: skip
                lent = Hold(video) if hold else None
                put(Finished(index, info, lent))
                while lent is not None and not lent._done.wait(0.1) and not stop.is_set():
                    pass
        except BaseException as exc:  # the consumer decides what a failure means
            put(Failed(index, exc))

    futures: list[Future] = [_pool(max(workers, 1)).submit(decode, i, item) for i, item in enumerate(items)]
    remaining = len(items)
    try:
        while remaining:
            event = handoff.get()
            if isinstance(event, Finished | Failed):
                remaining -= 1
            yield event
    finally:
        stop.set()
        for future in futures:
            future.cancel()
        for future in futures:
            if not future.cancelled():
                future.result()
