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
    with open(os.path.join(out, f"{name}.md"), "w") as f:
        f.write("| metric | value |\n|---|---|\n" + "".join(f"| {k} | {v} |\n" for k, v in result.items()))
