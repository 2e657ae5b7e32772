import os

import pytest

from anomaly_models.errors import UsageError
from tasks.store.archive import InvalidVideoId, discover_videos, validate_video_id


def test_discovers_videos_by_extension_with_ids_and_fingerprints(tmp_path):
    (tmp_path / "cam07" / "2026-11-28").mkdir(parents=True)
    (tmp_path / "cam07" / "2026-11-28" / "0100.mp4").write_bytes(b"x" * 10)
    (tmp_path / "cam07" / "b.MKV").write_bytes(b"y" * 3)
    (tmp_path / "notes.txt").write_text("no")
    entries = discover_videos(str(tmp_path))
    assert [e.video_id for e in entries] == ["cam07/2026-11-28/0100.mp4", "cam07/b.MKV"]
    assert entries[0].size == 10 and entries[0].fingerprint.startswith("10-")
    before = entries[0].fingerprint
    os.utime(tmp_path / "cam07" / "2026-11-28" / "0100.mp4", (1e9, 1e9))
    assert discover_videos(str(tmp_path))[0].fingerprint != before


@pytest.mark.parametrize("bad", ["/abs/a.mp4", "../a.mp4", "a/../../b.mp4", "", "a//b.mp4", "./a.mp4"])
def test_ids_that_escape_the_root_are_rejected(bad):
    with pytest.raises(InvalidVideoId):
        validate_video_id(bad)


def test_one_odd_name_does_not_hide_the_archive(tmp_path):
    (tmp_path / "cam1").mkdir()
    (tmp_path / "cam1" / "a.mp4").write_bytes(b"x")
    (tmp_path / "cam1" / "b\\c.mp4").write_bytes(b"x")
    assert [e.video_id for e in discover_videos(str(tmp_path))] == ["cam1/a.mp4"]


def test_missing_archive_is_a_clear_error(tmp_path):
    with pytest.raises(UsageError, match="archive: not found"):
        discover_videos(str(tmp_path / "nope"))
