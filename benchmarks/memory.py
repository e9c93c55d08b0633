"""Memory scenario: server memory per idle connection, at up to 10,000 connections.

Each server runs twice: once plain, for its RSS (from /proc/PID/status), and
once under ``PYTHONTRACEMALLOC=1``, for the Python memory it allocated (the
server reports ``tracemalloc``'s traced total on SIGUSR1, after a collection).
Both are read with ``base`` connections open and again with all of them open;
the difference divided by the extra connections is the cost of one idle
connection, free of one-time costs (imports, first-connection caches).
Every connection made one verified round trip, so the server really accepted it.
"""

from __future__ import annotations

import json
import selectors
import signal
import subprocess
import time
from typing import Any

from benchmarks._config import Config
from benchmarks._proc import (
    Server,
    ServerStartError,
    pin_cpus,
    python_module,
    raise_nofile,
    rss_kib,
    spawn_pinned,
)
from benchmarks._progress import Progress
from benchmarks._servers import ServerSpec
from benchmarks._stats import summarize

MODES = ("rss", "traced")
FD_MARGIN = 64  # descriptors a process needs besides its connections
READY_TIMEOUT = 120.0


class MeasureError(RuntimeError):
    """One memory run could not complete; the message says why."""


def connections_for(spec: ServerSpec, cfg: Config) -> int:
    limit = raise_nofile() - FD_MARGIN
    wanted = min(cfg.memory_conns, limit)
    return min(wanted, spec.max_conns) if spec.max_conns is not None else wanted


def run(cfg: Config, servers: list[ServerSpec], progress: Progress) -> dict[str, Any]:
    server_cpu, client_cpu = pin_cpus()
    runnable = [s for s in servers if not s.missing]
    progress.begin("memory", cfg.repeat * len(runnable) * len(MODES))
    results: dict[str, dict[str, Any]] = {}
    for spec in servers:
        results[spec.name] = {
            "conns": connections_for(spec, cfg),
            "base": cfg.memory_base,
            "runs": {m: [] for m in MODES},
            "errors": [],
            "skipped": spec.missing,
        }
    for rep in range(cfg.repeat):
        shift = rep % max(1, len(runnable))
        for spec in runnable[shift:] + runnable[:shift]:
            cell = results[spec.name]
            for mode in MODES:
                try:
                    outcome = measure(spec, mode, cell["conns"], cfg.memory_base, server_cpu, client_cpu)
                except (MeasureError, ServerStartError, OSError) as exc:
                    cell["errors"].append(f"{mode}: {exc}")
                    progress.step(f"{spec.name} {mode}", f"ERROR {exc}"[:140])
                    continue
                cell["runs"][mode].append(outcome)
                progress.step(f"{spec.name} {mode}", _brief(outcome))
    for cell in results.values():
        cell["summary"] = {
            "rss_bytes_per_conn": summarize(r["per_conn"] for r in cell["runs"]["rss"]),
            "traced_bytes_per_conn": summarize(r["per_conn"] for r in cell["runs"]["traced"]),
        }
    return {"target_conns": cfg.memory_conns, "base": cfg.memory_base, "servers": results}


def measure(
    spec: ServerSpec, mode: str, conns: int, base: int, server_cpu: int | None, client_cpu: int | None
) -> dict[str, Any]:
    extra = {"PYTHONTRACEMALLOC": "1"} if mode == "traced" else {}
    with Server(spec.argv(True), cpu=server_cpu, env=spec.env(extra)) as server:
        port = server.wait_for_port(timeout=60)
        holder = spawn_pinned(
            python_module(
                "benchmarks.loadgen", "hold", "--port", str(port), "--conns", str(conns), "--base", str(base)
            ),
            cpu=client_cpu,
        )
        try:
            points = [_point(server, holder, mode)]
            _advance(holder)
            points.append(_point(server, holder, mode))
            _advance(holder)
            holder.wait(30)
        finally:
            if holder.poll() is None:
                holder.kill()
                holder.wait()
            if holder.stdout:
                holder.stdout.close()
            if holder.stderr:
                holder.stderr.close()
    (n0, m0), (n1, m1) = points
    if n1 <= n0:
        raise MeasureError(f"only {n1} connections were opened")
    return {"conns": n1, "base": n0, "per_conn": (m1 - m0) / (n1 - n0), "total_bytes": m1}


def _advance(holder: subprocess.Popen[str]) -> None:
    assert holder.stdin is not None
    holder.stdin.write("\n")
    holder.stdin.flush()


def _point(server: Server, holder: subprocess.Popen[str], mode: str) -> tuple[int, int]:
    """Wait for the load generator's READY, then read (connections, memory in bytes)."""
    status = _ready(holder)
    if status["mismatches"] or status["errors"]:
        raise MeasureError(f"connecting failed: {status}")
    reports = _mem_lines(server)
    server.proc.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + 30
    while len(_mem_lines(server)) == len(reports):
        if time.monotonic() > deadline or not server.alive():
            raise MeasureError(f"the server did not report its memory: {server.stderr_tail()}")
        time.sleep(0.005)
    if mode == "rss":
        return status["connected"], rss_kib(server.pid) * 1024
    traced = int(_mem_lines(server)[-1].split()[1])
    if traced < 0:
        raise MeasureError("tracemalloc was not on in the server")
    return status["connected"], traced


def _mem_lines(server: Server) -> list[str]:
    return [line for line in server.stdout_lines() if line.startswith("MEM ")]


def _ready(holder: subprocess.Popen[str]) -> dict[str, Any]:
    assert holder.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(holder.stdout, selectors.EVENT_READ)
        if not sel.select(READY_TIMEOUT):
            raise MeasureError(f"the load generator was not ready within {READY_TIMEOUT:.0f} s")
    line = holder.stdout.readline()
    if not line.startswith("READY "):
        err = holder.stderr.read()[-300:] if holder.stderr and holder.poll() is not None else ""
        raise MeasureError(f"the load generator said {line.strip()!r} {err}")
    status: dict[str, Any] = json.loads(line[len("READY ") :])
    return status


def _brief(r: dict[str, Any]) -> str:
    return f"{r['per_conn']:.0f} bytes per connection ({r['conns']} connections)"
