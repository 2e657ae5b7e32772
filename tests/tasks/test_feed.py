"""Several videos per task: clips of different videos share forward passes, features equal one-video-at-a-time
extraction, a broken video among good ones fails alone, objects read the decode thread's open video, and tasks
pack short files."""

import os
import shutil

import numpy as np
import pytest

from flows.pipeline import task_groups
from tasks.jobs.extract import ExtractJob, extract_video, extract_videos
from tasks.media.backbones.base import ActionBackbone
from tasks.media.detectors import DetectorSpec
from tasks.media.specs import ExtractorSpec
from tasks.media.synthetic import generate_archive
from tasks.store.archive import VideoEntry, discover_videos
from tasks.store.output import OutputStore
from tests.conftest import VIDEOS

SPEC = ExtractorSpec("r3d_18", size=32)


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    root = tmp_path_factory.mktemp("feed")
    generate_archive(str(root / "a"), 4, seed=5, duration_s=(3.0, 3.0))  # 48 frames: 3 clips each
    shutil.copy(os.path.join(VIDEOS, "corrupted.mp4"), root / "a" / "corrupted.mp4")
    return discover_videos(str(root / "a"))


def test_batches_span_videos_and_features_equal_one_video_at_a_time(archive, tmp_path, monkeypatch):
    good = [e for e in archive if e.video_id != "corrupted.mp4"]
    sizes = []
    original = ActionBackbone.extract

    def counted(self, clips, tokens=False):
        sizes.append(len(clips))
        return original(self, clips, tokens)

    monkeypatch.setattr(ActionBackbone, "extract", counted)
    together = OutputStore(str(tmp_path / "together"))
    outcomes = extract_videos(archive, together, ExtractJob(SPEC, batch_size=8, decode_workers=2))
    assert {o.video_id: o.status for o in outcomes} == {**{e.video_id: "done" for e in good}, "corrupted.mp4": "failed"}
    assert [o.video_id for o in outcomes] == [e.video_id for e in archive]  # in the order given
    assert sorted(sizes) == [4, 8]  # 4 videos x 3 clips in two forward passes, not four
    assert together.exists(together.quarantine(SPEC.extractor_id, "corrupted.mp4"))

    alone = OutputStore(str(tmp_path / "alone"))
    for entry in good:
        assert extract_video(entry, alone, ExtractJob(SPEC, batch_size=1, decode_workers=1)).status == "done"
        a = alone.read_table(alone.features(SPEC.extractor_id, entry.video_id))
        t = together.read_table(together.features(SPEC.extractor_id, entry.video_id))
        assert a.column("start_frame").tolist() == t.column("start_frame").tolist() == [0, 16, 32]
        np.testing.assert_allclose(a.features, t.features, rtol=1e-4, atol=1e-5)
        assert a.metadata["frame_count"] == t.metadata["frame_count"] == "48"


def test_objects_come_from_the_open_video_of_each(archive, tmp_path):
    good = [e for e in archive if e.video_id != "corrupted.mp4"][:2]
    store = OutputStore(str(tmp_path / "out"))
    detector = DetectorSpec(mode="proposals", max_objects=4)
    job = ExtractJob(SPEC, detector=detector, decode_workers=2)
    assert [o.status for o in extract_videos(good, store, job)] == ["done", "done"]
    for entry in good:
        objects = store.read_table(store.objects(detector.detector_id, entry.video_id))
        assert objects.column("center_frame").tolist() == [8, 24, 40]
    # features current, objects missing: only the objects are made, no clip is decoded again
    os.remove(store.objects(detector.detector_id, good[0].video_id))
    before = os.path.getmtime(store.features(SPEC.extractor_id, good[0].video_id))
    assert [o.status for o in extract_videos(good, store, job)] == ["done", "skipped"]
    assert os.path.getmtime(store.features(SPEC.extractor_id, good[0].video_id)) == before
    assert os.path.exists(store.objects(detector.detector_id, good[0].video_id))


def test_tasks_pack_short_files_and_leave_big_ones_alone():
    entries = [VideoEntry(f"v{i}.mp4", f"/a/v{i}.mp4", 10 * 2**20, "f") for i in range(40)]
    groups = task_groups(entries, videos=16, megabytes=2048, workers=1)
    assert [len(g) for g in groups] == [16, 16, 8] and [e for g in groups for e in g] == entries
    assert [len(g) for g in task_groups(entries[:6], 16, 2048, workers=4)] == [1] * 6  # every worker gets work
    big = [VideoEntry("big.mp4", "/a/big.mp4", 3 * 2**30, "f"), *entries[:3]]
    assert [len(g) for g in task_groups(big, 16, 2048, workers=1)] == [1, 3]
    assert task_groups([], 16, 2048, 1) == []
