import os

import numpy as np
import pandas as pd
import pyarrow as pa

from tasks.feature_store import feature_table, list_tables, read_metadata, read_table, write_table


def _table(video_id, n=5, d=8, tokens=False):
    rng = np.random.default_rng(0)
    starts = np.arange(n) * 16
    return feature_table(video_id, starts, starts + 16, starts + 8, 16.0, rng.normal(size=(n, d)),
                         {"extractor_id": "x-1", "fps": 16.0, "frame_count": n * 16, "fingerprint": "10-1"},
                         rng.normal(size=(n, 4, 3)) if tokens else None)


def test_schema_round_trip_and_metadata(tmp_path):
    url = str(tmp_path / "features" / "x-1" / "cam1" / "a.mp4.parquet")
    table = _table("cam1/a.mp4", tokens=True)
    write_table(url, table)
    back = read_table(url)
    schema = back.table.schema
    assert schema.field("video_id").type == pa.string() and schema.field("clip_index").type == pa.int32()
    for col in ("start_frame", "end_frame", "center_frame"):
        assert schema.field(col).type == pa.int64()
    assert schema.field("start_s").type == pa.float64()
    assert schema.field("feature").type == pa.list_(pa.float32(), 8)
    assert back.features.shape == (5, 8) and back.tokens.shape == (5, 4, 3) and back.tokens.dtype == np.float16
    assert back.column("end_s")[0] == 1.0
    assert back.metadata["extractor_id"] == "x-1" and read_metadata(url)["fingerprint"] == "10-1"
    assert read_metadata(str(tmp_path / "missing.parquet")) is None


def test_directory_reads_as_a_dataset_and_leaves_no_temp_files(tmp_path):
    root = tmp_path / "features" / "x-1"
    for vid in ("cam1/a.mp4", "cam1/b.mp4", "cam2/c.mp4"):
        write_table(str(root / (vid + ".parquet")), _table(vid, d=4))
    hidden = [f for _, _, files in os.walk(root) for f in files if f.startswith(".")]
    assert hidden == []
    df = pd.read_parquet(str(root))
    assert len(df) == 15 and sorted(df.video_id.unique()) == ["cam1/a.mp4", "cam1/b.mp4", "cam2/c.mp4"]
    assert list_tables(str(root)) == ["cam1/a.mp4", "cam1/b.mp4", "cam2/c.mp4"]
