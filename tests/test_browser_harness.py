"""The real-browser harness works here: headless Chromium plays and seeks an H.264 MP4 served over HTTP, and the
harness sees every request and every console error (CSP violations included)."""

import base64
import hashlib

import av
import numpy as np
from starlette.applications import Starlette
from starlette.responses import FileResponse, HTMLResponse
from starlette.routing import Route

from tests.browser import chromium, console_errors, requests_made, screenshot, serve, wait_until

SCRIPT = "document.title = 'ready';"
HASH = base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
CSP = f"default-src 'self'; script-src 'sha256-{HASH}'; img-src 'self' data:"  # data: for the favicon link
PAGE = '<!doctype html><link rel="icon" href="data:,"><video src="clip.mp4" muted></video><script>{}</script>'
IMG = '<img src="http://x.invalid/a.png">'


def _mp4(path, frames=32):
    """64x48 H.264 (yuv420p, moov first), 16 fps, 2 s: a white bar growing left to right."""
    with av.open(str(path), "w", options={"movflags": "+faststart"}) as out:
        stream = out.add_stream("libx264", rate=16)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(frames):
            image = np.zeros((48, 64, 3), np.uint8)
            image[:, : 2 * i] = 255
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        out.mux(stream.encode())
    return path


def test_chromium_plays_h264_and_reports_requests_and_errors(tmp_path):
    clip = _mp4(tmp_path / "clip.mp4")
    csp = {"Content-Security-Policy": CSP}
    app = Starlette(
        routes=[
            Route("/", lambda r: HTMLResponse(PAGE.format(SCRIPT), headers=csp)),
            Route("/bad", lambda r: HTMLResponse(PAGE.format("window.x = 1;") + IMG, headers=csp)),
            Route("/clip.mp4", lambda r: FileResponse(clip)),  # answers Range requests: needed for seeking
        ]
    )
    with serve(app) as base, chromium(tmp_path) as driver:
        driver.get(base + "/")
        wait_until(driver, "document.title === 'ready'")  # the inline script ran: its CSP hash matched
        assert driver.execute_script("return document.querySelector('video').play().then(() => true)")
        wait_until(driver, "document.querySelector('video').currentTime > 0.3")
        driver.execute_script("const v = document.querySelector('video'); v.pause(); v.currentTime = 1.0;")
        wait_until(driver, "(v => !v.seeking && Math.abs(v.currentTime - 1.0) < 0.01)(document.querySelector('video'))")
        assert screenshot(driver, tmp_path / "shots", "harness").stat().st_size > 0
        assert console_errors(driver) == []
        urls = requests_made(driver)
        assert f"{base}/clip.mp4" in urls and all(u.startswith(base + "/") for u in urls), urls

        # and the harness does notice a CSP violation and a request leaving the origin
        driver.get(base + "/bad")
        wait_until(driver, "document.readyState === 'complete'")
        assert any("Content Security Policy" in e for e in console_errors(driver))
        assert "http://x.invalid/a.png" in requests_made(driver)
