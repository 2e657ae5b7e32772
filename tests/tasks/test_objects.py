import os
import shutil

import numpy as np
import pyarrow as pa
import pytest
import torch

from tasks.jobs.extract import ExtractJob, extract_video
from tasks.media.backbones import ExtractorSpec
from tasks.media.detectors import DetectorSpec, ObjectDetector
from tasks.models.inputs import padded_objects
from tasks.store.archive import discover_videos
from tasks.store.output import OutputStore
from tests.conftest import VIDEOS


@pytest.fixture(scope="module")
def extracted_objects(tmp_path_factory):
    root = tmp_path_factory.mktemp("objects")
    archive = root / "archive"
    archive.mkdir()
    for name in ("v_GGSY1Qvo990.mp4", "v_ZNVhz7ctTq0.mp4"):
        shutil.copy(os.path.join(VIDEOS, name), archive / name)  # a symlink out of the archive is skipped
    spec = ExtractorSpec("mc3_18", size=32, stride=64)
    detector = DetectorSpec(mode="proposals", max_objects=12)
    store = OutputStore(str(root / "out"))
    outcomes = [
        extract_video(e, store, ExtractJob(spec, tokens=True, detector=detector)) for e in discover_videos(str(archive))
    ]
    return store, spec, detector, outcomes


def test_object_features_on_real_videos_schema_ranges_and_limits(extracted_objects):
    store, spec, detector, outcomes = extracted_objects
    assert [o.status for o in outcomes] == ["done", "done"]
    for o in outcomes:
        table = store.read_table(store.objects(detector.detector_id, o.video_id))
        schema = table.table.schema
        assert schema.field("boxes").type == pa.list_(pa.list_(pa.float32(), 4))
        assert schema.field("scores").type == pa.list_(pa.float32())
        assert schema.field("labels").type == pa.list_(pa.int32())
        assert schema.field("roi_features").type == pa.list_(pa.list_(pa.float32(), 1024))
        assert table.metadata["detector_id"] == detector.detector_id
        features = store.read_table(os.path.join(store.root, "features", spec.extractor_id, o.video_id + ".parquet"))
        np.testing.assert_array_equal(table.column("center_frame"), features.column("center_frame"))
        assert features.tokens is not None and features.tokens.shape[1] == 4  # 2x2 token map at 32 px
        counts = [len(b) for b in table.table.column("boxes").to_pylist()]
        assert max(counts) <= 12 and min(counts) > 0
        boxes = np.array([b for row in table.table.column("boxes").to_pylist() for b in row])
        assert boxes.min() >= 0 and boxes.max() <= 1 and (boxes[:, 2] >= boxes[:, 0]).all()
        padded = padded_objects(table, 36)
        assert padded["objects"].shape == (table.table.num_rows, 36, 1024)
        assert padded["object_mask"].sum(1).tolist() == counts


def test_random_detector_finds_no_confident_boxes_and_rows_stay_valid():
    spec = DetectorSpec(score_threshold=0.2)
    frames = np.random.default_rng(0).integers(0, 255, (2, 240, 320, 3), dtype=np.uint8)
    out = ObjectDetector(spec, "cpu").detect(frames)
    assert len(out) == 2
    for f in out:
        assert f.boxes.shape[1:] == (4,) and f.roi_features.shape[0] == len(f.boxes) <= 36
        assert np.all(f.scores > 0.2)


def test_detector_id_names_what_makes_objects_comparable():
    assert DetectorSpec().detector_id == "fasterrcnn_mobilenet_v3_large_320_fpn-random0-t0.2m36-c16s16-320"
    assert (
        DetectorSpec("fasterrcnn_resnet50_fpn", mode="proposals", max_objects=8).detector_id
        == "fasterrcnn_resnet50_fpn-random0-top8-c16s16-240"
    )
    with pytest.raises(ValueError, match="unknown detector"):
        DetectorSpec("yolo")


def test_saved_random_detector_weights_load_back_from_a_file(tmp_path):
    spec = DetectorSpec(mode="proposals", max_objects=5, seed=3)
    first = ObjectDetector(spec, "cpu")
    path = tmp_path / "det.pt"
    torch.save(first.model.state_dict(), path)
    again = ObjectDetector(DetectorSpec(mode="proposals", max_objects=5, weights=str(path)), "cpu")
    frames = np.random.default_rng(1).integers(0, 255, (1, 120, 160, 3), dtype=np.uint8)
    a, b = first.detect(frames)[0], again.detect(frames)[0]
    np.testing.assert_array_equal(a.boxes, b.boxes)
    np.testing.assert_array_equal(a.roi_features, b.roi_features)
    assert DetectorSpec(weights=str(path)).detector_id.split("-")[1].startswith("file")
