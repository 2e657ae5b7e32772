from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from anomaly_models.errors import UsageError
from tasks.media.recording_time import (
    Recording,
    TimeTemplate,
    container_creation_time,
    parse_creation_time,
    recording_of,
)

NY = ZoneInfo("America/New_York")


def _local(tz: str, *fields: int) -> datetime:
    return datetime(*fields, tzinfo=ZoneInfo(tz))


@pytest.mark.parametrize(
    "pattern, video_id, camera, start",
    [
        ("{camera}/{date:%Y-%m-%d}/{time:%H%M%S}.mp4", "cam07/2026-11-28/010000.mp4", "cam07", (2026, 11, 28, 1)),
        ("{camera}_{datetime:%Y%m%d_%H%M%S}.mp4", "lobby_20261128_235959.mp4", "lobby", (2026, 11, 28, 23, 59, 59)),
        (
            "{camera}_{datetime:%Y%m%d_%H%M%S}.mp4",
            "front_door_20261128_235959.mp4",
            "front_door",
            (2026, 11, 28, 23, 59, 59),
        ),
        (
            "{**}/{camera}/{date:%Y/%m/%d}/{time:%H-%M}.{ext}",
            "site-a/gate2/2026/11/28/23-15.mkv",
            "gate2",
            (2026, 11, 28, 23, 15),
        ),
        (
            "{**}/{camera}/{date:%Y/%m/%d}/{time:%H-%M}.{ext}",
            "gate2/2026/11/28/23-15.mkv",
            "gate2",
            (2026, 11, 28, 23, 15),
        ),
        (
            "{**}/{camera}/{date:%Y/%m/%d}/{time:%H-%M}.{ext}",
            "a/b/c/gate2/2026/11/28/23-15.avi",
            "gate2",
            (2026, 11, 28, 23, 15),
        ),
        ("{camera}/{date:%y%j}/{*}.mp4", "cam1/26332/part 3.mp4", "cam1", (2026, 11, 28)),  # date only: midnight
        (
            "{camera}/{any}_{datetime:%Y-%m-%dT%H.%M.%S.%f}.mp4",
            "c/x_2026-11-28T01.02.03.25.mp4",
            "c",
            (2026, 11, 28, 1, 2, 3, 250000),
        ),
        ("rec/{date:%Y%m%d}/{camera}.mp4", "rec/20261128/cam 9.mp4", "cam 9", (2026, 11, 28)),
        ("{{x}}/{camera}/{date:%d.%m.%Y}%.mp4", "{x}/cam/28.11.2026%.mp4", "cam", (2026, 11, 28)),
    ],
)
def test_template_reads_camera_and_start(pattern, video_id, camera, start):
    assert TimeTemplate(pattern, "Europe/Istanbul").match(video_id) == (camera, _local("Europe/Istanbul", *start))


@pytest.mark.parametrize(
    "video_id",
    [
        "cam07/2026-13-28/010000.mp4",  # month 13
        "cam07/2026-02-30/010000.mp4",  # no such day
        "cam07/2026-11-28/250000.mp4",  # hour 25
        "cam07/2026-11-28/01000.mp4",  # wrong width
        "cam07/2026-11-28/010000.mkv",
        "x/cam07/2026-11-28/010000.mp4",  # the whole id must match: {camera} is one component
        "cam07/2026-11-28/010000.mp4.bak",
    ],
)
def test_ids_that_do_not_match_fall_back(video_id):
    template = TimeTemplate("{camera}/{date:%Y-%m-%d}/{time:%H%M%S}.mp4")
    assert template.match(video_id) is None
    created = datetime(2026, 11, 28, 1, tzinfo=timezone.utc)
    first = video_id.split("/")[0]
    assert recording_of(video_id, template, lambda: created) == Recording(first, created, "container")
    assert recording_of(video_id, template) == Recording(first, None, "none")
    assert recording_of(video_id, template, lambda: None) == Recording(first, None, "none")


def test_fallbacks_without_template_or_folder():
    assert recording_of("Fighting/test003.mp4", None) == Recording("Fighting", None, "none")
    assert recording_of("test003.mp4", None) == Recording("", None, "none")
    naive = datetime(2026, 11, 28, 1)
    assert recording_of("a.mp4", None, lambda: naive) == Recording("", naive.replace(tzinfo=timezone.utc), "container")
    # a container time is shown in the template's zone, a naive one read in it
    template = TimeTemplate("{camera}/{date:%Y%m%d}.mp4", "Europe/Istanbul")
    got = recording_of("Fighting/test003.mp4", template, lambda: datetime(2026, 11, 28, 1, tzinfo=timezone.utc))
    assert got.source == "container" and got.start is not None and got.start.isoformat() == "2026-11-28T04:00:00+03:00"
    got = recording_of("Fighting/test003.mp4", template, lambda: naive)
    assert got.start is not None and got.start.isoformat() == "2026-11-28T01:00:00+03:00"


def test_template_start_wins_and_creation_time_is_called_lazily():
    calls = []

    def created():
        calls.append(1)
        return datetime(2000, 1, 1, tzinfo=timezone.utc)

    template = TimeTemplate("{camera}/{date:%Y-%m-%d}/{time:%H%M%S}.mp4")
    got = recording_of("cam07/2026-11-28/010000.mp4", template, created)
    assert got == Recording("cam07", datetime(2026, 11, 28, 1, tzinfo=ZoneInfo("UTC")), "template") and not calls
    # a template with a time but no date, or no time field, gives the camera only: the start is the container's
    for pattern, video_id in [("{camera}/{time:%H%M%S}.mp4", "cam07/010000.mp4"), ("{camera}/{*}.mp4", "cam07/x.mp4")]:
        template = TimeTemplate(pattern)
        assert template.match(video_id) == ("cam07", None)
        assert recording_of(video_id, template, created) == Recording("cam07", created(), "container")
    # a match without {camera} keeps the first-folder camera
    assert recording_of("Fighting/20261128.mp4", TimeTemplate("{**}/{date:%Y%m%d}.mp4")).camera == "Fighting"


def test_alternatives_first_match_wins():
    template = TimeTemplate("{camera}/{date:%Y-%m-%d}/{time:%H%M%S}.mp4 | {camera}_{datetime:%Y%m%d_%H%M%S}.mp4")
    assert template.patterns == ["{camera}/{date:%Y-%m-%d}/{time:%H%M%S}.mp4", "{camera}_{datetime:%Y%m%d_%H%M%S}.mp4"]
    assert template.match("lobby_20261128_235959.mp4") == (
        "lobby",
        datetime(2026, 11, 28, 23, 59, 59, tzinfo=ZoneInfo("UTC")),
    )
    assert template.match("cam07/2026-11-28/010000.mp4") == ("cam07", datetime(2026, 11, 28, 1, tzinfo=ZoneInfo("UTC")))
    # a later alternative still applies when an earlier one has the shape but impossible values
    both = TimeTemplate("{camera}/{date:%Y%m%d}.mp4|{camera}/{date:%Y%d%m}.mp4")
    assert both.match("c/20262811.mp4") == ("c", datetime(2026, 11, 28, tzinfo=ZoneInfo("UTC")))


def test_timezone_is_kept_and_at_gives_the_instant():
    rec = recording_of(
        "cam07/2026-11-28/010000.mp4", TimeTemplate("{camera}/{date:%Y-%m-%d}/{time:%H%M%S}.mp4", "Europe/Istanbul")
    )
    assert rec.source == "template" and rec.start is not None
    assert rec.start.isoformat() == "2026-11-28T01:00:00+03:00"
    assert rec.at(90.5) == "2026-11-28T01:01:30.500+03:00"
    assert datetime.fromisoformat(rec.at(90.5) or "") == datetime(2026, 11, 27, 22, 1, 30, 500000, tzinfo=timezone.utc)
    assert rec.at(0) == "2026-11-28T01:00:00.000+03:00"
    assert rec.at(90.5, timespec="seconds") == "2026-11-28T01:01:31+03:00"  # rounded, not truncated
    assert rec.at(90.4996) == "2026-11-28T01:01:30.500+03:00"
    assert rec.at(23 * 3600) == "2026-11-29T00:00:00.000+03:00"
    utc = recording_of("cam07/2026-11-28/010000.mp4", TimeTemplate("{camera}/{date:%Y-%m-%d}/{time:%H%M%S}.mp4"))
    assert utc.at(1.25) == "2026-11-28T01:00:01.250+00:00"
    assert Recording("cam", None, "none").at(5.0) is None
    with pytest.raises(ValueError, match="timespec"):
        rec.at(1.0, timespec="minutes")


def test_new_york_offsets_around_dst_changes():
    template = TimeTemplate("{camera}_{datetime:%Y%m%d_%H%M%S}.mp4", "America/New_York")

    def start(video_id: str) -> str:
        got = template.match(video_id)
        assert got is not None and got[1] is not None
        return got[1].isoformat()

    assert start("c_20260307_120000.mp4") == "2026-03-07T12:00:00-05:00"
    assert start("c_20260308_013000.mp4") == "2026-03-08T01:30:00-05:00"
    assert start("c_20260308_030000.mp4") == "2026-03-08T03:00:00-04:00"
    assert start("c_20260308_023000.mp4") == "2026-03-08T03:30:00-04:00"  # skipped hour: the offset before the change
    assert start("c_20261101_003000.mp4") == "2026-11-01T00:30:00-04:00"
    assert start("c_20261101_013000.mp4") == "2026-11-01T01:30:00-04:00"  # repeated hour: its first occurrence
    assert start("c_20261101_023000.mp4") == "2026-11-01T02:30:00-05:00"
    assert start("c_20261128_010000.mp4") == "2026-11-28T01:00:00-05:00"
    # offsets into a recording count elapsed seconds across the change
    spring = recording_of("c_20260308_013000.mp4", template)
    assert spring.at(1800) == "2026-03-08T03:00:00.000-04:00" and spring.at(3600) == "2026-03-08T03:30:00.000-04:00"
    fall = recording_of("c_20261101_013000.mp4", template)
    assert fall.at(3600) == "2026-11-01T01:30:00.000-05:00" and fall.at(7200) == "2026-11-01T02:30:00.000-05:00"
    assert fall.start is not None and fall.start.astimezone(timezone.utc) == datetime(
        2026, 11, 1, 5, 30, tzinfo=timezone.utc
    )


@pytest.mark.parametrize(
    "pattern, problem",
    [
        ("", "expected a pattern"),
        ("{camera}/{date:%Y-%m-%d", "unclosed"),
        ("{camera}}/x.mp4", "unmatched"),
        ("{camera}/{foo}.mp4", "unknown field"),
        ("{camera}/{date}.mp4", "needs a format"),
        ("{camera}/{date:%Y-%b-%d}.mp4", "%b is not supported"),
        ("{camera}/{date:%Y-%m}.mp4", "full date"),
        ("{camera}/{date:%Y-%m-%d %H}.mp4", "%H does not belong"),
        ("{camera}/{time:%M%S}.mp4", "must contain %H"),
        ("{camera}/{time:%H%}.mp4", "lone '%'"),
        ("{camera}/{datetime:%Y%m%d}.mp4", "must contain %H"),
        ("{camera}/{datetime:%Y%m%d%H}/{time:%H}.mp4", "cannot be combined"),
        ("{camera}/{camera}.mp4", "appears twice"),
        ("{camera}/{date:%Y%m%d}/{date:%Y%m%d}.mp4", "appears twice"),
        ("{camera}/{date:%Y%m%d%Y}.mp4", "%Y appears twice"),
        ("{camera}/{date:%Y%j%m}.mp4", "mixes %j"),
        ("{*}/{ext}", "has none of"),
        ("{camera}.mp4 | ", "empty alternative"),
    ],
)
def test_bad_template_names_the_setting(pattern, problem):
    with pytest.raises(UsageError, match=r"reports\.time_template") as err:
        TimeTemplate(pattern)
    assert problem in str(err.value)


@pytest.mark.parametrize("name", ["Mars/Olympus", "utc+3", "", "America", "../etc/passwd", "/etc/localtime"])
def test_bad_timezone_names_the_setting(name):
    with pytest.raises(UsageError, match=r"reports\.timezone"):
        TimeTemplate("{camera}/x.mp4", name)
    with pytest.raises(UsageError, match=r"reports\.timezone"):
        container_creation_time("missing.mp4", name)


def test_parse_creation_time_forms():
    utc = timezone.utc
    assert parse_creation_time("2026-11-28T01:00:00.000000Z") == datetime(2026, 11, 28, 1, tzinfo=utc)
    assert parse_creation_time("2026-11-28 01:00:00") == datetime(2026, 11, 28, 1, tzinfo=utc)
    got = parse_creation_time("2026-11-28T01:00:00.5+03:00", "Europe/Istanbul")
    assert got is not None and got.isoformat() == "2026-11-28T01:00:00.500000+03:00"
    got = parse_creation_time("2026-11-28T01:00:00", "America/New_York")
    assert got is not None and got.isoformat() == "2026-11-28T01:00:00-05:00"
    for bad in (None, "", "yesterday", "2026-13-01T00:00:00Z", "1970-01-01T00:00:00.000000Z", "1904-01-01 00:00:00"):
        assert parse_creation_time(bad) is None


def _write_mp4(path, creation_time: str | None) -> None:
    import av
    import numpy as np

    with av.open(str(path), "w") as container:
        if creation_time is not None:
            container.metadata["creation_time"] = creation_time
        stream = container.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.options = {"preset": "ultrafast", "threads": "1"}
        for i in range(8):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 30, dtype=np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def test_container_creation_time_of_real_files(tmp_path):
    import av

    tagged, plain, garbage = tmp_path / "tagged.mp4", tmp_path / "plain.mp4", tmp_path / "garbage.mp4"
    _write_mp4(tagged, "2026-11-28T01:00:00.000000Z")
    _write_mp4(plain, None)
    garbage.write_bytes(b"\x00\x00\x00\x18ftypisom" + bytes(range(256)) * 8)
    with av.open(str(tagged)) as container:  # FFmpeg really stored the tag
        assert container.metadata["creation_time"] == "2026-11-28T01:00:00.000000Z"
        assert container.streams.video[0].frames == 8
    assert container_creation_time(str(tagged)) == datetime(2026, 11, 28, 1, tzinfo=timezone.utc)
    assert container_creation_time(str(tagged), "Europe/Istanbul").isoformat() == "2026-11-28T04:00:00+03:00"
    assert container_creation_time(str(plain)) is None
    assert container_creation_time(str(garbage)) is None
    assert container_creation_time(str(tmp_path / "missing.mp4")) is None
    assert container_creation_time(str(tmp_path)) is None  # a folder

    template = TimeTemplate("{camera}/{date:%Y-%m-%d}/{time:%H%M%S}.mp4", "Europe/Istanbul")
    rec = recording_of(
        "Fighting/test003.mp4", template, lambda: container_creation_time(str(tagged), "Europe/Istanbul")
    )
    assert rec == Recording("Fighting", datetime(2026, 11, 28, 4, tzinfo=ZoneInfo("Europe/Istanbul")), "container")
    assert rec.at(2.0) == "2026-11-28T04:00:02.000+03:00"
    assert recording_of("cam/test.mp4", template, lambda: container_creation_time(str(plain))) == Recording(
        "cam", None, "none"
    )
    assert recording_of("test.mp4", None, lambda: container_creation_time(str(garbage))) == Recording("", None, "none")
