"""Object-feature and scoring benchmark, in one run on this machine's CPU.

objects: pipeline rate (decode centre frames + detect + RoI features + Parquet write, frames/s) over the raw
detector forward rate on the same pre-decoded frames. The detector is random-initialised, so it runs in
`proposals` mode (top-36 RPN proposals) to exercise the full RoI-feature path.
one-clip videos: detector frames/s with each video's single centre frame alone (a batch of one, before) and with
frames of 8 videos per batch (extract's shared detection batches), the same frames.
scoring: ADNet and ADOR (thesis sizes: 512-d, 49 action tokens x 512, 36 objects x 1024) clips/s through
`predict` (windows + stitching).
Prints a JSON line and writes bench/results/objects.json (+ .md).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import torch
from results_io import machine, save_results

from anomaly_models import ADOR, ADNet, layers_for_window, predict
from tasks.media.detectors import DetectorSpec, cached_detector
from tasks.media.synthetic import generate_archive
from tasks.media.video import ClipReader, VideoSource
from tasks.store.archive import discover_videos
from tasks.store.output import OutputStore
from tasks.store.tables import objects_table


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--clips", type=int, default=512, help="clips scored per model")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    spec = DetectorSpec(mode="proposals", max_objects=36)
    detector = cached_detector(spec, "cpu")
    with tempfile.TemporaryDirectory() as tmp:
        generate_archive(os.path.join(tmp, "a"), 2, seed=5, duration_s=(args.seconds, args.seconds))
        entries = discover_videos(os.path.join(tmp, "a"))
        centers = {e.url: [c.center_frame for c in ClipReader(e.url, 16, 16, short_side=64)] for e in entries}
        detector.detect(np.zeros((1, 240, 320, 3), np.uint8))  # warm-up
        store = OutputStore(os.path.join(tmp, "o"))
        t0 = time.perf_counter()
        frames = 0
        for e in entries:
            objs = []
            for chunk in VideoSource(e.url, e.video_id).frames(centers[e.url], max_short_side=spec.size):
                for i in range(0, len(chunk), 8):
                    objs += detector.detect(chunk[i : i + 8])
            c = np.array(centers[e.url])
            store.write_table(
                store.objects(spec.detector_id, e.video_id),
                objects_table(e.video_id, c - 8, c + 8, c, 16.0, objs, {"detector_id": spec.detector_id}),
            )
            frames += len(objs)
        pipeline = frames / (time.perf_counter() - t0)
        import decord

        decoded = []
        for e in entries:
            vr = decord.VideoReader(e.url)
            decoded.append(vr.get_batch(centers[e.url]).asnumpy())
        t0 = time.perf_counter()
        for batch in decoded:
            for i in range(0, len(batch), 8):
                detector.detect(batch[i : i + 8])
        raw = sum(len(b) for b in decoded) / (time.perf_counter() - t0)
        # one-clip videos: a batch of one frame per video (before) vs frames of 8 videos per batch (extract's shared
        # detection batches), the same frames
        frames_all = np.concatenate(decoded)
        t0 = time.perf_counter()
        for frame in frames_all:
            detector.detect(frame[None])
        batch1 = len(frames_all) / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        for i in range(0, len(frames_all), 8):
            detector.detect(list(frames_all[i : i + 8]))
        batch8 = len(frames_all) / (time.perf_counter() - t0)

    window, t = 64, args.clips
    rng = np.random.default_rng(0)
    adnet = ADNet(512, layers=layers_for_window(window)).eval()
    feats = rng.normal(size=(t, 512)).astype(np.float32)
    predict(adnet, feats[:64], window)
    t0 = time.perf_counter()
    predict(adnet, feats, window)
    adnet_rate = t / (time.perf_counter() - t0)
    ador = ADOR(512, 1024, layers=layers_for_window(window)).eval()
    inputs = {
        "tokens": rng.normal(size=(t, 49, 512)).astype(np.float16),
        "objects": rng.normal(size=(t, 36, 1024)).astype(np.float32),
        "boxes": np.sort(rng.uniform(size=(t, 36, 4)), axis=-1).astype(np.float32),
        "object_mask": np.ones((t, 36), bool),
    }
    predict(ador, {k: v[:64] for k, v in inputs.items()}, window, batch_size=1)
    t0 = time.perf_counter()
    predict(ador, inputs, window, batch_size=1)
    ador_rate = t / (time.perf_counter() - t0)
    result = {
        "detector_id": spec.detector_id,
        "frames": frames,
        "objects_pipeline_frames_per_s": round(pipeline, 2),
        "detector_raw_frames_per_s": round(raw, 2),
        "objects_pipeline_over_raw": round(pipeline / raw, 3),
        "detector_batch1_frames_per_s": round(batch1, 2),
        "detector_batch8_frames_per_s": round(batch8, 2),
        "shared_batches_over_one_frame_per_video": round(batch8 / batch1, 3),
        "adnet_clips_per_s": round(adnet_rate, 1),
        "ador_clips_per_s": round(ador_rate, 1),
        "adnet_over_ador": round(adnet_rate / ador_rate, 1),
        "torch_threads": args.threads,
        "machine": machine(),
        "note": "random-initialised detector in proposals mode; ADOR at thesis sizes (dim 512, depth 4)",
    }
    save_results("objects", result)


if __name__ == "__main__":
    main()
