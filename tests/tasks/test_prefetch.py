"""Decode-ahead: order kept, at most `depth` items ahead, errors raised where they happened, and a consumer that
stops early closes the producer's iterator (so an abandoned decoder stream is cleaned up)."""

import threading
import time

import pytest

from tasks.media.prefetch import prefetched


def test_order_depth_and_errors():
    produced = []

    def items():
        for i in range(10):
            produced.append(i)
            yield i
        raise ValueError("frame 10 is broken")

    consumer = prefetched(items(), depth=3)
    assert next(consumer) == 0
    time.sleep(0.3)
    assert len(produced) <= 1 + 3 + 1  # taken + queued + the one waiting to be queued
    got = [0]
    with pytest.raises(ValueError, match="frame 10"):
        for item in consumer:
            got.append(item)
    assert got == list(range(10))


def test_early_stop_closes_the_source_in_its_thread():
    closed = []

    def items():
        try:
            yield from range(1000)
        finally:
            closed.append(threading.current_thread().name)

    consumer = prefetched(items(), depth=2)
    assert [next(consumer) for _ in range(3)] == [0, 1, 2]
    consumer.close()
    assert closed == ["vad-prefetch"]
    assert not [t for t in threading.enumerate() if t.name == "vad-prefetch"]
