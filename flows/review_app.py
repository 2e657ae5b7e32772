"""`vad review`: a small local web app where analysts read the reports of any output (local or `s3://`) and mark
each event confirmed / false alarm / unsure, with a note.

Routes: `/` lists the models with reports; `/reports/<model_id>/<file>` serves the stored pages, clips (with HTTP
range requests, so the player seeks) and posters; `GET|POST /api/reviews/<model_id>` read and append reviews
(tasks/jobs/reviews.py: one Parquet part per save, so concurrent reviewers never overwrite each other). Pages are
served with the current reviews and the API in their data block (`pages.with_data`): the static files stay as the
run wrote them.

Safety: binds 127.0.0.1 unless told otherwise; requests must name this server's host (no DNS rebinding); an optional
access token (`--token` or VAD_REVIEW_TOKEN) is taken once from `?token=` into an HttpOnly, SameSite=Strict cookie
(or sent as `Authorization: Bearer`); saves must be JSON (a cross-site form cannot send it without a preflight,
which this server never allows). Every page carries the same Content-Security-Policy as a header."""

from __future__ import annotations

import hmac
import html
import logging
import mimetypes
import posixpath
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from anomaly_models.errors import UsageError
from tasks.jobs.pages import POLICY, page, with_data
from tasks.jobs.reviews import compact, latest_reviews, new_review, save_review
from tasks.store.names import safe_name, safe_relpath
from tasks.store.output import OutputStore

log = logging.getLogger(__name__)
COOKIE = "vad_review_token"
EVENT_ATTRIBUTE = re.compile(r'data-event="([0-9A-Za-z@._-]+)"')
LOOPBACK = ("127.0.0.1", "localhost", "[::1]")


class Unsatisfiable(Exception):
    pass


def _range(header: str | None, size: int) -> tuple[int, int] | None:
    """`bytes=a-b` / `bytes=a-` / `bytes=-n` -> [start, end] inclusive; None: the whole file (no header, or one
    this server does not do, such as several ranges: RFC 9110 allows answering those with the whole file).
    Raises Unsatisfiable for a range outside the file (answered 416)."""
    match = re.fullmatch(r"bytes=(\d*)-(\d*)", (header or "").strip())
    if not match or match.groups() == ("", ""):
        return None
    a, b = match.groups()
    if a == "":
        start, end = max(0, size - int(b)), size - 1
    else:
        start, end = int(a), min(int(b) if b else size - 1, size - 1)
    if start > end or start >= size:
        raise Unsatisfiable
    return start, end


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def create_app(store: OutputStore, reviewer: str, token: str | None = None, hosts: tuple[str, ...] = ()) -> FastAPI:
    """The app over one output. `hosts`: the Host names requests may carry (empty: any, when bound publicly)."""
    app = FastAPI(title="vad review", docs_url=None, redoc_url=None, openapi_url=None)

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Response:
        host = (request.headers.get("host") or "").rsplit(":", 1)[0]
        if hosts and host not in hosts:
            return PlainTextResponse(f"unknown host {host!r}", status_code=400)
        if token:
            given = request.query_params.get("token")
            if given is not None and _same(given, token) and request.method == "GET":
                response: Response = RedirectResponse("/" + request.url.path.lstrip("/"), 303)  # never off-site
                response.set_cookie(COOKIE, token, httponly=True, samesite="strict")
                return response
            bearer = (request.headers.get("authorization") or "").removeprefix("Bearer ")
            sent = request.cookies.get(COOKIE) or bearer
            if not _same(sent, token):
                return PlainTextResponse("access token required: open the URL vad review printed", status_code=401)
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = POLICY + "; frame-ancestors 'none'"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    @app.get("/", response_class=HTMLResponse)
    def home() -> Response:
        e = html.escape
        rows = "".join(
            f'<tr><td>{e(m)}</td><td><a href="/reports/{e(m)}/index.html">index</a></td></tr>'
            for m in store.report_models()
        )
        body = (f"<h1>vad review</h1><p>output <code>{e(store.root)}</code> &middot; reviewer "
                f"<b>{e(reviewer)}</b></p><table><tr><th>model</th><th>reports</th></tr>{rows}</table>")  # fmt: skip
        return HTMLResponse(page("vad review", body))

    @app.get("/reports/{model_id}/{path:path}")
    def report_file(model_id: str, path: str, request: Request) -> Response:
        try:
            url = posixpath.join(store.reports_dir(safe_name(model_id, "model id")), safe_relpath(path))
            size = store.size(url)
        except (UsageError, FileNotFoundError):
            return PlainTextResponse("not found", status_code=404)
        kind = mimetypes.guess_type(path)[0] or "application/octet-stream"
        if path.endswith(".html"):
            text = store.read_bytes(url).decode()
            shown = set(EVENT_ATTRIBUTE.findall(text))
            reviews = {k: v for k, v in latest_reviews(store, model_id).items() if k in shown}
            api = f"/api/reviews/{model_id}"
            text = with_data(text, {"model_id": model_id, "reviews": reviews, "api": api})
            return HTMLResponse(text, headers={"Cache-Control": "no-store"})
        headers = {"Accept-Ranges": "bytes"}
        try:
            span = _range(request.headers.get("range"), size)
        except Unsatisfiable:
            return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
        if span is None:
            return Response(store.read_bytes(url), media_type=kind, headers=headers)
        start, end = span  # only these bytes are read (one ranged GET on S3)
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        return Response(store.read_range(url, start, end + 1), status_code=206, media_type=kind, headers=headers)

    @app.get("/api/reviews/{model_id}")
    def reviews(model_id: str) -> Response:
        try:
            return JSONResponse(latest_reviews(store, safe_name(model_id, "model id")))
        except UsageError as exc:
            return PlainTextResponse(str(exc), status_code=400)

    @app.post("/api/reviews/{model_id}")
    async def save(model_id: str, request: Request) -> Response:
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return PlainTextResponse("reviews are sent as application/json", status_code=415)
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise UsageError("review: expected a JSON object")
            review = new_review(body, reviewer)
            await run_in_threadpool(save_review, store, safe_name(model_id, "model id"), review)
        except UsageError as exc:
            return PlainTextResponse(str(exc), status_code=400)
        except ValueError:
            return PlainTextResponse("review: the body is not JSON", status_code=400)
        try:
            await run_in_threadpool(compact, store, model_id)
        except Exception:  # the review is saved; merging parts is retried after the next save
            log.warning("merging the review parts of %s failed", model_id, exc_info=True)
        return JSONResponse({**review, "reviewed_at": review["reviewed_at"].isoformat()})

    return app


def check_binding(host: str, token: str | None) -> bool:
    """True when `host` is loopback; beyond this machine an access token is required."""
    loopback = host in ("127.0.0.1", "localhost", "::1")
    if not loopback and not token:
        raise UsageError(
            f"--host {host}: serving beyond this machine needs an access token (--token or VAD_REVIEW_TOKEN)"
        )
    return loopback


def serve(store: OutputStore, host: str, port: int, reviewer: str, token: str | None) -> None:
    import uvicorn

    hosts = LOOPBACK if check_binding(host, token) else ()
    uvicorn.run(create_app(store, reviewer, token, hosts), host=host, port=port, log_level="warning")
