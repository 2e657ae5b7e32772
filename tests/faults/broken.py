"""Broken inputs, made by the tests themselves: the faults the nightly scan must survive."""

from __future__ import annotations

import io
import os
import shutil

import numpy as np


def overreported_mp4(path: str, real: int = 40, phantom: int = 200, fps: int = 16, size=(64, 48)) -> None:
    """An H.264 MP4 whose container lists `real + phantom` frames but only `real` decode: the phantom ones are
    end-of-sequence packets. decord reports them, repeats the last frame for them, and spins for ever when asked
    for one directly."""
    import av

    w, h = size
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with av.open(path, "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"preset": "ultrafast", "threads": "1", "bframes": "0"}
        last = None
        rng = np.random.default_rng(0)
        for _ in range(real):
            img = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
                last = packet
        for packet in stream.encode():
            container.mux(packet)
            last = packet
        assert last is not None
        for k in range(phantom):
            packet = av.Packet(b"\x00\x00\x00\x01\x0a")  # an H.264 end-of-sequence NAL unit
            packet.stream = stream
            packet.pts = packet.dts = last.pts + k + 1
            packet.time_base = last.time_base
            container.mux(packet)


def png_as_mp4(path: str) -> None:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (32, 24), (200, 10, 10)).save(buf, format="PNG")
    with open(path, "wb") as f:
        f.write(buf.getvalue())


def zero_byte(path: str) -> None:
    open(path, "wb").close()


def truncated_copy(source: str, path: str, fraction: float = 0.3) -> None:
    shutil.copy(source, path)
    with open(path, "r+b") as f:
        f.truncate(int(os.path.getsize(source) * fraction))
