"""The nightly alerts page: every event one run found, across cameras, ranked by peak score.

`reports/<model_id>/alerts-<run_id>.html`, written when the run's index part is. Filters (camera, date, minimum
score, review state) and keyboard navigation (j/k or arrows to move, Enter to open the event's page at its clip;
under `vad review` c/f/u mark it confirmed / false alarm / unsure) are `pages.js`; each row links to
`<video_id>.html#event=<event_id>`, whose player starts that event's clip. The reviews known when the page is
written are shown; `vad review` serves it with the current ones. At most SHOWN events (the rest are in
`index/<model_id>/segments/<run_id>.parquet`)."""

from __future__ import annotations

import html
from urllib.parse import quote

import pyarrow as pa
import pyarrow.compute as pc

from ..store.output import OutputStore
from .pages import page
from .report import event_attributes, event_id, hms, media_link, report_link, wall_clock
from .reviews import VERDICTS, latest_reviews

SHOWN = 2000


def _options(values: list[str], everything: str) -> str:
    e = html.escape
    return f'<option value="">{e(everything)}</option>' + "".join(
        f'<option value="{e(v)}">{e(v)}</option>' for v in values
    )


def render_alerts(model_id: str, run_id: str, events: list[dict], reviews: dict[str, dict]) -> bytes:
    e = html.escape
    events = sorted(events, key=lambda s: (-s["peak_score"], s["video_id"], s["start_s"]))
    rows = []
    for rank, seg in enumerate(events[:SHOWN], start=1):
        report = {"video_id": seg["video_id"], "camera": seg["camera"] or ""}
        href = report_link(seg["video_id"], ".html#event=" + quote(seg["event_id"], safe=""))
        poster = (f'<img alt="event poster" loading="lazy" width="120" src="{e(media_link(seg["poster"]))}">'
                  if seg.get("poster") else "")  # fmt: skip
        rows.append(
            f'<tr class="event" {event_attributes(report, seg, href)}><td>{rank}</td><td>{e(seg["camera"] or "")}'
            f"</td><td>{e(wall_clock(seg['start_time'])) or '<span class=muted>unknown</span>'}</td>"
            f"<td>{hms(seg['end_s'] - seg['start_s'])}</td><td>{seg['peak_score']:.3f}</td>"
            f'<td><a href="{e(href)}">{e(seg["video_id"])}</a><br><span class=muted>{hms(seg["start_s"])}–'
            f"{hms(seg['end_s'])} into the file</span></td><td>{poster}</td>"
            '<td class="review"></td></tr>'
        )
    cameras = sorted({s["camera"] for s in events if s["camera"]})
    dates = sorted({s["start_time"][:10] for s in events if s.get("start_time")})
    review_states = ["unreviewed", *VERDICTS]
    more = ""
    if len(events) > SHOWN:
        more = (f"<p class=muted>{len(events) - SHOWN} more events, with lower scores: "
                f"<code>index/{e(model_id)}/segments/{e(run_id)}.parquet</code></p>")  # fmt: skip
    body = f"""<p><a href="./index.html">all-time index</a> <span id="status" class="muted"></span></p>
<h1>Alerts of run {e(run_id)}</h1>
<p>model <code>{e(model_id)}</code> &middot; {len(events)} events on {len(cameras)} cameras &middot;
<span id="shown">{min(len(events), SHOWN)}</span> shown</p>
<p class="filters"><label>camera <select id="f-camera">{_options(cameras, "all cameras")}</select></label>
<label>date <select id="f-date">{_options(dates, "all dates")}</select></label>
<label>minimum score <input id="f-score" type="number" min="0" max="1" step="0.05" value="0"></label>
<label>review <select id="f-review">{_options(review_states, "any")}</select></label></p>
<p class="muted">keys: j / k (or arrows) move, Enter opens the event; in <code>vad review</code>: c confirmed,
f false alarm, u unsure</p>
<table><tr><th>#</th><th>camera</th><th>start</th><th>duration</th><th>peak score</th><th>video</th><th>poster</th>
<th>review</th></tr>{"".join(rows)}</table>{more}"""
    shown_ids = {s["event_id"] for s in events[:SHOWN]}
    data = {"model_id": model_id, "reviews": {k: v for k, v in reviews.items() if k in shown_ids}}
    return page(f"vad alerts {run_id}", body, data).encode()


def write_alerts_page(store: OutputStore, model_id: str, run_id: str, segments: pa.Table) -> str:
    """The page of the events in `segments` (the run's index rows) with the reviews known now."""
    mine = segments.filter(pc.equal(segments.column("run_id"), run_id)) if len(segments) else segments
    events = mine.to_pylist()
    for seg in events:
        seg["event_id"] = seg.get("event_id") or event_id(seg["video_id"], seg["start_frame"], seg["end_frame"])
    reviews = latest_reviews(store, model_id) if events else {}
    return store.write_bytes(store.alerts_page(model_id, run_id), render_alerts(model_id, run_id, events, reviews))
