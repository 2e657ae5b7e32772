"""Per-video segment reports (JSON for machines, HTML for analysts) and the run index across videos.

HTML pages are self-contained (plots and thumbnails embedded as PNG data URIs) so an analyst can open them from
object storage or a mail attachment without tools. Every name from the archive is HTML-escaped.
"""

from __future__ import annotations

import base64
import html
import io
from urllib.parse import quote

import numpy as np
import pyarrow as pa

from anomaly_models.errors import VideoError
from anomaly_models.metrics import score_segments

from ..media.decoder import IsolatedVideo, TimeLimit
from ..store.manifest import DONE, FAILED, Timer, VideoOutcome, failure_reason
from ..store.output import OutputStore
from ..store.tables import ClipTable

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


def hms(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def build_report(scores: ClipTable, threshold: float | None = None) -> dict:
    meta = scores.metadata
    threshold = float(meta["threshold"]) if threshold is None else threshold
    values = scores.column("score").astype(float)
    starts, ends = scores.column("start_frame"), scores.column("end_frame")
    fps = float(meta["fps"])
    segments = []
    for a, b in score_segments(values, threshold):
        peak = a + int(np.argmax(values[a:b]))
        segments.append(
            {
                "start_s": float(starts[a] / fps),
                "end_s": float(ends[b - 1] / fps),
                "start_frame": int(starts[a]),
                "end_frame": int(ends[b - 1]),
                "peak_score": float(values[peak]),
                "mean_score": float(values[a:b].mean()),
                "peak_frame": int(scores.column("center_frame")[peak]),
            }
        )
    return {
        "video_id": scores.table.column("video_id")[0].as_py() if len(values) else meta.get("video_id", ""),
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


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def timeline_png(report: dict) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 2.6))
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
    return _png(fig)


THUMBNAIL_LIMIT = TimeLimit(base_s=60.0, per_video_s=0.0, stall_s=30.0)


def thumbnails_png(
    video_url: str, frames: list[int], store: OutputStore | None = None, width: int = 240
) -> list[str | None]:
    """The frames as small PNGs, reading the video once in the decoder child under THUMBNAIL_LIMIT; Nones for
    frames that cannot be read now (reports never fail, nor hang, on thumbnails). `store` lends its storage options
    for remote source videos."""
    from PIL import Image

    if not frames or not video_url:
        return [None] * len(frames)
    out: list[str | None] = []
    try:
        with (
            (store or OutputStore(".")).local_copy(video_url) as path,
            IsolatedVideo(path, video_url, THUMBNAIL_LIMIT) as video,
        ):
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


# pages ship everything they show (inline style, data: images): nothing else may load or run
CSP = (
    '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; img-src data:; '
    "style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'\">"
)


def report_link(video_id: str) -> str:
    """The index's link to a video's page: always relative (\"./\" first, so no id reads as a scheme such as
    `javascript:`), every character that means something in a URL percent-encoded (#, ?, %, :, spaces)."""
    return "./" + quote(video_id, safe="/") + ".html"


STYLE = (
    "body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}th{background:#eee}"
    ".muted{color:#777}img{display:block}"
)


def render_video_html(report: dict, timeline: str, thumbs: list[str | None]) -> str:
    e = html.escape
    rows = []
    for seg, thumb in zip(report["segments"], thumbs):
        img = (
            f'<img alt="peak frame" src="data:image/png;base64,{thumb}">'
            if thumb
            else '<span class="muted">video not readable now</span>'
        )
        rows.append(
            f"<tr><td>{hms(seg['start_s'])}</td><td>{hms(seg['end_s'])}</td>"
            f"<td>{seg['peak_score']:.3f}</td><td>{seg['mean_score']:.3f}</td><td>{img}</td></tr>"
        )
    table = (
        (
            "<table><tr><th>start</th><th>end</th><th>peak score</th><th>mean score</th><th>peak frame</th></tr>"
            + "".join(rows)
            + "</table>"
        )
        if rows
        else "<p>No anomalous segments above the threshold.</p>"
    )
    return f"""<!doctype html><html><head><meta charset="utf-8">{CSP}<title>{e(report["video_id"])}</title>
<style>{STYLE}</style></head><body>
<h1>{e(report["video_id"])}</h1>
<p>duration {hms(report["duration_s"])} ({report["duration_s"]:.1f} s, {report["fps"]:.2f} fps) &middot;
model <code>{e(report["model_id"])}</code> &middot; features <code>{e(report["extractor_id"])}</code> &middot;
threshold {report["threshold"]:.2f} &middot; highest score {report["max_score"]:.3f}</p>
<img alt="clip scores over time" src="data:image/png;base64,{timeline}">
<h2>Anomalous segments ({len(report["segments"])})</h2>
{table}
<p class="muted">source: {e(report.get("source_url", ""))}</p>
</body></html>"""


def write_video_report(
    store: OutputStore, model_id: str, video_id: str, threshold: float | None = None, thumbnails: bool = True
) -> VideoOutcome:
    """reports/<model_id>/<video_id>.json + .html from the stored scores; any failure is this video's outcome."""
    timer = Timer()
    try:
        report = build_report(store.read_table(store.scores(model_id, video_id)), threshold)
        peaks = [s["peak_frame"] for s in report["segments"]]
        thumbs: list[str | None] = [None] * len(peaks)
        if thumbnails:
            thumbs = thumbnails_png(report["source_url"], peaks, store)
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
