import os
import pickle

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from anomaly_models.errors import UsageError
from tasks.store.names import InvalidName
from tasks.store.output import OutputStore
from tasks.store.tables import feature_table


def _table(video_id, n=5, d=8, tokens=False):
    rng = np.random.default_rng(0)
    starts = np.arange(n) * 16
    return feature_table(
        video_id,
        starts,
        starts + 16,
        starts + 8,
        16.0,
        rng.normal(size=(n, d)),
        {"extractor_id": "x-1", "fps": 16.0, "frame_count": n * 16, "fingerprint": "10-1"},
        rng.normal(size=(n, 4, 3)) if tokens else None,
    )


def test_schema_round_trip_and_metadata(tmp_path):
    store = OutputStore(str(tmp_path))
    url = store.features("x-1", "cam1/a.mp4")
    assert url == str(tmp_path / "features" / "x-1" / "cam1" / "a.mp4.parquet")
    store.write_table(url, _table("cam1/a.mp4", tokens=True))
    back = store.read_table(url)
    schema = back.table.schema
    assert schema.field("video_id").type == pa.string() and schema.field("clip_index").type == pa.int32()
    for col in ("start_frame", "end_frame", "center_frame"):
        assert schema.field(col).type == pa.int64()
    assert schema.field("start_s").type == pa.float64()
    assert schema.field("feature").type == pa.list_(pa.float32(), 8)
    assert back.features.shape == (5, 8) and back.tokens.shape == (5, 4, 3) and back.tokens.dtype == np.float16
    assert back.column("end_s")[0] == 1.0
    assert back.metadata["extractor_id"] == "x-1" and store.read_metadata(url)["fingerprint"] == "10-1"
    assert store.read_metadata(str(tmp_path / "missing.parquet")) is None


def test_directory_reads_as_a_dataset_and_leaves_no_temp_files(tmp_path):
    store = OutputStore(str(tmp_path))
    for vid in ("cam1/a.mp4", "cam1/b.mp4", "cam2/c.mp4"):
        store.write_table(store.features("x-1", vid), _table(vid, d=4))
    root = store.features_dir("x-1")
    hidden = [f for _, _, files in os.walk(root) for f in files if f.startswith(".")]
    assert hidden == []
    df = pd.read_parquet(root)
    assert len(df) == 15 and sorted(df.video_id.unique()) == ["cam1/a.mp4", "cam1/b.mp4", "cam2/c.mp4"]
    assert store.video_ids(root) == ["cam1/a.mp4", "cam1/b.mp4", "cam2/c.mp4"]


@pytest.mark.parametrize(
    "video_id", ["../x.mp4", "/etc/x.mp4", "a//b.mp4", "a/./b.mp4", "", "cam\x01/a.mp4", "a\\b.mp4", "cam/.."]
)
def test_names_from_outside_never_escape_the_root(tmp_path, video_id):
    store = OutputStore(str(tmp_path))
    with pytest.raises(InvalidName):
        store.features("x-1", video_id)
    with pytest.raises(InvalidName):
        store.report("m", video_id, ".html")


@pytest.mark.parametrize("producer", ["../../../x", "a/b", "..", "", "m\n1"])
def test_producer_ids_are_single_safe_names(tmp_path, producer):
    store = OutputStore(str(tmp_path))
    for path in (store.scores_dir, store.reports_dir, store.model_dir, store.features_dir, store.objects_dir):
        with pytest.raises(InvalidName):
            path(producer)


def test_long_ids_write_with_short_temp_names(tmp_path):
    store = OutputStore(str(tmp_path))
    vid = "cam/" + "x" * 230 + ".mp4"  # 234 + ".json": a temp name built from it would pass 255 bytes
    store.write_json(store.report("m", vid, ".json"), {"ok": 1})
    assert store.read_json(store.report("m", vid, ".json")) == {"ok": 1}


def test_freshness_is_one_check_against_expected_metadata(tmp_path):
    store = OutputStore(str(tmp_path))
    url = store.features("x-1", "a.mp4")
    assert store.current_metadata(url, {"fingerprint": "10-1"}) is None  # missing
    store.write_table(url, _table("a.mp4"))
    assert store.is_current(url, {"fingerprint": "10-1", "extractor_id": "x-1"})
    assert not store.is_current(url, {"fingerprint": "10-2", "extractor_id": "x-1"})  # another version of the video
    assert not store.is_current(url, {"fingerprint": "10-1"}, required=("tokens_shape",))  # lacks tokens


def test_locate_reads_the_tree_backwards_and_names_the_expected_shape(tmp_path):
    store, extractor_id = OutputStore.locate(str(tmp_path / "features" / "r3d-1") + "/", "features")
    assert store.root == str(tmp_path) and extractor_id == "r3d-1"
    store, model_id = OutputStore.locate("s3://bucket/out/models/m1/checkpoint.pt", "models", {"key": "k"})
    assert (store.root, model_id, dict(store.storage_options)) == ("s3://bucket/out", "m1", {"key": "k"})
    with pytest.raises(UsageError, match="<out>/scores/<id>"):
        OutputStore.locate(str(tmp_path / "features" / "x"), "scores")


def test_store_pickles_and_hides_credentials():
    store = OutputStore("s3://bucket/out", {"secret": "NEVER-SHOWN"})
    assert "NEVER-SHOWN" not in repr(store)
    again = pickle.loads(pickle.dumps(store))
    assert again == store and dict(again.storage_options) == {"secret": "NEVER-SHOWN"}
