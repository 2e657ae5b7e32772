"""Faults met one video, one file or one name at a time, reproduced with inputs the tests make (no Prefect)."""

import json
import os
import shutil
import time

import pytest

from anomaly_models.errors import UsageError
from tasks.jobs.annotations import AnnotationError, load_annotations, match_annotations
from tasks.jobs.extract import ExtractJob, extract_video
from tasks.jobs.report_index import rebuild_index
from tasks.media.backbones import ExtractorSpec
from tasks.media.decoder import IsolatedVideo, TimeLimit, VideoTimeout
from tasks.media.video import VideoSource
from tasks.store.archive import Archive
from tasks.store.names import InvalidName
from tasks.store.output import OutputStore
from tests.conftest import VIDEOS
from tests.faults.broken import overreported_mp4, png_as_mp4, truncated_copy, zero_byte

SPEC = ExtractorSpec(size=32)


@pytest.fixture(scope="module")
def overreported(tmp_path_factory):
    path = tmp_path_factory.mktemp("over") / "cam" / "phantom.mp4"
    overreported_mp4(str(path))
    return str(path)


def test_only_frames_that_decode_are_counted(overreported):
    source = VideoSource(overreported)
    assert (source.n_frames, source.reported_frames) == (40, 240)
    real = VideoSource(os.path.join(VIDEOS, "v_GGSY1Qvo990.mp4"))
    assert real.n_frames == real.reported_frames == 355


def test_a_hanging_decode_is_killed_within_its_limit(overreported):
    """Without the frame probe, decord spins for ever on a phantom frame: the decoder child is killed."""
    started = time.monotonic()
    with pytest.raises(VideoTimeout, match="timed out after"):
        with IsolatedVideo(overreported, "cam/phantom.mp4", TimeLimit(base_s=30, per_video_s=0, stall_s=3),
                           verify=False) as video:  # fmt: skip
            list(video.frames([8, 24, 100, 200]))
    assert time.monotonic() - started < 15
    with IsolatedVideo(os.path.join(VIDEOS, "v_GGSY1Qvo990.mp4")) as video:  # a fresh decoder serves the next video
        assert video.n_frames == 355


def test_overreported_video_is_stored_with_its_real_frames_only(overreported, tmp_path):
    entry = Archive(os.path.dirname(os.path.dirname(overreported))).videos()[0]
    store = OutputStore(str(tmp_path / "out"))
    outcome = extract_video(entry, store, ExtractJob(SPEC))
    assert outcome.status == "done" and outcome.clips == 2  # 40 real frames: two clips of 16, never 15
    table = store.read_table(store.features(SPEC.extractor_id, entry.video_id))
    assert table.metadata["frame_count"] == "40" and table.metadata["reported_frame_count"] == "240"
    assert table.column("end_frame").max() <= 40


def test_an_overreported_video_that_would_hang_is_quarantined_with_the_reason(overreported, tmp_path):
    from tasks.media.detectors import DetectorSpec

    entry = Archive(os.path.dirname(os.path.dirname(overreported))).videos()[0]
    store = OutputStore(str(tmp_path / "out"))
    job = ExtractJob(SPEC, detector=DetectorSpec(mode="proposals", max_objects=4), verify_frames=False,
                     limit=TimeLimit(base_s=60, per_video_s=0, stall_s=4))  # fmt: skip
    started = time.monotonic()
    outcome = extract_video(entry, store, job)
    assert time.monotonic() - started < 45
    assert outcome.status == "failed" and "timed out after" in outcome.error
    record = store.read_json(store.quarantine(SPEC.extractor_id, entry.video_id))
    assert "timed out after" in record["reason"] and record["fingerprint"] == entry.fingerprint


@pytest.mark.parametrize("make", ["png", "zero", "truncated"])
def test_broken_files_fail_with_a_reason_and_write_nothing(make, tmp_path):
    archive = tmp_path / "archive"
    archive.mkdir()
    path = str(archive / "bad.mp4")
    {"png": png_as_mp4, "zero": zero_byte,
     "truncated": lambda p: truncated_copy(os.path.join(VIDEOS, "v_GGSY1Qvo990.mp4"), p)}[make](path)  # fmt: skip
    store = OutputStore(str(tmp_path / "out"))
    outcome = extract_video(Archive(str(archive)).videos()[0], store, ExtractJob(SPEC))
    assert outcome.status == "failed" and outcome.error and "\n" not in outcome.error
    assert not os.path.exists(store.features(SPEC.extractor_id, "bad.mp4"))
    assert store.read_json(store.quarantine(SPEC.extractor_id, "bad.mp4"))["reason"] == outcome.error


def test_long_names_extract(tmp_path):
    archive = tmp_path / "archive"
    name = "cam01/" + "x" * 236 + ".mp4"  # 240 characters, a 244-byte file name with .json: temp names stay short
    (archive / "cam01").mkdir(parents=True)
    shutil.copy(os.path.join(VIDEOS, "v_GGSY1Qvo990.mp4"), archive / name)
    store = OutputStore(str(tmp_path / "out"))
    entry = Archive(str(archive)).videos()[0]
    assert entry.video_id == name
    assert extract_video(entry, store, ExtractJob(ExtractorSpec(size=32, stride=64))).status == "done"


def test_symlinks_that_leave_the_archive_are_skipped_with_a_reason(tmp_path):
    archive = tmp_path / "archive"
    (archive / "cam").mkdir(parents=True)
    shutil.copy(os.path.join(VIDEOS, "v_GGSY1Qvo990.mp4"), archive / "cam" / "inside.mp4")
    os.symlink(archive / "cam" / "inside.mp4", archive / "cam" / "alias.mp4")  # stays inside: taken
    os.symlink(os.path.join(VIDEOS, "v_ZNVhz7ctTq0.mp4"), archive / "cam" / "outside.mp4")
    entries, skipped = Archive(str(archive)).listing()
    assert [e.video_id for e in entries] == ["cam/alias.mp4", "cam/inside.mp4"]
    assert skipped == {"cam/outside.mp4": "a symlink that leads outside the archive"}


def test_index_links_are_relative_encoded_and_pages_run_only_their_own_script(tmp_path):
    from tasks.jobs.pages import SCRIPT, SCRIPT_HASH

    store = OutputStore(str(tmp_path))
    for vid in ("javascript:alert(document.domain)/a.mp4", "cam#1/b?.mp4", "cam 2/100%.mp4"):
        report = {"video_id": vid, "max_score": 0.9, "segments": [], "duration_s": 4.0}
        store.write_json(store.report("m", vid, ".json"), report)
    page = open(rebuild_index(store, "m")).read()
    assert 'href="./javascript%3Aalert%28document.domain%29/a.mp4.html"' in page
    assert 'href="./cam%231/b%3F.mp4.html"' in page and 'href="./cam%202/100%25.mp4.html"' in page
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert f"script-src '{SCRIPT_HASH}';" in page and page.count("<script") == 2  # the data block and pages.js
    assert f"<script>{SCRIPT}</script>" in page and "<script src" not in page


def test_a_model_card_cannot_point_outside_the_output(tmp_path):
    from tasks.models.card import ModelCard, TrainingRecord
    from tasks.models.repository import read_card

    store = OutputStore(str(tmp_path))
    card = ModelCard("m1", "adnet", {"in_dim": 8}, SPEC.extractor_id, SPEC, 16, 0.5, TrainingRecord(1, 1e-3, "mse", 1))
    store.write_json(store.model_file("m1", "config.json"), {**card.to_json(), "model_id": "../../../x"})
    with pytest.raises(UsageError, match="invalid model id '../../../x'"):
        read_card(store, "m1")
    with pytest.raises(InvalidName):
        store.scores("m", "../../etc/passwd")


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"v.mp4": 5}', "'v.mp4': expected a list"),
        ('{"v.mp4": [{"end": 3}]}', "needs 'start' and 'end'"),
        ('{"v.mp4": [{"start": "a", "end": 3}]}', "must be numbers"),
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected an object"),
    ],
)
def test_malformed_annotations_name_the_file_and_key(tmp_path, content, message):
    path = tmp_path / "ann.json"
    path.write_text(content)
    with pytest.raises(AnnotationError, match=message) as info:
        load_annotations(str(path))
    assert str(path) in str(info.value) and info.value.exit_code == 2


def test_invalid_segments_leave_their_video_out_and_say_why(tmp_path):
    path = tmp_path / "ann.json"
    path.write_text(json.dumps({"a.mp4": [{"start": 5, "end": 2}], "b.mp4": [{"start": -1, "end": 2}],
                                "c.mp4": [{"start": 1, "end": 900}], "d.mp4": []}))  # fmt: skip
    matching = match_annotations(load_annotations(str(path)), ["a.mp4", "b.mp4", "c.mp4", "d.mp4"])
    assert sorted(matching.matched) == ["c.mp4", "d.mp4"]  # c runs past the video's end: clipped when labelled
    assert "ends before it starts (5, 2)" in matching.invalid["a.mp4"][0] and str(path) in matching.invalid["a.mp4"][0]
    assert "negative time" in matching.invalid["b.mp4"][0]
    csv = tmp_path / "ann.csv"
    csv.write_text("video_id,start_s,end_s\nx.mp4,3,1\n")
    assert f"{csv}:2" in load_annotations(str(csv))["x.mp4"].problems[0]
    txt = tmp_path / "ann.txt"
    txt.write_text("Abuse001.mp4 Abuse 100 50 -1 -1\nAbuse002.mp4 Abuse x 2 -1 -1\n")
    with pytest.raises(AnnotationError, match=f"{txt}:2: frame numbers must be integers"):
        load_annotations(str(txt))


def test_a_video_abandoned_midway_never_leaks_frames_into_the_next_one():
    """The caller fails while reading (a model error): the next video gets its own answers, not leftovers."""
    with pytest.raises(RuntimeError, match="model failed"):
        with IsolatedVideo(os.path.join(VIDEOS, "v_GGSY1Qvo990.mp4")) as video:
            for i, _ in enumerate(video.clips(16, 16, 64)):
                if i == 2:
                    raise RuntimeError("model failed")
    with IsolatedVideo(os.path.join(VIDEOS, "v_ZNVhz7ctTq0.mp4")) as video:
        assert video.n_frames == 420 and sum(1 for _ in video.clips(16, 16, 64)) == 26
