"""Tell someone how a run ended: its summary posted as JSON to a webhook (a chat incoming-webhook, an alerting
endpoint). Never fatal: a webhook that is down is logged, the run's outcome stands."""

from __future__ import annotations

import json
import logging
import urllib.request
from typing import Any

log = logging.getLogger(__name__)


def webhook_payload(summary: dict[str, Any]) -> dict[str, Any]:
    """What is posted: run id, flow, outcome, counts, failed and interrupted videos with reasons, the index."""
    counts = summary.get("counts", {})
    failed = summary.get("failed", {})
    outcome = "interrupted" if summary.get("interrupted") else ("failures" if failed else "ok")
    text = (f"vad {summary.get('flow')} {summary.get('run_id')}: {outcome}; "
            + ", ".join(f"{k} {v}" for k, v in counts.items()))  # fmt: skip
    return {"text": text, "run_id": summary.get("run_id"), "flow": summary.get("flow"), "outcome": outcome,
            "counts": counts, "failed": failed, "interrupted": summary.get("interrupted"),
            "quarantined": summary.get("quarantined", {}), "index": summary.get("index"),
            "model_id": summary.get("model_id")}  # fmt: skip


def post_summary(url: str, summary: dict[str, Any], timeout: float = 10.0) -> bool:
    body = json.dumps(webhook_payload(summary), default=str).encode()
    try:
        request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return 200 <= response.status < 300
    except (OSError, ValueError) as exc:  # unreachable, refused, or not a URL
        log.warning("could not post the run summary to the webhook: %s", exc)
        return False
