"""Per-video segment reports (JSON for machines, HTML for analysts) and the run index across videos.

HTML pages are self-contained (plots and thumbnails embedded as PNG data URIs) so an analyst can open them from
object storage or a mail attachment without tools. Every name from the archive is HTML-escaped.
"""
from __future__ import annotations

import base64
import html
import io
import json
import posixpath

import numpy as np
import pyarrow as pa
from prefect import task
from prefect.cache_policies import NO_CACHE

from anomaly_models.metrics import score_segments

from .feature_store import ClipTable, json_dumps, read_table, table_bytes
from .manifest import DONE, FAILED, Timer, VideoOutcome
from .storage import filesystem, join, local_path, write_bytes_atomic


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
        segments.append({"start_s": float(starts[a] / fps), "end_s": float(ends[b - 1] / fps),
                         "start_frame": int(starts[a]), "end_frame": int(ends[b - 1]),
                         "peak_score": float(values[peak]), "mean_score": float(values[a:b].mean()),
                         "peak_frame": int(scores.column("center_frame")[peak])})
    return {"video_id": scores.table.column("video_id")[0].as_py() if len(values) else meta.get("video_id", ""),
            "duration_s": int(meta["frame_count"]) / fps, "fps": fps, "model_id": meta["model_id"],
            "extractor_id": meta["extractor_id"], "threshold": threshold, "segments": segments,
            "clip_scores": [round(float(v), 5) for v in values],
            "clip_start_s": [round(float(s / fps), 3) for s in starts], "max_score": float(values.max(initial=0)),
            "source_url": meta.get("source_url", "")}


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


def thumbnails_png(video_url: str, frames: list[int], storage_options=None, width: int = 240) -> list[str | None]:
    """The frames as small PNGs, reading the video once; Nones when it cannot be read now (reports never fail on
    thumbnails)."""
    from PIL import Image

    from .decode import DECODE_ERRORS

    if not frames or not video_url:
        return [None] * len(frames)
    out: list[str | None] = []
    try:
        with local_path(video_url, storage_options, suffix=posixpath.splitext(video_url)[1]) as path:
            import decord

            reader = decord.VideoReader(path, num_threads=1)
            for frame in frames:  # one frame in memory at a time; a bad frame blanks only its own thumbnail
                try:
                    img = Image.fromarray(reader[frame].asnumpy())
                except (IndexError, *DECODE_ERRORS):
                    out.append(None)
                    continue
                img.thumbnail((width, width))
                buf = io.BytesIO()
                img.save(buf, format="PNG")
                out.append(base64.b64encode(buf.getvalue()).decode())
    except (OSError, *DECODE_ERRORS):
        return [None] * len(frames)
    return out


STYLE = ("body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse}"
         "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}th{background:#eee}"
         ".muted{color:#777}img{display:block}")


def render_video_html(report: dict, timeline: str, thumbs: list[str | None]) -> str:
    e = html.escape
    rows = []
    for seg, thumb in zip(report["segments"], thumbs):
        img = f'<img alt="peak frame" src="data:image/png;base64,{thumb}">' if thumb else \
            '<span class="muted">video not readable now</span>'
        rows.append(f"<tr><td>{hms(seg['start_s'])}</td><td>{hms(seg['end_s'])}</td>"
                    f"<td>{seg['peak_score']:.3f}</td><td>{seg['mean_score']:.3f}</td><td>{img}</td></tr>")
    table = ("<table><tr><th>start</th><th>end</th><th>peak score</th><th>mean score</th><th>peak frame</th></tr>"
             + "".join(rows) + "</table>") if rows else "<p>No anomalous segments above the threshold.</p>"
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{e(report['video_id'])}</title>
<style>{STYLE}</style></head><body>
<h1>{e(report['video_id'])}</h1>
<p>duration {hms(report['duration_s'])} ({report['duration_s']:.1f} s, {report['fps']:.2f} fps) &middot;
model <code>{e(report['model_id'])}</code> &middot; features <code>{e(report['extractor_id'])}</code> &middot;
threshold {report['threshold']:.2f} &middot; highest score {report['max_score']:.3f}</p>
<img alt="clip scores over time" src="data:image/png;base64,{timeline}">
<h2>Anomalous segments ({len(report['segments'])})</h2>
{table}
<p class="muted">source: {e(report.get('source_url', ''))}</p>
</body></html>"""


def report_urls(out_root: str, model_id: str, video_id: str) -> tuple[str, str]:
    base = join(out_root, "reports", model_id, video_id)
    return base + ".json", base + ".html"


def write_video_report(scores_url: str, out_root: str, storage_options=None, threshold: float | None = None,
                       thumbnails: bool = True, video_id: str | None = None) -> VideoOutcome:
    timer = Timer()
    try:
        scores = read_table(scores_url, storage_options)
    except Exception as exc:
        return VideoOutcome(video_id or scores_url, FAILED, "report", error=f"{exc.__class__.__name__}: {exc}")
    report = build_report(scores, threshold)
    vid = report["video_id"]
    try:
        peaks = [s["peak_frame"] for s in report["segments"]]
        thumbs = thumbnails_png(report["source_url"], peaks, storage_options) if thumbnails else [None] * len(peaks)
        json_url, html_url = report_urls(out_root, report["model_id"], vid)
        write_bytes_atomic(json_url, json_dumps(report), storage_options)
        write_bytes_atomic(html_url, render_video_html(report, timeline_png(report), thumbs).encode(),
                           storage_options)
    except Exception as exc:
        return VideoOutcome(vid, FAILED, "report", error=f"{exc.__class__.__name__}: {exc}")
    return VideoOutcome(vid, DONE, "report", seconds=timer.seconds, clips=len(report["clip_scores"]),
                        output=html_url, started_at=timer.started_at)


def read_reports(out_root: str, model_id: str, storage_options=None) -> list[dict]:
    fs, root = filesystem(join(out_root, "reports", model_id), storage_options)
    fs.invalidate_cache()
    if not fs.exists(root):
        return []
    paths = [p for p in fs.find(root) if p.endswith(".json")]
    return [json.loads(fs.cat_file(p)) for p in sorted(paths)]


def write_index(out_root: str, model_id: str, storage_options=None) -> str:
    """reports/<model_id>/index.html + segments.parquet over every report, videos ranked by their highest score."""
    reports = sorted(read_reports(out_root, model_id, storage_options), key=lambda r: -r["max_score"])
    rows = [{"video_id": r["video_id"], **{k: s[k] for k in ("start_s", "end_s", "start_frame", "end_frame",
                                                               "peak_score", "mean_score")}}
            for r in reports for s in r["segments"]]
    schema = pa.schema([("video_id", pa.string()), ("start_s", pa.float64()), ("end_s", pa.float64()),
                        ("start_frame", pa.int64()), ("end_frame", pa.int64()), ("peak_score", pa.float64()),
                        ("mean_score", pa.float64())])
    base = join(out_root, "reports", model_id)
    write_bytes_atomic(join(base, "segments.parquet"), table_bytes(pa.Table.from_pylist(rows, schema=schema)),
                       storage_options)
    e = html.escape
    body = "".join(
        f"<tr><td>{i + 1}</td><td><a href=\"{e(r['video_id'])}.html\">{e(r['video_id'])}</a></td>"
        f"<td>{r['max_score']:.3f}</td><td>{len(r['segments'])}</td><td>{hms(r['duration_s'])}</td>"
        f"<td>{', '.join(hms(s['start_s']) + '–' + hms(s['end_s']) for s in r['segments'][:5])}</td></tr>"
        for i, r in enumerate(reports))
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>vad reports: {e(model_id)}</title>
<style>{STYLE}</style></head><body><h1>Anomaly reports</h1>
<p>model <code>{e(model_id)}</code> &middot; {len(reports)} videos &middot; {len(rows)} anomalous segments</p>
<table><tr><th>#</th><th>video</th><th>highest score</th><th>segments</th><th>duration</th><th>when</th></tr>
{body}</table></body></html>"""
    url = join(base, "index.html")
    write_bytes_atomic(url, page.encode(), storage_options)
    return url


def report_exists(out_root: str, model_id: str, video_id: str, storage_options=None) -> bool:
    fs, path = filesystem(report_urls(out_root, model_id, video_id)[1], storage_options)
    return fs.exists(path)




@task(name="report-video", cache_policy=NO_CACHE)
def report_video_task(scores_url: str, out_root: str, storage_options=None, threshold: float | None = None,
                      video_id: str | None = None) -> VideoOutcome:
    return write_video_report(scores_url, out_root, storage_options, threshold, video_id=video_id)
