"""The Parquet tables of the output tree (README: Output tree), built and decoded in memory; `OutputStore` reads
and writes them.

Feature tables: one row per clip (`CLIP_COLUMNS`, `feature` fixed_size_list<float32, D>, optional `tokens`
float16 [N*C] with metadata `tokens_shape` "N,C"; with K > 1 crops, `feature` is the mean over crops and
`crop_features` fixed_size_list<fixed_size_list<float32, D>, K> holds each crop's, metadata `crops` "K").
Object tables add per row `boxes` list<fixed_size_list<float32,4>> (x1,y1,x2,y2 in [0,1]), `scores` list<float32>,
`labels` list<int32>, `roi_features` list<fixed_size_list<float32,D>>; a frame with no box is a valid row with
empty lists. File metadata carries the producer id (extractor, detector, model), fps, frame count
and the source fingerprint that decides staleness.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

CLIP_COLUMNS = ("video_id", "clip_index", "start_frame", "end_frame", "center_frame", "start_s", "end_s")


@dataclass
class ClipTable:
    table: pa.Table
    metadata: dict[str, str]

    @property
    def features(self) -> np.ndarray:
        col = self.table.column("feature").combine_chunks()
        dim = col.type.list_size
        return col.values.to_numpy(zero_copy_only=False).reshape(-1, dim).astype(np.float32, copy=False)

    def column(self, name: str) -> np.ndarray:
        return self.table.column(name).to_numpy()

    @property
    def crop_features(self) -> np.ndarray | None:
        """[T, K, D] per-crop features, when the table has them."""
        if "crop_features" not in self.table.column_names:
            return None
        col = self.table.column("crop_features").combine_chunks()
        k, d = col.type.list_size, col.type.value_type.list_size
        return col.values.values.to_numpy(zero_copy_only=False).reshape(-1, k, d).astype(np.float32, copy=False)

    @property
    def tokens(self) -> np.ndarray | None:
        if "tokens" not in self.table.column_names:
            return None
        n, c = (int(v) for v in self.metadata["tokens_shape"].split(","))
        col = self.table.column("tokens").combine_chunks()
        return col.values.to_numpy(zero_copy_only=False).reshape(-1, n, c)


def _fixed(values: np.ndarray, dtype: pa.DataType) -> pa.FixedSizeListArray:
    values = np.ascontiguousarray(values)
    flat = values.reshape(len(values), -1)
    return pa.FixedSizeListArray.from_arrays(pa.array(flat.ravel(), type=dtype), flat.shape[1])


def _list_of_fixed(rows: list[np.ndarray], width: int, dtype: Any) -> pa.ListArray:
    offsets = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int32)
    flat = np.concatenate([r.reshape(-1, width) for r in rows]) if rows else np.zeros((0, width))
    values = pa.FixedSizeListArray.from_arrays(pa.array(flat.astype(dtype).ravel()), width)
    return pa.ListArray.from_arrays(pa.array(offsets), values)


def _list(rows: list[np.ndarray], dtype: Any) -> pa.ListArray:
    offsets = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int32)
    flat = np.concatenate(rows) if rows else np.zeros(0)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat.astype(dtype)))


def _with_metadata(cols: dict[str, pa.Array], metadata: Mapping[str, Any]) -> pa.Table:
    return pa.table(cols).replace_schema_metadata({k: str(v) for k, v in metadata.items()})


def clip_columns(video_id: str, starts, ends, centers, fps: float) -> dict[str, pa.Array]:
    starts, ends = np.asarray(starts, np.int64), np.asarray(ends, np.int64)
    return {
        "video_id": pa.array([video_id] * len(starts), pa.string()),
        "clip_index": pa.array(np.arange(len(starts), dtype=np.int32)),
        "start_frame": pa.array(starts),
        "end_frame": pa.array(ends),
        "center_frame": pa.array(np.asarray(centers, np.int64)),
        "start_s": pa.array(starts / fps),
        "end_s": pa.array(ends / fps),
    }


def feature_table(
    video_id: str,
    starts,
    ends,
    centers,
    fps: float,
    features: np.ndarray,
    metadata: Mapping[str, Any],
    tokens: np.ndarray | None = None,
    crops: np.ndarray | None = None,
) -> pa.Table:
    """`features` [T, D]; `tokens` [T, N, C]; `crops` [T, K, D] per-crop features (`features` is their mean)."""
    cols = clip_columns(video_id, starts, ends, centers, fps)
    feats = np.asarray(features, np.float32).reshape(len(cols["clip_index"]), -1)
    cols["feature"] = _fixed(feats, pa.float32())
    meta = dict(metadata)
    if crops is not None:
        crops = np.ascontiguousarray(crops, np.float32)
        per_crop = pa.FixedSizeListArray.from_arrays(pa.array(crops.ravel()), crops.shape[2])
        cols["crop_features"] = pa.FixedSizeListArray.from_arrays(per_crop, crops.shape[1])
        meta["crops"] = crops.shape[1]
    if tokens is not None:
        cols["tokens"] = _fixed(np.asarray(tokens, np.float16), pa.float16())
        meta["tokens_shape"] = f"{tokens.shape[1]},{tokens.shape[2]}"
    return _with_metadata(cols, meta)


def objects_table(
    video_id: str, starts, ends, centers, fps: float, frames: list, metadata: Mapping[str, Any]
) -> pa.Table:
    """frames: one `FrameObjects` (boxes, scores, labels, roi_features arrays) per clip centre frame."""
    cols = clip_columns(video_id, starts, ends, centers, fps)
    dim = next((f.roi_features.shape[1] for f in frames if f.roi_features.ndim == 2), 1024)
    cols["boxes"] = _list_of_fixed([f.boxes for f in frames], 4, np.float32)
    cols["scores"] = _list([f.scores for f in frames], np.float32)
    cols["labels"] = _list([f.labels for f in frames], np.int32)
    cols["roi_features"] = _list_of_fixed([f.roi_features for f in frames], dim, np.float32)
    return _with_metadata(cols, {**metadata, "roi_dim": dim})


def scores_table(features: ClipTable, video_id: str, scores: np.ndarray, metadata: Mapping[str, Any]) -> pa.Table:
    """The clip columns of the features plus `score` float32."""
    cols = clip_columns(
        video_id,
        features.column("start_frame"),
        features.column("end_frame"),
        features.column("center_frame"),
        float(features.metadata["fps"]),
    )
    cols["score"] = pa.array(np.asarray(scores, np.float32))
    return _with_metadata(cols, metadata)


def table_bytes(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def decode_metadata(raw: Mapping[bytes, bytes] | None) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in (raw or {}).items() if not k.startswith(b"ARROW")}


def json_bytes(obj: Any) -> bytes:
    return json.dumps(obj, indent=2, sort_keys=True, default=str).encode()
