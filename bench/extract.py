"""Extraction benchmark, per backbone at its preset input (r3d_18 112 px; the thesis's i3d 224, c3d 112, tsm 224):
pipeline rate / raw model forward rate, the cost of 10 crops over 1; and decord / PyAV decode rate; in one run.

pipeline = extract_videos() over the videos (one task): decode (decord, chunked) + preprocess + forward +
           Parquet write, clips/s.
raw      = the same backbone's forward on the same clips, pre-decoded and pre-normalised tensors in the layout the
           pipeline uses (channels-last), clips/s.
10 crops = the pipeline with --crops 10 (each clip's 10 crops forwarded one crop batch at a time).
Prints a JSON line and writes bench/results/extract.json (+ .md).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import torch
from results_io import machine, save_results

from tasks.jobs.extract import ExtractJob, extract_videos
from tasks.media.backbones import ExtractorSpec, cached_extractor
from tasks.media.synthetic import generate_archive
from tasks.media.video import ClipReader
from tasks.store.archive import discover_videos
from tasks.store.output import OutputStore


def decode_rate_decord(paths):
    import decord

    frames, t0 = 0, time.perf_counter()
    for p in paths:
        vr = decord.VideoReader(p, num_threads=1)
        for s in range(0, len(vr), 64):
            frames += len(vr.get_batch(list(range(s, min(s + 64, len(vr))))).asnumpy())
    return frames / (time.perf_counter() - t0)


def decode_rate_pyav(paths):
    import av

    frames, t0 = 0, time.perf_counter()
    for p in paths:
        with av.open(p) as c:
            c.streams.video[0].thread_type = "AUTO"
            for frame in c.decode(video=0):
                frame.to_ndarray(format="rgb24")
                frames += 1
    return frames / (time.perf_counter() - t0)


def pipeline_rate(entries, spec: ExtractorSpec, threads: int, out: str) -> tuple[float, int]:
    """extract_videos (one task's call) over every entry into a fresh output, after a warm-up call (a worker
    process starts its decoder children once): (clips/s, clips)."""
    job = ExtractJob(spec, batch_size=8, threads=threads)
    extract_videos(entries[:1], OutputStore(out + "-warm"), job)
    t0 = time.perf_counter()
    clips = sum(o.clips for o in extract_videos(entries, OutputStore(out), job))
    return clips / (time.perf_counter() - t0), clips


def backbone_row(name: str, entries, threads: int, tmp: str, size: int | None = None) -> dict:
    """One backbone at its preset input: pipeline and raw forward rates, and 10 crops' cost over 1 crop."""
    spec = ExtractorSpec(name, size=size)
    model = cached_extractor(spec, "cpu").feeding("fp32", channels_last=True)  # as the pipeline feeds it
    batches = []
    for e in entries:
        frames = [c.frames for c in ClipReader(e.url, spec.clip_len, spec.stride, short_side=spec.short_side)]
        batches += [model.preprocess(np.stack(frames[i : i + 8])).contiguous(memory_format=torch.channels_last_3d)
                    for i in range(0, len(frames), 8)]  # fmt: skip

    def raw_rate():
        t0 = time.perf_counter()
        with torch.no_grad():
            for x in batches:
                model.forward_features(x)
        return sum(len(x) for x in batches) / (time.perf_counter() - t0)

    raw_rate()  # warm-up: first forwards of each batch shape allocate
    raw_before = raw_rate()
    pipeline, clips = pipeline_rate(entries, spec, threads, os.path.join(tmp, f"out-{name}"))
    raw = (raw_before + raw_rate()) / 2  # raw measured before and after the pipeline, averaged
    ten, _ = pipeline_rate(entries, ExtractorSpec(name, size=size, crops=10), threads, os.path.join(tmp, f"x10-{name}"))
    return {
        "extractor_id": spec.extractor_id,
        "clips": clips,
        "pipeline_clips_per_s": round(pipeline, 3),
        "raw_forward_clips_per_s": round(raw, 3),
        "pipeline_over_raw": round(pipeline / raw, 3),
        "ten_crop_clips_per_s": round(ten, 3),
        "ten_crop_cost_over_one": round(pipeline / ten, 2),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--videos", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=4)
    ap.add_argument("--backbones", default="r3d_18,i3d,c3d,tsm")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        archive = os.path.join(tmp, "archive")
        generate_archive(archive, args.videos, seed=3, duration_s=(args.seconds, args.seconds))
        entries = discover_videos(archive)
        rows = {name: backbone_row(name, entries, args.threads, tmp) for name in args.backbones.split(",")}
        paths = [e.url for e in entries]
        decord_fps, pyav_fps = decode_rate_decord(paths), decode_rate_pyav(paths)
    result = {
        "backbones": rows,
        "torch_threads": args.threads,
        "decord_fps": round(decord_fps, 1),
        "pyav_fps": round(pyav_fps, 1),
        "decord_over_pyav": round(decord_fps / pyav_fps, 3),
        "targets": "pipeline/raw >= 0.9; 10 crops cost <= 10x one crop",
        "machine": machine(),
        "note": "random-initialised backbones at their preset sizes (no pretrained weights on this machine)",
    }
    save_results("extract", result)


if __name__ == "__main__":
    main()
