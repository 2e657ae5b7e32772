"""What every analyst page ships: one stylesheet, one script (`pages.js`) and a Content-Security-Policy that allows
exactly those, the page's own media (event clips and posters next to it) and, for `vad review`, requests to its own
origin. Nothing external loads: no fonts, CDNs or trackers.

A page's data (reviews known when it was written; the review API when served by `vad review`) travels in one
`<script id="vad-data" type="application/json">` block, which a browser never executes, so `vad review` swaps it
for the current reviews without touching the script whose hash the policy names."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from importlib import resources
from typing import Any

SCRIPT = resources.files(__package__).joinpath("pages.js").read_text(encoding="utf-8")
SCRIPT_HASH = "sha256-" + base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()

POLICY = (
    f"default-src 'none'; script-src '{SCRIPT_HASH}'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "media-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'"
)
CSP = f'<meta http-equiv="Content-Security-Policy" content="{POLICY}">'
# pages without a script or media (evaluation.html): images embedded, nothing else
STATIC_CSP = (
    '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; img-src data:; '
    "style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'\">"
)

STYLE = (
    "body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}th{background:#eee}"
    ".muted{color:#777}img{display:block}tr.event{cursor:pointer}tr.event:hover{background:#f6f6f6}"
    "tr.selected{outline:2px solid #1f4e79;background:#eef4fb}tr[data-review=false_alarm]{opacity:.55}"
    "tr[data-review=confirmed] .verdict{color:#b00;font-weight:bold}.verdicts button{margin:2px}"
    ".filters label{margin-right:1em}video{max-width:100%;background:#000}#timeline{cursor:crosshair}"
)

DATA_BLOCK = re.compile(r'<script id="vad-data" type="application/json">.*?</script>', re.S)


def data_block(data: dict[str, Any]) -> str:
    """The page's data as JSON that cannot end its script element (every '<' escaped)."""
    text = json.dumps(data, sort_keys=True).replace("<", "\\u003c")
    return f'<script id="vad-data" type="application/json">{text}</script>'


PAGE_SCRIPT = re.compile(r"<script>.*?</script>", re.S)
PAGE_CSP = re.compile(r'<meta http-equiv="Content-Security-Policy" content="[^"]*">')


def with_data(page: str, data: dict[str, Any]) -> str:
    """The same page with another data block (`vad review`: current reviews, its API), and this version's script
    and policy (a page written by an older version keeps working when served with the current policy)."""
    page = PAGE_CSP.sub(lambda _: CSP, page, count=1)
    page = PAGE_SCRIPT.sub(lambda _: f"<script>{SCRIPT}</script>", page, count=1)
    return DATA_BLOCK.sub(lambda _: data_block(data), page, count=1)


def page(title: str, body: str, data: dict[str, Any] | None = None, style: str = "") -> str:
    return f"""<!doctype html><html><head><meta charset="utf-8">{CSP}
<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">
<title>{html.escape(title)}</title>
<style>{STYLE}{style}</style></head><body>{body}
{data_block(data or {})}<script>{SCRIPT}</script></body></html>"""
