"""A deterministic generated surveillance archive, for tests and the demo.

Scene: a static textured background with a few small figures walking slowly (normal). Anomalies look different
enough that even random-initialised 3D CNN features separate them:
  - Explosion: an expanding bright blast with strong flicker;
  - Fighting: a large object bursting in and jumping around fast and erratically.
Videos are H.264 (PyAV/libx264); annotations are written in the UCF-Crime V2 JSON format (seconds):
{"<Class>/<name>.mp4": [{"start": s, "end": e}, ...]}, with [] for normal videos.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta

import numpy as np

CLASSES = ("Explosion", "Fighting")


def _background(rng, h, w):
    yy, xx = np.mgrid[0:h, 0:w]
    base = 70 + 40 * (yy / h)[..., None] + 20 * (xx / w)[..., None] * np.array([1.0, 0.8, 0.6])
    texture = rng.normal(0, 12, size=(h // 4 + 1, w // 4 + 1, 1)).repeat(4, 0).repeat(4, 1)[:h, :w]
    return np.clip(base + texture, 0, 255)


def render_video(
    path: str,
    anomaly: str | None,
    seed: int,
    fps: int = 16,
    size=(160, 120),
    duration_s: float = 16.0,
    segment: tuple[float, float] | None = None,
    recorded_at: str | None = None,
) -> None:
    """Write one H.264 video; `segment` (seconds) is where the anomaly happens; `recorded_at` (ISO 8601) goes into
    the container's creation_time, as cameras write it."""
    import av

    rng = np.random.default_rng(seed)
    w, h = size
    n = int(round(duration_s * fps))
    bg = _background(rng, h, w)
    walkers = [
        dict(
            x=rng.uniform(0, w), y=rng.uniform(h * 0.4, h - 20), vx=rng.uniform(-0.6, 0.6), color=rng.uniform(20, 90, 3)
        )
        for _ in range(3)
    ]
    blob = dict(x=w / 2, y=h / 2)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with av.open(path, "w") as container:
        if recorded_at:
            container.metadata["creation_time"] = recorded_at
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"crf": "26", "preset": "ultrafast", "threads": "1"}
        for i in range(n):
            t = i / fps
            frame = bg + rng.normal(0, 1.5, size=(h, w, 1))
            for p in walkers:
                p["x"] = (p["x"] + p["vx"]) % w
                x, y = int(p["x"]), int(p["y"])
                frame[y : y + 16, x : x + 7] = p["color"]
            if anomaly and segment and segment[0] <= t < segment[1]:
                phase = (t - segment[0]) / max(segment[1] - segment[0], 1e-6)
                if anomaly == "Explosion":
                    r = 10 + 60 * phase
                    yy, xx = np.mgrid[0:h, 0:w]
                    blast = np.exp(-(((yy - h / 2) ** 2 + (xx - w / 2) ** 2) / (2 * r * r)))[..., None]
                    flicker = 0.5 + rng.uniform(0, 1.0)
                    frame = frame + 230 * flicker * blast * np.array([1.0, 0.75, 0.3])
                    if i % 2 == 0:
                        frame = frame * rng.uniform(1.3, 1.8)
                else:  # Fighting: a large erratic object
                    blob["x"] = np.clip(blob["x"] + rng.uniform(-25, 25), 20, w - 20)
                    blob["y"] = np.clip(blob["y"] + rng.uniform(-20, 20), 20, h - 20)
                    s = int(rng.uniform(18, 30))
                    x, y = int(blob["x"]), int(blob["y"])
                    frame[max(0, y - s) : y + s, max(0, x - s) : x + s] = rng.uniform(0, 255, 3)
                    frame[max(0, y - s // 2) : y + s // 2, max(0, x - s) : x + s] = rng.uniform(0, 255, 3)
            img = np.clip(frame, 0, 255).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def generate_archive(
    root: str,
    n_videos: int,
    seed: int = 0,
    fps: int = 16,
    size=(160, 120),
    duration_s: tuple[float, float] = (14.0, 22.0),
    abnormal_fraction: float = 0.5,
    prefix: str = "",
    recorded_from: datetime | None = None,
) -> dict[str, list[dict[str, float]]]:
    """Writes n_videos under root as <Class>/<prefix><i>.mp4 and returns V2-style annotations keyed by video id.
    With `recorded_from`, video i was recorded i half-hours after it (its creation_time)."""
    rng = np.random.default_rng(seed)
    annotations: dict[str, list[dict[str, float]]] = {}
    n_abnormal = int(round(n_videos * abnormal_fraction))
    for i in range(n_videos):
        duration = float(rng.integers(int(duration_s[0]), int(duration_s[1]) + 1))
        if i < n_abnormal:
            cls = CLASSES[i % len(CLASSES)]
            length = float(rng.integers(4, 8))
            start = float(rng.integers(2, max(3, int(duration - length - 1))))
            segment = (start, start + length)
        else:
            cls, segment = "Normal", None
        video_id = f"{cls}/{prefix}{i:03d}.mp4"
        render_video(
            os.path.join(root, video_id),
            None if cls == "Normal" else cls,
            seed * 1000 + i,
            fps,
            size,
            duration,
            segment,
            (recorded_from + timedelta(minutes=30 * i)).isoformat() if recorded_from else None,
        )
        annotations[video_id] = [] if segment is None else [{"start": segment[0], "end": segment[1]}]
    return annotations


def write_annotations(path: str, annotations: dict) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        json.dump(annotations, f, indent=2, sort_keys=True)
