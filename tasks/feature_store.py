"""Per-video Parquet tables on any fsspec URL (DESIGN.md schemas), written atomically.

One object per video and kind: features/<extractor_id>/<video_id>.parquet. File metadata carries the producer id
(extractor / model), fps, frame count and the source fingerprint that decides staleness.
"""
from __future__ import annotations

import io
import json
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .storage import filesystem, join, write_bytes_atomic

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
    def tokens(self) -> np.ndarray | None:
        if "tokens" not in self.table.column_names:
            return None
        n, c = (int(v) for v in self.metadata["tokens_shape"].split(","))
        col = self.table.column("tokens").combine_chunks()
        return col.values.to_numpy(zero_copy_only=False).reshape(-1, n, c)


def _fixed(values: np.ndarray, dtype) -> pa.FixedSizeListArray:
    values = np.ascontiguousarray(values)
    flat = values.reshape(len(values), -1)
    return pa.FixedSizeListArray.from_arrays(pa.array(flat.ravel(), type=dtype), flat.shape[1])


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


def feature_table(video_id: str, starts, ends, centers, fps: float, features: np.ndarray,
                  metadata: dict[str, str], tokens: np.ndarray | None = None) -> pa.Table:
    cols = clip_columns(video_id, starts, ends, centers, fps)
    feats = np.asarray(features, np.float32).reshape(len(cols["clip_index"]), -1)
    cols["feature"] = _fixed(feats, pa.float32())
    meta = dict(metadata)
    if tokens is not None:
        cols["tokens"] = _fixed(np.asarray(tokens, np.float16), pa.float16())
        meta["tokens_shape"] = f"{tokens.shape[1]},{tokens.shape[2]}"
    table = pa.table(cols)
    return table.replace_schema_metadata({k: str(v) for k, v in meta.items()})


def table_bytes(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def write_table(url: str, table: pa.Table, storage_options: dict | None = None) -> None:
    write_bytes_atomic(url, table_bytes(table), storage_options)


def _decode_meta(raw: dict | None) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in (raw or {}).items() if not k.startswith(b"ARROW")}


def read_table(url: str, storage_options: dict | None = None) -> ClipTable:
    fs, path = filesystem(url, storage_options)
    with fs.open(path, "rb") as f:
        table = pq.read_table(f)
    return ClipTable(table, _decode_meta(table.schema.metadata))


def read_metadata(url: str, storage_options: dict | None = None) -> dict[str, str] | None:
    """Only the footer's key/value metadata, or None when the object does not exist or is unreadable."""
    fs, path = filesystem(url, storage_options)
    try:
        with fs.open(path, "rb") as f:
            return _decode_meta(pq.read_schema(f).metadata)
    except (FileNotFoundError, pa.ArrowInvalid, OSError):
        return None


def output_url(out_root: str, kind: str, producer_id: str, video_id: str, suffix: str = ".parquet") -> str:
    """<out>/<kind>/<producer_id>/<video_id><suffix>; e.g. features/r3d_18-random0-c16s16-112/cam1/a.mp4.parquet."""
    return join(out_root, kind, producer_id, video_id + suffix)


def is_current(url: str, fingerprint: str, producer_key: str, producer_id: str,
               storage_options: dict | None = None) -> bool:
    meta = read_metadata(url, storage_options)
    return bool(meta) and meta.get("fingerprint") == fingerprint and meta.get(producer_key) == producer_id


def list_tables(root_url: str, storage_options: dict | None = None) -> list[str]:
    """Video ids of every Parquet table under a features/scores directory (hidden temp files and the quarantine
    folder excluded). Note: pyarrow dataset readers skip paths starting with '_' or '.', list_tables does not."""
    fs, root = filesystem(root_url, storage_options)
    fs.invalidate_cache()
    if not fs.exists(root):
        return []
    root = root.rstrip("/")
    ids = []
    for path in sorted(fs.find(root)):
        rel = path[len(root) + 1 :]
        parts = rel.split("/")
        if rel.endswith(".parquet") and parts[0] != "_quarantine" and not parts[-1].startswith("."):
            ids.append(rel[: -len(".parquet")])
    return ids


def json_dumps(obj) -> bytes:
    return json.dumps(obj, indent=2, sort_keys=True, default=str).encode()
