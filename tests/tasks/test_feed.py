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


def test_with_several_workers_a_big_file_becomes_parts_one_task_each():
    small = [VideoEntry(f"v{i}.mp4", f"/a/v{i}.mp4", 10 * 2**20, "f") for i in range(3)]
    big = VideoEntry("big.mp4", "/a/big.mp4", 5000 * 2**20, "f")
    groups = task_groups([small[0], big, *small[1:]], videos=16, megabytes=2048, workers=4)
    assert [[(e.video_id, e.part) for e in g] for g in groups] == [
        [("v0.mp4", None)],
        [("big.mp4", (0, 3))],
        [("big.mp4", (1, 3))],
        [("big.mp4", (2, 3))],
        [("v1.mp4", None)],
        [("v2.mp4", None)],
    ]  # fmt: skip (6 entries on 4 workers: one per task)
    assert [len(g) for g in task_groups([big], 16, 2048, workers=2)] == [1, 1]  # at most one part per worker
    assert [e.part for g in task_groups([big], 16, 2048, workers=1) for e in g] == [None]  # one worker: whole


def test_parts_of_a_video_extracted_by_separate_tasks_merge_into_its_one_table(tmp_path):
    """Three parts of one video, each extracted by its own call (as separate tasks would, finishing in any
    order): the last one merges features and objects into the video's tables, equal to extracting it whole."""
    import dataclasses

    from tasks.media.synthetic import render_video

    render_video(str(tmp_path / "a" / "cam" / "long.mp4"), "Fighting", seed=4, duration_s=10, segment=(3, 6))
    [entry] = discover_videos(str(tmp_path / "a"))
    detector = DetectorSpec(mode="proposals", max_objects=4)
    job = ExtractJob(SPEC, detector=detector, decode_workers=1)
    whole = OutputStore(str(tmp_path / "whole"))
    assert extract_video(entry, whole, job).status == "done"
    split = OutputStore(str(tmp_path / "split"))
    outcomes = {}
    # an earlier split left its part 1 (and a part of a 2-way split): never merged with this one, deleted by it
    assert extract_videos([dataclasses.replace(entry, part=(1, 3), split_id="old")], split, job)[0].status == "skipped"
    assert (
        extract_videos([dataclasses.replace(entry, part=(0, 2), split_id="older")], split, job)[0].status == "skipped"
    )
    for k in (2, 0, 1):
        [outcomes[k]] = extract_videos([dataclasses.replace(entry, part=(k, 3), split_id="s1")], split, job)
    assert [(outcomes[k].status, outcomes[k].stage) for k in (2, 0, 1)] == [
        ("skipped", "extract-part"), ("skipped", "extract-part"), ("done", "extract")]  # fmt: skip
    left = sorted(name for _, _, names in os.walk(tmp_path / "split") for name in names if name.endswith(".parquet"))
    assert outcomes[1].clips == 10 and left == ["long.mp4.parquet", "long.mp4.parquet"]  # every part file is gone
    tables = (lambda s: s.features(SPEC.extractor_id, entry.video_id),
              lambda s: s.objects(detector.detector_id, entry.video_id))  # fmt: skip
    for url in tables:
        a, b = whole.read_table(url(whole)), split.read_table(url(split))
        assert a.column("clip_index").tolist() == b.column("clip_index").tolist() == list(range(10))
        assert a.column("start_frame").tolist() == b.column("start_frame").tolist()
        assert a.metadata["fingerprint"] == b.metadata["fingerprint"] == entry.fingerprint
    fa = np.stack(whole.read_table(whole.features(SPEC.extractor_id, entry.video_id)).column("feature"))
    fb = np.stack(split.read_table(split.features(SPEC.extractor_id, entry.video_id)).column("feature"))
    np.testing.assert_allclose(fa, fb, atol=1e-4)
    # the merged video is current: every part of a later run skips it
    again = [extract_videos([dataclasses.replace(entry, part=(k, 3))], split, job)[0].status for k in range(3)]
    assert again == ["skipped"] * 3


def test_a_video_with_fewer_clips_than_parts_still_merges(tmp_path):
    import dataclasses

    from tasks.media.synthetic import render_video

    render_video(str(tmp_path / "a" / "short.mp4"), None, seed=5, duration_s=2)  # 32 frames: 2 clips
    [entry] = discover_videos(str(tmp_path / "a"))
    store, job = OutputStore(str(tmp_path / "out")), ExtractJob(SPEC, decode_workers=1)
    outcomes = [extract_videos([dataclasses.replace(entry, part=(k, 3), split_id="s")], store, job)[0]
                for k in range(3)]  # fmt: skip
    assert [o.status for o in outcomes] == ["skipped", "skipped", "done"] and outcomes[-1].clips == 2
    assert [n for _, _, names in os.walk(tmp_path / "out") for n in names if n.endswith(".parquet")] == [
        "short.mp4.parquet"]  # fmt: skip
    assert not (tmp_path / "out" / "features" / SPEC.extractor_id / "_quarantine").exists()
