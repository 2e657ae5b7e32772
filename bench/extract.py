"""Extraction benchmark: pipeline rate / raw model forward rate, and decord / PyAV decode rate, in one run.

pipeline = extract_video() per video: decode (decord, chunked) + preprocess + forward + Parquet write, clips/s.
raw      = the same backbone's forward on the same clips, pre-decoded and pre-normalised tensors, clips/s.
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

from tasks.jobs.extract import ExtractJob, extract_video
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--videos", type=int, default=2)
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--size", type=int, default=112)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    spec = ExtractorSpec(size=args.size)
    with tempfile.TemporaryDirectory() as tmp:
        archive = os.path.join(tmp, "archive")
        generate_archive(archive, args.videos, seed=3, duration_s=(args.seconds, args.seconds))
        entries = discover_videos(archive)
        model = cached_extractor(spec, "cpu")
        paths = [e.url for e in entries]
        batches = []
        for p in paths:
            frames = [c.frames for c in ClipReader(p, spec.clip_len, spec.stride, short_side=spec.short_side)]
            batches += [model.preprocess(np.stack(frames[i : i + 8])) for i in range(0, len(frames), 8)]

        def raw_rate():
            t0 = time.perf_counter()
            with torch.no_grad():
                for x in batches:
                    model.forward_features(x)
            return sum(len(x) for x in batches) / (time.perf_counter() - t0)

        raw_rate()  # warm-up: first forwards of each batch shape allocate
        raw_before = raw_rate()
        t0 = time.perf_counter()
        clips = sum(
            extract_video(
                e, OutputStore(os.path.join(tmp, "out")), ExtractJob(spec, batch_size=8, threads=args.threads)
            ).clips
            for e in entries
        )
        pipeline = clips / (time.perf_counter() - t0)
        raw = (raw_before + raw_rate()) / 2  # raw measured before and after the pipeline, averaged
        decord_fps, pyav_fps = decode_rate_decord(paths), decode_rate_pyav(paths)
    result = {
        "extractor_id": spec.extractor_id,
        "clips": clips,
        "torch_threads": args.threads,
        "pipeline_clips_per_s": round(pipeline, 3),
        "raw_forward_clips_per_s": round(raw, 3),
        "pipeline_over_raw": round(pipeline / raw, 3),
        "decord_fps": round(decord_fps, 1),
        "pyav_fps": round(pyav_fps, 1),
        "decord_over_pyav": round(decord_fps / pyav_fps, 3),
        "machine": machine(),
        "note": "random-initialised backbone (no pretrained weights on this machine)",
    }
    save_results("extract", result)


if __name__ == "__main__":
    main()
