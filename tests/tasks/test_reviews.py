"""Reviews: append-only Parquet parts, concurrent reviewers through the real app, compaction, reviews as labels."""

import json
import threading
import time
import urllib.error
import urllib.request

import pyarrow.parquet as pq
import pytest

from anomaly_models.errors import UsageError
from tasks.jobs import reviews as reviews_module
from tasks.jobs.annotations import load_annotations
from tasks.jobs.reviews import compact, latest_reviews, new_review, read_reviews, review_annotations, save_review
from tasks.store.output import OutputStore
from tests.conftest import review_app

EVENT = {"event_id": "e1", "video_id": "cam1/a.mp4", "start_s": 2.0, "end_s": 4.0, "camera": "cam1"}


def test_the_latest_review_of_an_event_wins_and_every_review_is_kept(tmp_path):
    store = OutputStore(str(tmp_path))
    save_review(store, "m", new_review({**EVENT, "verdict": "unsure", "note": "dark"}, "ana"))
    time.sleep(0.002)
    save_review(store, "m", new_review({**EVENT, "verdict": "false_alarm", "note": "a shadow"}, "bo"))
    assert len(read_reviews(store, "m")) == 2
    latest = latest_reviews(store, "m")["e1"]
    assert (latest["verdict"], latest["note"], latest["reviewer"]) == ("false_alarm", "a shadow", "bo")


@pytest.mark.parametrize(
    "bad, field",
    [({"verdict": "maybe"}, "verdict"), ({"verdict": "confirmed", "start_s": "x"}, "start_s"),
     ({"verdict": "confirmed", "event_id": ""}, "event_id"), ({"verdict": "confirmed", "note": "n" * 3000}, "note"),
     ({"verdict": "confirmed", "end_s": 1.0}, "end_s")],
)  # fmt: skip
def test_a_bad_review_names_its_field(bad, field):
    with pytest.raises(UsageError, match=field):
        new_review({**EVENT, **bad}, "ana")


def test_compaction_keeps_every_review_once(tmp_path, monkeypatch):
    monkeypatch.setattr(reviews_module, "COMPACT_AT", 3)
    store = OutputStore(str(tmp_path))
    for n in range(5):
        save_review(store, "m", new_review({**EVENT, "event_id": f"e{n}", "verdict": "confirmed"}, "ana"))
    before = sorted(read_reviews(store, "m").column("review_id").to_pylist())
    assert compact(store, "m") is not None
    assert len(list((tmp_path / "reviews" / "m").iterdir())) == 1
    save_review(store, "m", new_review({**EVENT, "event_id": "e9", "verdict": "unsure"}, "bo"))
    after = read_reviews(store, "m").column("review_id").to_pylist()
    assert sorted(after)[: len(before)] == before or set(before) < set(after)
    assert len(after) == 6 and compact(store, "m") is None  # 2 parts: nothing to do


def test_reviews_become_labels_by_the_documented_rule(tmp_path):
    store = OutputStore(str(tmp_path))
    rows = [("v1.mp4", "a", 2.0, 4.0, "confirmed"), ("v1.mp4", "b", 8.0, 9.0, "false_alarm"),
            ("v2.mp4", "c", 1.0, 2.0, "false_alarm"), ("v3.mp4", "d", 1.0, 2.0, "unsure"),
            ("v3.mp4", "e", 5.0, 6.0, "confirmed")]  # fmt: skip
    for video, event, start, end, verdict in rows:
        review = {"event_id": event, "video_id": video, "start_s": start, "end_s": end, "verdict": verdict}
        save_review(store, "m", new_review(review, "ana"))
    labels = review_annotations(store, "m")
    assert sorted(labels) == ["v1.mp4", "v2.mp4"]  # v3 has an unsure event: not labelled
    assert labels["v1.mp4"].frame_ranges(10.0) == [(20, 40)] and labels["v2.mp4"].segments == []
    assert labels["v2.mp4"].label_class == "Normal"
    assert load_annotations(str(tmp_path / "reviews" / "m"))["v1.mp4"].segments == [(2.0, 4.0)]
    with pytest.raises(UsageError, match="no reviewed video"):
        review_annotations(store, "other")


def _post(url: str, body: dict, headers: dict | None = None) -> tuple[int, str]:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_two_reviewers_saving_at_once_both_land(tmp_path):
    with review_app(tmp_path) as base:
        results: list[tuple[int, str]] = []
        barrier = threading.Barrier(2)

        def review(verdict: str, note: str) -> None:
            barrier.wait()
            results.append(_post(f"{base}/api/reviews/m", {**EVENT, "verdict": verdict, "note": note}))

        threads = [threading.Thread(target=review, args=a) for a in (("confirmed", "a fight"), ("unsure", "dark"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert [code for code, _ in results] == [200, 200], results
        table = pq.read_table(tmp_path / "reviews" / "m").to_pylist()
        assert sorted(r["note"] for r in table) == ["a fight", "dark"] and {r["reviewer"] for r in table} == {"ana"}
        assert _post(f"{base}/api/reviews/m", {**EVENT, "verdict": "nope"})[0] == 400
        code, text = _post(f"{base}/api/reviews/m", {**EVENT, "verdict": "confirmed", "start_s": -1})
        assert code == 400 and "start_s" in text


def test_the_token_guards_pages_and_saves(tmp_path):
    with review_app(tmp_path, "--token", "s3cret") as base:
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(base + "/", timeout=10)
        assert refused.value.code == 401
        assert _post(f"{base}/api/reviews/m", {**EVENT, "verdict": "confirmed"})[0] == 401
        assert (
            _post(f"{base}/api/reviews/m", {**EVENT, "verdict": "confirmed"}, {"Authorization": "Bearer s3cret"})[0]
            == 200
        )
        wrong_host = urllib.request.Request(
            base + "/", headers={"Host": "evil.example:80", "Authorization": "Bearer s3cret"}
        )
        with pytest.raises(urllib.error.HTTPError) as rebinding:
            urllib.request.urlopen(wrong_host, timeout=10)
        assert rebinding.value.code == 400


def test_the_app_serves_ranges_refuses_unsatisfiable_ones_and_upgrades_old_pages(tmp_path):
    from fastapi.testclient import TestClient

    from flows.review_app import create_app
    from tasks.jobs.pages import SCRIPT_HASH

    store = OutputStore(str(tmp_path))
    store.write_bytes(store.event_media("m", "cam/a.mp4", 1, ".mp4"), bytes(range(10)))
    old_page = (
        '<html><head><meta http-equiv="Content-Security-Policy" content="script-src \'sha256-old\'">'
        '</head><body><tr class="event" data-event="e1"></tr>'
        '<script id="vad-data" type="application/json">{}</script><script>old()</script></body></html>'
    )
    store.write_bytes(store.report("m", "cam/a.mp4", ".html"), old_page.encode())
    save_review(store, "m", new_review({**EVENT, "verdict": "confirmed"}, "ana"))
    client = TestClient(create_app(store, "ana"))
    clip = "/reports/m/cam/a.mp4.events/1.mp4"
    assert client.get(clip).content == bytes(range(10))
    part = client.get(clip, headers={"Range": "bytes=2-4"})
    assert (
        part.status_code == 206 and part.content == bytes([2, 3, 4]) and part.headers["content-range"] == "bytes 2-4/10"
    )
    assert client.get(clip, headers={"Range": "bytes=-3"}).content == bytes([7, 8, 9])
    refused = client.get(clip, headers={"Range": "bytes=20-"})
    assert refused.status_code == 416 and refused.headers["content-range"] == "bytes */10"
    page = client.get("/reports/m/cam/a.mp4.html")
    assert "old()" not in page.text and "sha256-old" not in page.text and SCRIPT_HASH in page.text
    assert '"verdict": "confirmed"' in page.text and '"api": "/api/reviews/m"' in page.text
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    for bad in ("/reports/m/../../reviews/m", "/reports/m/%2e%2e/x", "/reports/..%2fruns/x.json"):
        assert client.get(bad).status_code == 404
    guarded = TestClient(create_app(store, "ana", token="é-token"), follow_redirects=False)
    assert guarded.get("/?token=%C3%A9").status_code == 401
    redirect = guarded.get("//evil.example/?token=%C3%A9-token")
    assert redirect.status_code == 303 and not redirect.headers["location"].startswith("//")
