"""Per-video segment reports: JSON for machines, an HTML page for analysts, and per event an H.264 clip with a
poster frame next to them.

```
reports/<model_id>/<video_id>.json  .html            the report (REPORT_FORMAT) and its page
reports/<model_id>/<video_id>.events/<n>.mp4  .jpg   event n's clip (padded) and poster (its peak frame)
```
Every event carries an id (stable for the same video and frames: reviews refer to it), the camera and its
wall-clock start and end (ISO 8601 with the recording's timezone) when the video id or the container tells
(`ReportOptions.time_template`, tasks/media/recording_time.py). The page plays the clips (a click on an event or on
the score timeline); plots are embedded as PNG data URIs, clips and posters are files beside the page, and nothing
else loads (`pages.CSP`). Every name from the archive is HTML-escaped. Clips and posters are cut in a child
process under a time limit, so an odd file costs its clips (the error is in the report), never the report.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import os
import tempfile
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from datetime import datetime
from urllib.parse import quote

import numpy as np
import pyarrow as pa

from anomaly_models.errors import VideoError
from anomaly_models.metrics import score_segments

from ..media.decoder import IsolatedVideo, TimeLimit
from ..media.event_clips import ClipRequest, export_clips
from ..media.recording_time import Recording, TimeTemplate, container_creation_time, recording_of
from ..store.manifest import DONE, FAILED, Timer, VideoOutcome, failure_reason
from ..store.output import OutputStore
from ..store.tables import ClipTable
from .pages import CSP, STYLE, page

__all__ = ["CSP", "STYLE", "ReportOptions", "build_report", "write_video_report"]

REPORT_FORMAT = 2  # 2: event ids, camera and wall-clock times, event clips
DEFAULT_TIME_TEMPLATE = "{camera}/{date:%Y-%m-%d}/{time:%H%M%S}.{ext}"

SEGMENT_SCHEMA = pa.schema(
    [
        ("video_id", pa.string()),
        ("start_s", pa.float64()),
        ("end_s", pa.float64()),
        ("start_frame", pa.int64()),
        ("end_frame", pa.int64()),
        ("peak_score", pa.float64()),
        ("mean_score", pa.float64()),
    ]
)


@dataclass(frozen=True)
class ReportOptions:
    """How reports place events in time and cut their clips (settings `reports.*`; picklable, travels to tasks)."""

    time_template: str | None = DEFAULT_TIME_TEMPLATE
    timezone: str = "UTC"
    clips: bool = True
    clip_padding_s: float = 2.0
    clip_max_width: int = 640

    def template(self) -> TimeTemplate | None:
        return TimeTemplate(self.time_template, self.timezone) if self.time_template else None

    @property
    def key(self) -> str:
        """Recorded in each report: a report made with other options is made again by the next scan."""
        return json.dumps(asdict(self), sort_keys=True)


def hms(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def event_id(video_id: str, start_frame: int, end_frame: int) -> str:
    """The same video and frames give the same id (a re-scan that finds the same event keeps its reviews)."""
    return hashlib.sha1(f"{video_id}\0{start_frame}\0{end_frame}".encode()).hexdigest()[:16]


def build_report(scores: ClipTable, threshold: float | None = None, recording: Recording | None = None) -> dict:
    meta = scores.metadata
    threshold = float(meta["threshold"]) if threshold is None else threshold
    values = scores.column("score").astype(float)
    starts, ends = scores.column("start_frame"), scores.column("end_frame")
    fps = float(meta["fps"])
    video_id = scores.table.column("video_id")[0].as_py() if len(values) else meta.get("video_id", "")
    recording = recording or Recording("", None, "none")
    segments = []
    for a, b in score_segments(values, threshold):
        peak = a + int(np.argmax(values[a:b]))
        start_frame, end_frame, peak_frame = int(starts[a]), int(ends[b - 1]), int(scores.column("center_frame")[peak])
        segments.append(
            {
                "event_id": event_id(video_id, start_frame, end_frame),
                "start_s": float(start_frame / fps),
                "end_s": float(end_frame / fps),
                "start_frame": start_frame,
                "end_frame": end_frame,
                "peak_score": float(values[peak]),
                "mean_score": float(values[a:b].mean()),
                "peak_frame": peak_frame,
                "start_time": recording.at(start_frame / fps),
                "end_time": recording.at(end_frame / fps),
                "peak_time": recording.at(peak_frame / fps),
            }
        )
    return {
        "format": REPORT_FORMAT,
        "video_id": video_id,
        "camera": recording.camera,
        "recorded_at": recording.at(0.0),
        "time_source": recording.source,
        "duration_s": int(meta["frame_count"]) / fps,
        "fps": fps,
        "model_id": meta["model_id"],
        "extractor_id": meta["extractor_id"],
        "threshold": threshold,
        "segments": segments,
        "clip_scores": [round(float(v), 5) for v in values],
        "clip_start_s": [round(float(s / fps), 3) for s in starts],
        "max_score": float(values.max(initial=0)),
        "source_url": meta.get("source_url", ""),
    }


def _png(fig, tight: bool = True) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight" if tight else None)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


TIMELINE_AXES = (0.07, 0.2, 0.9, 0.72)  # left, bottom, width, height as fractions of the image


def timeline_png(report: dict) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(10, 2.6))
    ax = fig.add_axes(TIMELINE_AXES)  # fixed, so a click on the image maps to a time (pages.js)
    starts = np.array(report["clip_start_s"])
    scores = np.array(report["clip_scores"])
    if len(scores):
        ax.step(np.append(starts, report["duration_s"]), np.append(scores, scores[-1]), where="post", color="#1f4e79")
    for seg in report["segments"]:
        ax.axvspan(seg["start_s"], seg["end_s"], color="#d62728", alpha=0.25)
    ax.axhline(report["threshold"], color="#d62728", linestyle="--", linewidth=1, label="threshold")
    ax.set_xlim(0, max(report["duration_s"], 1e-3))
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("anomaly score")
    ax.legend(loc="upper right")
    return _png(fig, tight=False)


THUMBNAIL_LIMIT = TimeLimit(base_s=60.0, per_video_s=0.0, stall_s=30.0)


def thumbnails_png(
    video_url: str, frames: list[int], store: OutputStore | None = None, width: int = 240
) -> list[str | None]:
    """The frames as small PNGs, reading the video once in the decoder child under THUMBNAIL_LIMIT; Nones for
    frames that cannot be read now (reports never fail, nor hang, on thumbnails). `store` lends its storage options
    for remote source videos."""
    if not frames or not video_url:
        return [None] * len(frames)
    try:
        with (store or OutputStore(".")).local_copy(video_url) as path:
            return _thumbnails(path, video_url, frames, width)
    except OSError:
        return [None] * len(frames)


def _thumbnails(path: str, name: str, frames: list[int], width: int = 240) -> list[str | None]:
    """`thumbnails_png` of a local file."""
    from PIL import Image

    out: list[str | None] = []
    try:
        with IsolatedVideo(path, name, THUMBNAIL_LIMIT) as video:
            for frame in video.frames_or_none(frames):  # one frame in memory at a time
                if frame is None:
                    out.append(None)
                    continue
                img = Image.fromarray(frame)
                img.thumbnail((width, width))
                buf = io.BytesIO()
                img.save(buf, format="PNG")
                out.append(base64.b64encode(buf.getvalue()).decode())
    except (OSError, VideoError):
        return out + [None] * (len(frames) - len(out))
    return out


def report_link(video_id: str, suffix: str = ".html") -> str:
    """A link from a page in reports/<model_id>/ to a file of a video's report: always relative (\"./\" first, so
    no id reads as a scheme such as `javascript:`), every character that means something in a URL percent-encoded
    (#, ?, %, :, spaces)."""
    return "./" + quote(video_id, safe="/") + suffix


def media_link(media: str | None, video_id: str | None = None) -> str:
    """A link to an event's clip or poster (stored relative to reports/<model_id>/); from a video's own page
    (`video_id` given) relative to that page's folder."""
    if not media:
        return ""
    if video_id and "/" in video_id:
        media = media[len(video_id.rsplit("/", 1)[0]) + 1 :]
    return "./" + quote(media, safe="/")


def event_attributes(report: dict, seg: dict, href: str = "") -> str:
    """The data-* attributes pages.js reads from an event's row."""
    e = html.escape
    clip_start = seg["start_s"] if seg.get("clip_start_s") is None else seg["clip_start_s"]
    clip_end = seg["end_s"] if seg.get("clip_end_s") is None else seg["clip_end_s"]
    values = {
        "event": seg["event_id"], "video": report["video_id"], "camera": report.get("camera", ""),
        "date": (seg.get("start_time") or "")[:10], "score": f"{seg['peak_score']:.4f}",
        "start": f"{seg['start_s']:.3f}", "end": f"{seg['end_s']:.3f}", "href": href,
        "clip": media_link(seg.get("clip"), None if href else report["video_id"]),
        "poster": media_link(seg.get("poster"), None if href else report["video_id"]),
        "clip-start": f"{clip_start:.3f}", "clip-end": f"{clip_end:.3f}",
    }  # fmt: skip
    return " ".join(f'data-{k}="{e(str(v))}"' for k, v in values.items() if v != "")


def wall_clock(iso: str | None) -> str:
    """'2026-11-28T01:00:05+03:00' -> '2026-11-28 01:00:05 +03:00'; '' when unknown."""
    if not iso:
        return ""
    return iso[:10] + " " + iso[11:19] + (" " + iso[-6:] if iso[-6] in "+-" else "")


def render_video_html(report: dict, timeline: str, thumbs: list[str | None]) -> str:
    e = html.escape
    rows = []
    for n, (seg, thumb) in enumerate(zip(report["segments"], thumbs), start=1):
        if seg.get("poster"):
            img = f'<img alt="event {n}" width="160" src="{e(media_link(seg["poster"], report["video_id"]))}">'
        elif thumb:
            img = f'<img alt="peak frame" src="data:image/png;base64,{thumb}">'
        else:
            img = f'<span class="muted">{e(seg.get("clip_error") or "video not readable now")}</span>'
        rows.append(
            f'<tr class="event" {event_attributes(report, seg)}><td>{n}</td>'
            f"<td>{e(wall_clock(seg.get('start_time')))}<br><span class=muted>{hms(seg['start_s'])}–"
            f"{hms(seg['end_s'])} into the file</span></td>"
            f"<td>{seg['peak_score']:.3f}</td><td>{seg['mean_score']:.3f}</td><td>{img}</td>"
            '<td class="review"></td></tr>'
        )
    table = (
        (
            "<table><tr><th>#</th><th>when</th><th>peak score</th><th>mean score</th><th>peak frame</th>"
            "<th>review</th></tr>" + "".join(rows) + "</table>"
        )
        if rows
        else "<p>No anomalous segments above the threshold.</p>"
    )
    player = (
        '<video id="player" controls muted playsinline preload="metadata" width="640"></video>'
        '<p class="muted">click an event or the score timeline to play it; keys: j/k move, Enter plays'
        "</p>"
        if any(seg.get("clip") for seg in report["segments"])
        else ""
    )
    where = (
        f"camera <b>{e(report['camera'])}</b> &middot; " if report.get("camera") else ""
    ) + (
        f"recorded {e(wall_clock(report['recorded_at']))} ({e(report.get('time_source', ''))}) &middot; "
        if report.get("recorded_at") else "recording time unknown &middot; "
    )  # fmt: skip
    up = "./" + "../" * report["video_id"].count("/")
    timeline_x = f'data-x0="{TIMELINE_AXES[0]}" data-x1="{TIMELINE_AXES[0] + TIMELINE_AXES[2]}"'
    body = f"""<p><a href="{up}index.html">all reports</a> <span id="status" class="muted"></span></p>
<h1>{e(report["video_id"])}</h1>
<p>{where}duration {hms(report["duration_s"])} ({report["duration_s"]:.1f} s, {report["fps"]:.2f} fps) &middot;
model <code>{e(report["model_id"])}</code> &middot; features <code>{e(report["extractor_id"])}</code> &middot;
threshold {report["threshold"]:.2f} &middot; highest score {report["max_score"]:.3f}</p>
{player}
<img id="timeline" alt="clip scores over time" {timeline_x} data-duration="{report["duration_s"]:.3f}"
 src="data:image/png;base64,{timeline}">
<h2>Anomalous segments ({len(report["segments"])})</h2>
{table}
<p class="muted">source: {e(report.get("source_url", ""))}</p>"""
    return page(report["video_id"], body, {"model_id": report["model_id"]})


class _LocalSource:
    """The source video as a local file, taken on first use only (most reports have no event and a template that
    gives the time: a remote video is then never downloaded), or None when it cannot be read now (reports never
    fail on it). Kept until the ExitStack closes."""

    def __init__(self, stack: ExitStack, store: OutputStore, url: str) -> None:
        self.stack, self.store, self.url = stack, store, url
        self.taken = False
        self.local: str | None = None

    def path(self) -> str | None:
        if not self.taken:
            self.taken = True
            try:
                self.local = self.stack.enter_context(self.store.local_copy(self.url)) if self.url else None
            except Exception:
                self.local = None
        return self.local


def clip_time_limit(requests: list[ClipRequest], padding_s: float) -> float:
    return 60.0 + 10.0 * sum(r.end_s - r.start_s + 2 * padding_s for r in requests)


def add_event_clips(store: OutputStore, report: dict, path: str, options: ReportOptions) -> None:
    """Each event's clip and poster (cut from the local source `path`) written beside the report; the segment
    gets their names (relative to reports/<model_id>/) and where the clip starts and ends in the video, or the
    reason it has none (`clip_error`)."""
    model_id, video_id, fps = report["model_id"], report["video_id"], report["fps"]
    segments = report["segments"]
    with tempfile.TemporaryDirectory(prefix="vad-clips-") as tmp:
        requests = [
            ClipRequest(s["start_s"], s["end_s"], s["peak_frame"] / fps, os.path.join(tmp, f"{n}.mp4"),
                        os.path.join(tmp, f"{n}.jpg"))
            for n, s in enumerate(segments, start=1)
        ]  # fmt: skip
        exported = export_clips(
            path, requests, options.clip_padding_s, options.clip_max_width,
            clip_time_limit(requests, options.clip_padding_s),
        )  # fmt: skip
        for n, (seg, clip) in enumerate(zip(segments, exported), start=1):
            if clip.error:
                seg["clip_error"] = clip.error
                continue
            for suffix, local in ((".mp4", clip.clip_path), (".jpg", clip.poster_path)):
                with open(local, "rb") as f:
                    store.write_bytes(store.event_media(model_id, video_id, n, suffix), f.read())
            seg["clip"] = store.event_media_name(video_id, n, ".mp4")
            seg["poster"] = store.event_media_name(video_id, n, ".jpg")
            seg["clip_start_s"], seg["clip_end_s"] = clip.clip_start_s, clip.clip_end_s


def write_video_report(
    store: OutputStore,
    model_id: str,
    video_id: str,
    threshold: float | None = None,
    thumbnails: bool = True,
    options: ReportOptions | None = None,
) -> VideoOutcome:
    """reports/<model_id>/<video_id>.json + .html (and the events' clips) from the stored scores; any failure is
    this video's outcome. `thumbnails=False`: no frame is read (no clips, no posters)."""
    options = options or ReportOptions()
    timer = Timer()
    try:
        scores = store.read_table(store.scores(model_id, video_id))
        source = scores.metadata.get("source_url", "")
        with ExitStack() as stack:
            local = _LocalSource(stack, store, source if thumbnails else "")

            def creation() -> datetime | None:
                path = local.path()
                return container_creation_time(path, options.timezone) if path else None

            report = build_report(scores, threshold, recording_of(video_id, options.template(), creation))
            peaks = [s["peak_frame"] for s in report["segments"]]
            thumbs: list[str | None] = [None] * len(peaks)
            path = local.path() if peaks else None
            if path and options.clips:
                add_event_clips(store, report, path, options)
            elif path:
                thumbs = _thumbnails(path, source, peaks)
        report["report_options"] = options.key
        store.write_json(store.report(model_id, video_id, ".json"), report)
        html_url = store.write_bytes(
            store.report(model_id, video_id, ".html"), render_video_html(report, timeline_png(report), thumbs).encode()
        )
    except Exception as exc:
        return VideoOutcome(video_id, FAILED, "report", error=failure_reason(exc))
    return VideoOutcome(
        video_id,
        DONE,
        "report",
        seconds=timer.seconds,
        clips=len(report["clip_scores"]),
        output=html_url,
        started_at=timer.started_at,
    )
