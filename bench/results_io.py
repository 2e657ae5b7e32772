"""Benchmarks print their result as one JSON line and commit it as bench/results/<name>.json and .md."""

from __future__ import annotations

import json
import os
import platform

import torch


def machine() -> str:
    return f"{platform.machine()} {os.cpu_count()} cpus, torch {torch.__version__}"


def save_results(name: str, result: dict) -> None:
    print(json.dumps(result))
    out = os.path.join(os.path.dirname(__file__), "results")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, f"{name}.json"), "w") as f:
        json.dump(result, f, indent=2)
    flat = {k: v for k, v in result.items() if not _is_rows(v)}
    text = "| metric | value |\n|---|---|\n" + "".join(f"| {k} | {v} |\n" for k, v in flat.items())
    for key, rows in result.items():
        if _is_rows(rows):  # {row name: {column: value}} -> one table
            columns = list(next(iter(rows.values())))
            text += f"\n| {key} | " + " | ".join(columns) + " |\n|" + "---|" * (len(columns) + 1) + "\n"
            text += "".join(
                f"| {n} | " + " | ".join(str(r.get(c, "")) for c in columns) + " |\n" for n, r in rows.items()
            )
    with open(os.path.join(out, f"{name}.md"), "w") as f:
        f.write(text)


def _is_rows(value: object) -> bool:
    return isinstance(value, dict) and bool(value) and all(isinstance(v, dict) for v in value.values())
