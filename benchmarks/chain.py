"""Chain dispatch scenario: one worker process per handler count, pinned to one core."""

from __future__ import annotations

from typing import Any

from benchmarks._config import Config
from benchmarks._proc import pin_cpus, python_module
from benchmarks._progress import Progress
from benchmarks._timing import run_worker

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
    done = run_worker(argv, cpu)
    return {
        "count": count,
        "summary": done["summary"],
        "errors": done["errors"],
        "skipped": done["skipped"],
        "ns_per_dispatch": done["ns"],
    }
