"""Feeding benchmark (#15 item 1): can the decode side keep a fast model busy?

On generated 1280x720 H.264 videos (the camera case; synthetic content):
- decode K: K threads, each with its own decoder child, reading the clips of a share of the videos exactly as
  extraction does (decord, chunked, resized to the backbone's short side), no model: clips/s;
- pipeline K: `extract_videos` with `decode_workers=K` and a STAND-IN MODEL OF ZERO COST (benchmark only: it
  returns zeros at once), so the figure is everything but the network: decode, batching across videos, Parquet
  writes; clips/s and pipeline K / decode K (target >= 0.9);
- decode 2 / decode 1 on this machine's cores (target >= 1.7x on 2 cores);
- decoder efficiency on one file: each backend (decord, pyav, torchcodec) with the pipeline's resize, frames/s,
  over PyAV's decode-only frames/s (one thread each; target >= 0.8 for the default).
Prints a JSON line; writes bench/results/feed.json (+ .md).

With `--device cuda` (or cpu) the REAL backbones (`--backbones r3d_18,i3d`, random-init) run instead of the
stand-in: pipeline clips/s through `extract_videos` (decode workers, batches across videos, pinned memory,
autocast `--precision`, channels-last), the model's own clips/s on one pre-decoded batch, and the busy fraction:
time inside forward passes (host-to-device copy, forward, copy back) over wall time (target >= 0.8 on a GPU).
Writes bench/results/feed-<device>.json (+ .md) with the device named.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from results_io import machine, save_results  # noqa: E402

import tasks.media.backbones as backbones  # noqa: E402
from tasks.jobs.extract import ExtractJob, extract_videos  # noqa: E402
from tasks.media.backbones.base import ClipFeatures  # noqa: E402
from tasks.media.backends import DECODERS  # noqa: E402
from tasks.media.decoder import IsolatedVideo  # noqa: E402
from tasks.media.specs import ExtractorSpec  # noqa: E402
from tasks.media.synthetic import generate_archive  # noqa: E402
from tasks.media.video import ClipReader  # noqa: E402
from tasks.store.archive import discover_videos  # noqa: E402
from tasks.store.output import OutputStore  # noqa: E402

SPEC = ExtractorSpec("r3d_18")  # 112 px crops from a 128 px short side


class ZeroCostModel:
    """Benchmark stand-in: features of zeros, at once."""

    def feeding(self, precision: str = "fp32", channels_last: bool = False) -> ZeroCostModel:
        return self

    def extract(self, clips: np.ndarray, tokens: bool = False) -> ClipFeatures:
        return ClipFeatures(np.zeros((len(clips), 512), np.float32), None, None)


def decode_rate(paths: list[str], workers: int) -> float:
    clips = [0] * workers

    def work(k: int) -> None:
        for path in paths[k::workers]:
            with IsolatedVideo(path) as video:
                for _ in video.clips(SPEC.clip_len, SPEC.stride, short_side=SPEC.short_side):
                    clips[k] += 1

    threads = [threading.Thread(target=work, args=(k,)) for k in range(workers)]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return sum(clips) / (time.perf_counter() - t)


def pipeline_rate(entries, workers: int, out: str) -> float:
    backbones.cached_extractor = lambda spec, device=None: ZeroCostModel()  # benchmark only
    t = time.perf_counter()
    outcomes = extract_videos(entries, OutputStore(out), ExtractJob(SPEC, batch_size=8, decode_workers=workers))
    assert all(o.status == "done" for o in outcomes), outcomes
    return sum(o.clips for o in outcomes) / (time.perf_counter() - t)


def decoder_efficiency(path: str) -> dict:
    """Each backend's clip frames/s with the pipeline's resize, over PyAV's decode-only frames/s (one thread)."""
    import av

    t, n = time.perf_counter(), 0
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type, stream.thread_count = "SLICE", 1
        for _ in container.decode(stream):
            n += 1
    pyav_fps = n / (time.perf_counter() - t)
    rows = {}
    for backend in DECODERS:
        reader = ClipReader(path, 16, 16, short_side=SPEC.short_side, num_threads=1, backend=backend)
        t = time.perf_counter()
        frames = sum(len(c.frames) for c in reader)
        fps = frames / (time.perf_counter() - t)
        rows[backend] = {"resized_fps": round(fps, 1), "over_pyav_decode_only": round(fps / pyav_fps, 3)}
    return {"decoders": rows, "pyav_decode_only_fps": round(pyav_fps, 1)}


def real_feeding(entries, spec: ExtractorSpec, device: str, workers: int, batch: int, precision: str, out: str) -> dict:
    """The real backbone fed by the pipeline: clips/s, the model alone on one batch, and the forward busy fraction."""
    import torch

    model = backbones.cached_extractor(spec, device).feeding(precision, True)
    busy = [0.0]

    class Timed:  # the real model, timed (extract returns numpy: the device work is finished when it returns)
        def feeding(self, *args, **kwargs):
            return self

        def extract(self, clips, tokens=False):
            t = time.perf_counter()
            result = model.extract(clips, tokens)
            busy[0] += time.perf_counter() - t
            return result

    real = backbones.cached_extractor
    backbones.cached_extractor = lambda s, d=None: Timed()
    try:
        job = ExtractJob(spec, batch_size=batch, decode_workers=workers, precision=precision)
        t = time.perf_counter()
        outcomes = extract_videos(entries, OutputStore(out), job, device=device)
        wall = time.perf_counter() - t
    finally:
        backbones.cached_extractor = real
    assert all(o.status == "done" for o in outcomes), outcomes
    clips = sum(o.clips for o in outcomes)
    with IsolatedVideo(entries[0].url) as video:
        frames = [c.frames for c, _ in zip(video.clips(spec.clip_len, spec.stride, short_side=spec.short_side),
                                           range(batch))]  # fmt: skip
    sample = np.stack((frames * batch)[:batch])
    model.extract(sample)  # warm-up
    if device == "cuda":
        torch.cuda.synchronize()
    t, n = time.perf_counter(), 0
    while time.perf_counter() - t < 10 or n < 2:
        model.extract(sample)
        n += 1
    raw = n * batch / (time.perf_counter() - t)
    return {"pipeline_clips_per_s": round(clips / wall, 2), "model_clips_per_s": round(raw, 2),
            "pipeline_over_model": round(clips / wall / raw, 3), "busy_fraction": round(busy[0] / wall, 3),
            "clips": clips, "batch_size": batch, "decode_workers": workers, "precision": precision}  # fmt: skip


def main_device(args) -> None:
    import torch

    device, rows = args.device, {}
    with tempfile.TemporaryDirectory() as tmp:
        generate_archive(os.path.join(tmp, "a"), args.videos, seed=11, fps=25, size=(1280, 720),
                         duration_s=(args.seconds, args.seconds))  # fmt: skip
        entries = discover_videos(os.path.join(tmp, "a"))
        for name in args.backbones.split(","):
            spec = ExtractorSpec(name)
            rows[spec.extractor_id] = real_feeding(entries, spec, device, args.decode_workers, args.batch,
                                                   args.precision, os.path.join(tmp, name))  # fmt: skip
    result = {
        "device": torch.cuda.get_device_name() if device == "cuda" else f"cpu ({os.cpu_count()} cores)",
        "backbones": rows,
        "videos": f"{args.videos} generated 1280x720 H.264, 25 fps, {args.seconds:g} s",
        "target": "busy_fraction >= 0.8 on a GPU (the decode side keeps the device busy)",
        "note": "random-initialised backbones (no weights download here); busy = time inside forward passes "
        "(copies included) / wall time",
        "machine": machine(),
    }
    save_results(f"feed-{device}", result)


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--device", choices=["cpu", "cuda"], help="real backbones on this device (default: stand-in)")
    ap.add_argument("--backbones", default="r3d_18,i3d")
    ap.add_argument("--decode-workers", type=int, default=max(1, min(8, (os.cpu_count() or 2) - 1)))
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--precision", default="bf16")
    ap.add_argument("--videos", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=12.8)
    args = ap.parse_args()
    if args.device:
        main_device(args)
    else:
        main_zero_cost()


def main_zero_cost() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        generate_archive(os.path.join(tmp, "a"), 8, seed=11, fps=25, size=(1280, 720), duration_s=(6.4, 6.4))
        entries = discover_videos(os.path.join(tmp, "a"))
        paths = [e.url for e in entries]
        decode_rate(paths[:1], 1)  # warm: decoder children started, files in the page cache
        rows = {}
        for k in (1, 2):
            decode = decode_rate(paths, k)
            pipeline = pipeline_rate(entries, k, os.path.join(tmp, f"out{k}"))
            rows[f"{k} decode workers"] = {"decode_clips_per_s": round(decode, 2),
                                           "pipeline_clips_per_s": round(pipeline, 2),
                                           "pipeline_over_decode": round(pipeline / decode, 3)}  # fmt: skip
        efficiency = decoder_efficiency(paths[0])
    result = {
        "feed": rows,
        "decode_2_over_1": round(
            rows["2 decode workers"]["decode_clips_per_s"] / rows["1 decode workers"]["decode_clips_per_s"], 3
        ),  # fmt: skip
        **efficiency,
        "videos": "8 generated 1280x720 H.264, 25 fps, 6.4 s (10 clips of 16 frames each)",
        "targets": "pipeline/decode >= 0.9; decode 2/1 >= 1.7 on 2 cores; default decoder / PyAV decode-only >= 0.8",
        "note": "pipeline uses a zero-cost stand-in model (benchmark only): it measures the feeding, not a network",
        "cores": os.cpu_count(),
        "machine": machine(),
    }
    save_results("feed", result)


if __name__ == "__main__":
    main()
