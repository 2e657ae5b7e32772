"""Real-browser test harness: headless Chromium driven by Selenium through Debian's own chromedriver.

Facts checked on Debian 12, root in a container, chromium + chromium-driver 156.0.8078.114, selenium 4.51.0:

- H.264 plays. Debian's chromium has the proprietary codecs: an MP4 written by PyAV (libx264, yuv420p,
  ``movflags=+faststart``) reports ``canPlayType('video/mp4; codecs="avc1.640028"') == "probably"``,
  ``video.play()`` resolves and ``currentTime`` advances in real time.
- Seeking needs HTTP Range support. Chromium sends ``Range: bytes=0-``; from a server that answers 200 without
  ``Accept-Ranges`` (``python -m http.server`` on 3.11) the video plays but ``video.seekable`` is empty and
  ``currentTime = 1.0`` snaps back to 0. Starlette's ``FileResponse``/``StaticFiles`` answer 206 and seeking works.
  A ``data:`` URL video (fully in memory) also plays and seeks.
- Flags (``FLAGS``): ``--headless=new`` (there is no display);
  ``--no-sandbox`` (required as root: without it chromedriver reports "Chrome instance exited");
  ``--disable-dev-shm-usage`` (Docker's default 64 MB /dev/shm can crash renderers; Debian's launcher means to add
  it itself but its /dev/shm test is broken when findmnt prints two lines); and
  ``--autoplay-policy=no-user-gesture-required`` (without it an unmuted ``play()`` rejects with NotAllowedError;
  a muted one is allowed anyway). Plus a fixed window size. No ``--user-data-dir``: chromedriver then makes (and on
  quit deletes) a temporary profile and opens ``data:,``; with a profile dir of our own the first tab is instead
  chrome://new-tab-page, whose ~100 chrome:// requests keep arriving in the performance log after start-up.
- Requests: capability ``goog:loggingPrefs = {"performance": "ALL"}`` makes chromedriver record DevTools events;
  every ``Network.requestWillBeSent`` message carries ``params.request.url``. ``get_log`` drains the buffer, hence
  "since the last call". Requests that CSP blocks still show up (e.g. an external ``<img>``), so the list catches
  them. ``data:`` images show up too (``data:`` media and a ``data:,`` favicon do not): filtered out by default.
- Console errors: ``get_log("browser")`` at level SEVERE has ``console.error(...)`` (source console-api), uncaught
  exceptions (javascript), failed loads incl. 404s (network) and CSP violations (security), e.g. "Executing inline
  script violates the following Content Security Policy directive 'script-src 'sha256-...''".
- Pitfalls: a page without ``<link rel="icon" href="data:,">`` makes Chromium fetch /favicon.ico, whose 404 is a
  SEVERE entry; under a CSP that link needs ``img-src data:`` (else it is a CSP violation), or serve /favicon.ico.
  A ``data:`` page cannot load from http://127.0.0.1 (CORS / Private Network Access): serve the page from the same
  local server. Selenium Manager (which downloads drivers) is skipped because ``Service`` gets an explicit driver
  path. Start-up takes ~0.6 s on 2 cores; ``driver.quit()`` leaves no processes behind in normal runs, and
  ``chromium`` kills any survivors it recorded. A hard-killed test run can still orphan chromedriver.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
except ImportError as e:  # pragma: no cover - the dev extra installs it
    raise ImportError("selenium is missing: run `make install` (it is in the dev extra)") from e

os.environ.setdefault("SE_AVOID_STATS", "true")  # belt and braces: Selenium Manager is never run anyway

FLAGS = ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--autoplay-policy=no-user-gesture-required")


def _binaries() -> tuple[str, str]:
    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not browser or not driver:
        missing = " and ".join(n for n, p in (("chromium", browser), ("chromedriver", driver)) if not p)
        raise RuntimeError(f"{missing} not found: run `make install` (it apt-installs chromium and chromium-driver)")
    return browser, driver


@contextlib.contextmanager
def chromium(tmp_path: Path, width: int = 1280, height: int = 900) -> Iterator[webdriver.Chrome]:
    """A headless Chromium WebDriver with FLAGS and performance + browser logging; quit (and reaped) on exit.

    chromedriver.log goes to ``tmp_path``; the performance and browser logs start empty."""
    browser, driver_path = _binaries()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in (*FLAGS, f"--window-size={width},{height}"):  # no --user-data-dir: see the module's docstring
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    options.add_experimental_option("perfLoggingPrefs", {"enableNetwork": True, "enablePage": False})
    service = Service(executable_path=driver_path, log_output=str(Path(tmp_path) / "chromedriver.log"))
    driver = webdriver.Chrome(options=options, service=service)  # stops the service itself if this fails
    try:
        driver.get_log("performance"), driver.get_log("browser")  # start clean: "since the last call"
        yield driver
    finally:
        try:
            started = psutil.Process(service.process.pid).children(recursive=True)
        except psutil.Error:
            started = []
        try:
            driver.quit()
        finally:
            _gone, alive = psutil.wait_procs(started, timeout=5)
            for proc in alive:
                with contextlib.suppress(psutil.Error):
                    proc.kill()
            psutil.wait_procs(alive, timeout=5)


def requests_made(driver: webdriver.Chrome, data_urls: bool = False) -> list[str]:
    """URLs of every request the browser started since the last call (``data:`` ones only if asked)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            url = message["params"]["request"]["url"]
            if data_urls or not url.startswith("data:"):
                urls.append(url)
    return urls


def console_errors(driver: webdriver.Chrome) -> list[str]:
    """SEVERE browser-log messages since the last call: console.error, uncaught errors, failed loads, CSP."""
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def screenshot(driver: webdriver.Chrome, folder: Path, name: str) -> Path:
    """Save the viewport as ``folder/name.png`` and return its path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (name if name.endswith(".png") else f"{name}.png")
    if not driver.save_screenshot(str(path)):
        raise RuntimeError(f"screenshot {path} failed")
    return path


def wait_until(driver: webdriver.Chrome, js_condition: str, timeout: float = 10) -> Any:
    """Poll the JS expression every 50 ms until it is truthy and return its value; TimeoutError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = driver.execute_script(f"return ({js_condition});")
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"still falsy after {timeout} s: {js_condition} (last value {value!r})")
        time.sleep(0.05)


@contextlib.contextmanager
def serve(app: Any) -> Iterator[str]:
    """Run an ASGI app (FastAPI, Starlette) with uvicorn in a thread on a free 127.0.0.1 port; yield its base URL."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
