"""Prefect flows and the `vad` CLI: orchestration only (which videos, which tasks, in what order)."""
