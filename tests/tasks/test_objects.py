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


def test_centre_frames_of_several_videos_share_detection_batches(tmp_path, monkeypatch):
    """Five short videos in one task: their centre frames go through the detector in shared batches of 8 (not one
    small batch per video), and each video gets the objects it gets when extracted alone."""
    from tasks.jobs.extract import extract_videos
    from tasks.media.synthetic import generate_archive

    generate_archive(str(tmp_path / "archive"), 5, seed=11, duration_s=(2.0, 3.0))  # 2-3 clips each
    entries = discover_videos(str(tmp_path / "archive"))
    spec, detector = ExtractorSpec("r3d_18", size=32), DetectorSpec(mode="proposals", max_objects=6)
    job = ExtractJob(spec, detector=detector, batch_size=8, decode_workers=2)
    calls: list[int] = []
    real_detect = ObjectDetector.detect

    def counted(self, frames):
        calls.append(len(frames))
        return real_detect(self, frames)

    monkeypatch.setattr(ObjectDetector, "detect", counted)
    together = OutputStore(str(tmp_path / "together"))
    assert [o.status for o in extract_videos(entries, together, job)] == ["done"] * 5
    frames = sum(together.read_table(together.features(spec.extractor_id, e.video_id)).table.num_rows for e in entries)
    assert sum(calls) == frames and len(calls) == -(-frames // 8), calls  # full batches, one remainder
    calls.clear()
    alone = OutputStore(str(tmp_path / "alone"))
    for entry in entries:
        assert extract_video(entry, alone, job).status == "done"
    assert len(calls) == len(entries)  # one small batch per video before
    for entry in entries:
        a = together.read_table(together.objects(detector.detector_id, entry.video_id)).table.to_pylist()
        b = alone.read_table(alone.objects(detector.detector_id, entry.video_id)).table.to_pylist()
        assert [r["center_frame"] for r in a] == [r["center_frame"] for r in b]
        for x, y in zip(a, b):
            np.testing.assert_allclose(np.array(x["boxes"]), np.array(y["boxes"]), atol=1e-3)
            np.testing.assert_allclose(np.array(x["roi_features"]), np.array(y["roi_features"]), atol=1e-3)
