"""Object-feature tables: objects/<detector_id>/<video_id>.parquet, one row per clip (its centre frame).

Columns: the clip columns, then `boxes` list<fixed_size_list<float32,4>> (x1,y1,x2,y2 in [0,1]), `scores`
list<float32>, `labels` list<int32>, `roi_features` list<fixed_size_list<float32,D>>. A frame with no box is a
valid row with empty lists.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from .decode import DECODE_ERRORS, VideoDecodeError, _reason, scaled_size
from .detectors import DetectorSpec, FrameObjects, cached_detector
from .feature_store import ClipTable, clip_columns, output_url


def objects_url(out_root: str, spec: DetectorSpec, video_id: str) -> str:
    return output_url(out_root, "objects", spec.detector_id, video_id)


def _list_of_fixed(rows: list[np.ndarray], width: int, dtype) -> pa.ListArray:
    offsets = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int32)
    flat = np.concatenate([r.reshape(-1, width) for r in rows]) if rows else np.zeros((0, width))
    values = pa.FixedSizeListArray.from_arrays(pa.array(flat.astype(dtype).ravel()), width)
    return pa.ListArray.from_arrays(pa.array(offsets), values)


def _list(rows: list[np.ndarray], dtype) -> pa.ListArray:
    offsets = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int32)
    flat = np.concatenate(rows) if rows else np.zeros(0)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat.astype(dtype)))


def objects_table(video_id: str, starts, ends, centers, fps: float, frames: list[FrameObjects],
                  metadata: dict) -> pa.Table:
    cols = clip_columns(video_id, starts, ends, centers, fps)
    dim = next((f.roi_features.shape[1] for f in frames if f.roi_features.ndim == 2), 1024)
    cols["boxes"] = _list_of_fixed([f.boxes for f in frames], 4, np.float32)
    cols["scores"] = _list([f.scores for f in frames], np.float32)
    cols["labels"] = _list([f.labels for f in frames], np.int32)
    cols["roi_features"] = _list_of_fixed([f.roi_features for f in frames], dim, np.float32)
    meta = {**metadata, "roi_dim": dim}
    return pa.table(cols).replace_schema_metadata({k: str(v) for k, v in meta.items()})


def padded_objects(table: ClipTable, max_objects: int) -> dict[str, np.ndarray]:
    """objects [T, M, D], boxes [T, M, 4], object_mask [T, M] (ADOR's inputs), zero-padded to max_objects."""
    t = table.table
    n, dim = t.num_rows, int(table.metadata.get("roi_dim", 1024))
    objects = np.zeros((n, max_objects, dim), np.float32)
    boxes = np.zeros((n, max_objects, 4), np.float32)
    mask = np.zeros((n, max_objects), bool)
    box_col, roi_col = t.column("boxes").combine_chunks(), t.column("roi_features").combine_chunks()
    offsets = box_col.offsets.to_numpy()
    flat_boxes = box_col.values.values.to_numpy(zero_copy_only=False).reshape(-1, 4)
    flat_rois = roi_col.values.values.to_numpy(zero_copy_only=False).reshape(-1, dim)
    for i in range(n):
        a, b = offsets[i], min(offsets[i + 1], offsets[i] + max_objects)
        boxes[i, : b - a], objects[i, : b - a], mask[i, : b - a] = flat_boxes[a:b], flat_rois[a:b], True
    return {"objects": objects, "boxes": boxes, "object_mask": mask}


def detect_centre_frames(path: str, centers, spec: DetectorSpec, name: str, device: str | None = None,
                         chunk: int = 64, batch_size: int = 8) -> list[FrameObjects]:
    """Decode only the centre frames (short side at most the detector's min_size), chunk by chunk, and detect."""
    import decord

    try:
        probe = decord.VideoReader(path, num_threads=1)
        h, w = probe[0].shape[:2]
        del probe
        # downscale large frames inside decord; smaller ones are left to the detector's own resize
        height, width = scaled_size(h, w, spec.size) if min(h, w) > spec.size else (h, w)
        reader = decord.VideoReader(path, width=width, height=height, num_threads=1)
    except DECODE_ERRORS as exc:
        raise VideoDecodeError(name, _reason(exc)) from exc
    detector = cached_detector(spec, device)
    out: list[FrameObjects] = []
    centers = [int(c) for c in centers]
    for i in range(0, len(centers), chunk):
        try:
            frames = reader.get_batch(centers[i : i + chunk]).asnumpy()
        except DECODE_ERRORS as exc:
            raise VideoDecodeError(name, _reason(exc)) from exc
        for j in range(0, len(frames), batch_size):
            out += detector.detect(frames[j : j + batch_size])
    return out
