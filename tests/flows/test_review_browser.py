"""The analyst's morning in a real headless Chromium: the alerts page of a run, an event's page playing its clip, and
a review saved through `vad review` (a real subprocess) that survives a reload and lands in the Parquet reviews.

Reports are made by the real report job from score tables written here (scores chosen so the events and their
ranking are known) over real generated H.264 videos whose ids carry camera and recording time. Screenshots of
each page are saved under the test's temp folder (alerts.png, alerts-cam2.png, event.png, reviewed.png)."""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tasks.jobs.report import ReportOptions, write_video_report
from tasks.jobs.report_index import update_index
from tasks.media.synthetic import render_video
from tasks.store.output import OutputStore
from tasks.store.tables import _with_metadata, clip_columns
from tests.browser import chromium, console_errors, requests_made, screenshot, wait_until
from tests.conftest import review_app

RUN = "20261129T020000Z-scan-abcdef"
FPS = 16
# video id -> clip scores (16-frame clips, 1 s each): events where the score passes 0.5
VIDEOS = {
    "cam1/2026-11-28/010000.mp4": [0.1, 0.2, 0.95, 0.9, 0.2, 0.1, 0.1, 0.1],  # peak 0.95 at 00:00:02
    "cam2/2026-11-28/020000.mp4": [0.1, 0.1, 0.1, 0.1, 0.8, 0.3, 0.1, 0.1],  # peak 0.80 at 00:00:04
    "cam1/2026-11-29/000500.mp4": [0.7, 0.2, 0.1, 0.1, 0.1, 0.6, 0.65, 0.1],  # 0.70, then 0.65
}
EXPECTED_ORDER = [("cam1/2026-11-28/010000.mp4", 0.95), ("cam2/2026-11-28/020000.mp4", 0.8),
                  ("cam1/2026-11-29/000500.mp4", 0.7), ("cam1/2026-11-29/000500.mp4", 0.65)]  # fmt: skip


def _scores_table(video_id: str, path: str, scores: list[float]) -> pa.Table:
    n = len(scores)
    starts = np.arange(n) * FPS
    cols = clip_columns(video_id, starts, starts + FPS, starts + FPS // 2, float(FPS))
    cols["score"] = pa.array(np.array(scores, np.float32))
    meta = {"fps": FPS, "frame_count": n * FPS, "model_id": "m", "extractor_id": "e", "threshold": 0.5,
            "source_url": path, "fingerprint": "x"}  # fmt: skip
    return _with_metadata(cols, meta)


@pytest.fixture(scope="module")
def reported(tmp_path_factory):
    root = tmp_path_factory.mktemp("review-archive")
    out = OutputStore(str(tmp_path_factory.mktemp("review-out")))
    for n, (vid, scores) in enumerate(VIDEOS.items()):
        path = str(root / vid)
        render_video(path, "Fighting", seed=n, fps=FPS, size=(160, 120), duration_s=len(scores), segment=(2, 4))
        out.write_table(out.scores("m", vid), _scores_table(vid, path, scores))
        outcome = write_video_report(out, "m", vid, options=ReportOptions(timezone="Europe/Istanbul", clip_padding_s=1))
        assert outcome.status == "done", outcome.error
    update_index(out, "m", RUN, list(VIDEOS))
    return out


@pytest.fixture(scope="module")
def review_server(reported):
    with review_app(reported.root) as base:
        yield base


def _rows(driver) -> list[dict]:
    return driver.execute_script(
        "return [...document.querySelectorAll('tr.event')].map(r => ({video: r.dataset.video, camera: "
        "r.dataset.camera, score: Number(r.dataset.score), hidden: r.hidden, review: r.dataset.review, "
        "event: r.dataset.event}))"
    )


def test_alerts_event_page_player_and_a_review_that_survives_a_reload(reported, review_server, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    base = review_server
    with chromium(tmp_path) as driver:
        driver.get(f"{base}/reports/m/alerts-{RUN}.html")
        wait_until(driver, "document.querySelectorAll('tr.event').length > 0")
        rows = _rows(driver)
        assert [(r["video"], round(r["score"], 2)) for r in rows] == EXPECTED_ORDER
        assert all(not r["hidden"] and r["review"] == "unreviewed" for r in rows)
        page = driver.page_source
        assert "2026-11-28 01:00:02 +03:00" in page  # wall-clock start of the first event, in the recording's zone
        screenshot(driver, tmp_path, "alerts")

        Select(driver.find_element(By.ID, "f-camera")).select_by_value("cam2")
        assert [(r["video"], r["hidden"]) for r in _rows(driver)] == [
            (v, v != "cam2/2026-11-28/020000.mp4") for v, _ in EXPECTED_ORDER
        ]
        assert driver.find_element(By.ID, "shown").text == "1"
        screenshot(driver, tmp_path, "alerts-cam2")
        Select(driver.find_element(By.ID, "f-camera")).select_by_value("")
        driver.find_element(By.ID, "f-score").clear()
        driver.find_element(By.ID, "f-score").send_keys("0.75")
        assert [r["hidden"] for r in _rows(driver)] == [False, False, True, True]

        first = rows[0]["event"]
        driver.find_element(By.CSS_SELECTOR, f'tr[data-event="{first}"] a').click()
        wait_until(driver, "location.pathname.endsWith('010000.mp4.html')")
        assert driver.execute_script("return location.hash") == f"#event={first}"
        wait_until(driver, "document.getElementById('player').currentTime > 0.5", timeout=20)
        player = driver.execute_script(
            "const p = document.getElementById('player'); return {src: p.currentSrc, paused: p.paused, "
            "duration: p.duration, error: p.error && p.error.code}"
        )
        assert player["src"].endswith("010000.mp4.events/1.mp4") and player["error"] is None
        assert 3.5 < player["duration"] < 4.5  # the event (2 s) with 1 s of padding on each side
        screenshot(driver, tmp_path, "event")

        # a click on the score timeline seeks: 1.5 s into the video is 0.5 s into event 1's clip (it starts at 1 s)
        driver.execute_script("const p = document.getElementById('player'); p.pause(); p.currentTime = 3.5")
        wait_until(driver, "document.getElementById('player').currentTime > 3.4")
        timeline = driver.find_element(By.ID, "timeline")
        driver.execute_script(
            "const t = arguments[0], b = t.getBoundingClientRect(), x0 = Number(t.dataset.x0), "
            "x1 = Number(t.dataset.x1), f = 1.5 / Number(t.dataset.duration);"
            "t.dispatchEvent(new MouseEvent('click', {clientX: b.left + b.width * (x0 + f * (x1 - x0)), "
            "clientY: b.top + b.height / 2, bubbles: true}))",
            timeline,
        )
        wait_until(
            driver, "document.getElementById('player').currentTime < 1.4 && !document.getElementById('player').paused"
        )

        driver.find_element(By.CSS_SELECTOR, f'tr[data-event="{first}"] button[data-verdict="false_alarm"]').click()
        wait_until(driver, "document.getElementById('status').textContent.startsWith('saved')")
        driver.refresh()
        wait_until(driver, f"document.querySelector('tr[data-event=\"{first}\"]').dataset.review === 'false_alarm'")
        verdict = driver.find_element(By.CSS_SELECTOR, f'tr[data-event="{first}"] .verdict').text
        assert verdict == "false alarm"
        screenshot(driver, tmp_path, "reviewed")

        driver.get(f"{base}/reports/m/alerts-{RUN}.html")
        wait_until(driver, "document.querySelectorAll('tr.event').length > 0")
        Select(driver.find_element(By.ID, "f-review")).select_by_value("false_alarm")
        assert [r["event"] for r in _rows(driver) if not r["hidden"]] == [first]

        requests = requests_made(driver)
        errors = console_errors(driver)
    assert requests and all(url.startswith(base + "/") for url in requests), requests
    assert not errors, errors
    for name in ("alerts", "alerts-cam2", "event", "reviewed"):
        assert os.path.getsize(tmp_path / f"{name}.png") > 1000
    saved = pq.read_table(os.path.join(reported.root, "reviews", "m")).to_pylist()
    assert [(r["event_id"], r["verdict"], r["reviewer"]) for r in saved] == [(first, "false_alarm", "ana")]
