"""A run's outcome where operators look: the flow-run log and a table artifact in Prefect, besides the run's own
summary, manifest and webhook. Everything here is best effort: reporting never changes how a run ended."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)
MAX_ROWS = 200  # failed videos listed in the artifact (all of them are in the manifest)


def _logger() -> Any:
    try:
        from prefect import get_run_logger

        return get_run_logger()
    except Exception:  # not in a flow run
        return log


def log_summary(summary: dict[str, Any]) -> None:
    """The vad run id, counts, each failed / quarantined / interrupted video with its reason, and the alerts page,
    as flow-run log lines (INFO: the CLI, which prints its own table, runs Prefect at WARNING)."""
    logger = _logger()
    counts = ", ".join(f"{k} {v}" for k, v in summary.get("counts", {}).items())
    logger.info("vad run %s (%s): %s", summary.get("run_id"), summary.get("flow"), counts)
    for status in ("failed", "quarantined"):
        for video_id, reason in summary.get(status, {}).items():
            logger.info("%s %s: %s", status, video_id, reason)
    if summary.get("interrupted"):
        logger.info("interrupted: %s", summary["interrupted"])
    for key in ("alerts", "index"):
        if summary.get(key):
            logger.info("%s page: %s", key, summary[key])


def summary_artifact(summary: dict[str, Any]) -> None:
    """A table artifact on the flow run (key `vad-<flow>-summary`: the latest run's at the same key, earlier ones
    kept as versions): one row per count, then one per failed or quarantined video with its reason."""
    try:
        from prefect.artifacts import create_table_artifact
        from prefect.runtime import flow_run

        if not flow_run.id:
            return
        rows = [{"what": "run", "video": summary.get("run_id", ""), "detail": summary.get("alerts") or ""}]
        rows += [{"what": k, "video": str(v), "detail": ""} for k, v in summary.get("counts", {}).items()]
        for status in ("failed", "quarantined"):
            rows += [{"what": status, "video": vid, "detail": why} for vid, why in summary.get(status, {}).items()]
        flow = "".join(c if c.isalnum() else "-" for c in str(summary.get("flow", "run")).lower())
        create_table_artifact(
            rows[:MAX_ROWS],
            key=f"vad-{flow}-summary",
            description=f"vad run {summary.get('run_id')}: counts and failed videos (manifest: runs/<run_id>/)",
        )
    except Exception as exc:
        log.warning("could not create the run's Prefect artifact: %s", exc)
