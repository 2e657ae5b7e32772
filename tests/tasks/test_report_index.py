"""The index grows with each run's reports only: latest report per video wins, parts are compacted, a run that
died before indexing is caught up from its pending file, an older output is migrated, run pages paginate, and the
parts read as one Parquet dataset locally and on S3."""

import json

import pyarrow.dataset as ds
import pytest

import tasks.jobs.report_index as report_index
from tasks.jobs.report_index import mark_pending, read_index, rebuild_index, update_index
from tasks.store.output import OutputStore


class CountingStore(OutputStore):
    """Records every report read (the thing under test is how many reports an update reads)."""

    def read_json(self, url):
        if "/reports/" in url:
            READS.append(url)
        return super().read_json(url)


READS: list[str] = []


def report(vid: str, score: float, segments: int = 1) -> dict:
    return {"video_id": vid, "max_score": score, "duration_s": 30.0, "threshold": 0.5,
            "segments": [{"start_s": 2.0 * i, "end_s": 2.0 * i + 1, "start_frame": 32 * i, "end_frame": 32 * i + 16,
                          "peak_score": score, "mean_score": score} for i in range(segments)]}  # fmt: skip


def write_reports(store: OutputStore, reports: list[dict]) -> list[str]:
    for r in reports:
        store.write_json(store.report("m", r["video_id"], ".json"), r)
    return [r["video_id"] for r in reports]


def rows(store: OutputStore) -> dict[str, tuple[float, int]]:
    videos, _ = read_index(store, "m")
    return {v["video_id"]: (v["max_score"], v["segments"]) for v in videos.to_pylist()}


@pytest.fixture
def store(tmp_path):
    READS.clear()
    return CountingStore(str(tmp_path / "out"))


def test_a_run_reads_only_its_reports_and_the_latest_report_wins(store):
    first = write_reports(store, [report(f"cam{i % 3}/v{i}.mp4", i / 100, segments=2) for i in range(40)])
    update_index(store, "m", "20261201T000000Z-scan-aaaaaa", first)
    READS.clear()
    again = write_reports(store, [report("cam0/v0.mp4", 0.99, segments=0), report("cam9/new.mp4", 0.7)])
    page = open(update_index(store, "m", "20261202T000000Z-scan-bbbbbb", again)).read()
    assert sorted(READS) == sorted(store.report("m", v, ".json") for v in again)  # O(new), not O(all)
    found = rows(store)
    assert len(found) == 41 and found["cam0/v0.mp4"] == (0.99, 0) and found["cam9/new.mp4"] == (0.7, 1)
    _, segments = read_index(store, "m")
    assert "cam0/v0.mp4" not in segments.column("video_id").to_pylist()  # its old report's segments are gone
    assert len(segments) == 2 * 39 + 1
    assert page.index("cam0/v0.mp4") < page.index("cam9/new.mp4") < page.index("cam0/v39.mp4")  # ranked
    run_page = open(store.run_page("m", "20261202T000000Z-scan-bbbbbb")).read()
    assert "2 videos reported" in run_page and "cam0/v39.mp4" not in run_page
    assert 'href="./index-20261201T000000Z-scan-aaaaaa.html"' in page
    everything = ds.dataset(store.index_dir("m") + "/videos").to_table()  # readable as a plain dataset
    assert everything.num_rows == 42


def test_nothing_new_reads_nothing_and_parts_are_compacted(store, monkeypatch):
    monkeypatch.setattr(report_index, "COMPACT_AT", 3)
    for n in range(5):
        reported = write_reports(store, [report(f"v{n}-{i}.mp4", 0.1 * n + 0.01 * i) for i in range(3)])
        update_index(store, "m", f"2026120{n + 1}T000000Z-scan-x", reported)
    parts = store.modified_times(store.index_dir("m") + "/videos")
    assert len(parts) <= 3 and len(rows(store)) == 15
    READS.clear()
    update_index(store, "m", "20261209T000000Z-scan-y", [])
    assert READS == [] and len(rows(store)) == 15


def test_a_run_that_died_is_indexed_by_the_next(store):
    update_index(store, "m", "20261201T000000Z-scan-a", write_reports(store, [report("a.mp4", 0.2)]))
    mark_pending(store, "m", "20261202T000000Z-scan-dead", ["b.mp4", "c.mp4", "never.mp4"])
    write_reports(store, [report("b.mp4", 0.6), report("c.mp4", 0.4)])  # ... and it was killed here
    update_index(store, "m", "20261203T000000Z-scan-c", [])
    assert set(rows(store)) == {"a.mp4", "b.mp4", "c.mp4"}
    assert store.video_ids(store.index_dir("m") + "/pending", ".json") == []


def test_an_output_from_before_the_index_is_migrated_and_rebuild_matches(store):
    write_reports(store, [report(f"v{i}.mp4", i / 10) for i in range(6)])
    update_index(store, "m", "20261201T000000Z-scan-a", ["v5.mp4"])
    assert len(rows(store)) == 6  # every old report, not just this run's
    before = rows(store)
    rebuild_index(store, "m")
    assert rows(store) == before and len(store.modified_times(store.index_dir("m") + "/videos")) == 1


def test_run_pages_paginate(store, monkeypatch):
    monkeypatch.setattr(report_index, "PAGE", 3)
    reported = write_reports(store, [report(f"v{i}.mp4", i / 10) for i in range(7)])
    update_index(store, "m", "20261201T000000Z-scan-a", reported)
    pages = [open(store.run_page("m", "20261201T000000Z-scan-a", n)).read() for n in (1, 2, 3)]
    assert "page 1 of 3" in pages[0] and 'href="./index-20261201T000000Z-scan-a-p2.html"' in pages[0]
    assert "v6.mp4" in pages[0] and "v0.mp4" in pages[2] and "<td>7</td>" in pages[2]  # rank carries over


def test_the_index_on_s3(s3_endpoint):
    store = OutputStore("s3://vad-test/index-test", s3_endpoint)
    write_reports(store, [report(f"v{i}.mp4", i / 10) for i in range(4)])
    update_index(store, "m", "20261201T000000Z-scan-a", ["v0.mp4", "v1.mp4", "v2.mp4", "v3.mp4"])
    write_reports(store, [report("v9.mp4", 0.95)])
    url = update_index(store, "m", "20261202T000000Z-scan-b", ["v9.mp4"])
    assert len(rows(store)) == 5 and "v9.mp4" in store.read_bytes(url).decode()
    assert json.loads(store.read_bytes(store.report("m", "v9.mp4", ".json")))["max_score"] == 0.95
