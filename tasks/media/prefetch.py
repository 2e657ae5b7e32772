"""Decode ahead of the model: an iterator run in a thread, its items handed over through a bounded queue.

The decoder child (`decoder.IsolatedVideo`) decodes while the network runs a batch (torch releases the GIL; the
thread mostly waits on the child's socket), so a video costs about max(decode, forward) instead of their sum.
The queue bounds memory (`depth` items). An error in the producer (a decode failure, a time limit) is raised in
the consumer at the point it happened; a consumer that stops early closes the producer's iterator in its own
thread (so an abandoned decoder stream is cleaned up exactly as without prefetching).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")

_END = object()


class _Failed:
    def __init__(self, exc: BaseException):
        self.exc = exc


def prefetched(items: Iterator[T], depth: int = 16) -> Iterator[T]:
    """`items`, produced up to `depth` ahead in a daemon thread."""
    handoff: queue.Queue = queue.Queue(maxsize=max(depth, 1))
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    break
            else:
                put(_END)
        except BaseException as exc:  # handed to the consumer, raised there
            put(_Failed(exc))
        finally:
            close = getattr(items, "close", None)
            if stop.is_set() and close is not None:
                close()

    thread = threading.Thread(target=produce, name="vad-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = handoff.get()
            if item is _END:
                return
            if isinstance(item, _Failed):
                raise item.exc
            yield item
    finally:
        stop.set()
        thread.join()
