"""Chain dispatch scenario: one worker process per handler count, pinned to one core."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from benchmarks._config import Config
from benchmarks._proc import pin_cpus, python_module, run_pinned
from benchmarks._progress import Progress
from benchmarks._stats import summarize

BASELINE = "for-loop"


def run(cfg: Config, progress: Progress) -> dict[str, Any]:
    cpu, _ = pin_cpus()
    progress.begin("chain", len(cfg.chain_counts))
    counts = []
    for count in cfg.chain_counts:
        counts.append(_one(count, cfg, cpu))
        medians = {k: v["median"] for k, v in counts[-1]["summary"].items()}
        brief = ", ".join(f"{k} {v:.0f} ns" for k, v in medians.items()) or "no result"
        progress.step(f"{count} handlers", brief)
    return {"baseline": BASELINE, "rounds": cfg.chain_rounds, "counts": counts}


def _one(count: int, cfg: Config, cpu: int | None) -> dict[str, Any]:
    argv = python_module(
        "benchmarks.chain_worker",
        "--count",
        str(count),
        "--rounds",
        str(cfg.chain_rounds),
        "--sample",
        str(cfg.chain_sample_seconds),
    )
    result: dict[str, Any] = {"count": count, "summary": {}, "errors": {}}
    try:
        done = run_pinned(argv, cpu=cpu, timeout=300)
    except subprocess.TimeoutExpired:
        result["errors"]["worker"] = "timed out after 300 s"
        return result
    if done.returncode != 0:
        result["errors"]["worker"] = done.stderr.strip()[-300:]
        return result
    raw = json.loads(done.stdout)
    result["errors"] = raw["errors"]
    result["ns_per_dispatch"] = raw["ns_per_dispatch"]
    for name, samples in raw["ns_per_dispatch"].items():
        s = summarize(samples)
        if s is not None:
            result["summary"][name] = s
    return result
