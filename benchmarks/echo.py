"""Echo scenario: each server in its own process on one core, the load generator on the other.

For every case (connections x message size) and every repeat, the servers are
measured one after the other, in an order rotated each repeat, so that drift
in the machine's state spreads over all of them alike.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks._config import Config, case_label
from benchmarks._proc import Server, ServerStartError, pin_cpus, python_module, run_pinned
from benchmarks._progress import Progress
from benchmarks._servers import ServerSpec
from benchmarks._stats import median_of, summarize, summarize_runs

FIGURES = (
    "server_cpu_us_per_rt",
    "rt_per_s",
    "mb_per_s",
    "p50_us",
    "p99_us",
    "server_util",
    "client_util",
    "others_cores",
    "connect_seconds",
)
TOTALS = ("round_trips_total", "bytes_verified", "mismatches", "errors", "lost")
SATURATED = 0.9  # a side busy this fraction of the window is the one that limits throughput


def skip_reason(spec: ServerSpec, conns: int) -> str | None:
    """Why ``spec`` does not run a case with ``conns`` connections, if it does not."""
    if spec.missing:
        return spec.missing
    if spec.max_conns is not None and conns > spec.max_conns:
        return f"select() cannot watch more than {spec.max_conns} connections (FD_SETSIZE)"
    return None


def run(cfg: Config, servers: list[ServerSpec], progress: Progress) -> dict[str, Any]:
    server_cpu, client_cpu = pin_cpus()
    plan = [
        (conns, size, [s for s in servers if skip_reason(s, conns) is None]) for conns, size in cfg.echo_cases
    ]
    progress.begin("echo", sum(len(runnable) for _, _, runnable in plan) * cfg.repeat)
    cases = []
    for conns, size, runnable in plan:
        results: dict[str, dict[str, Any]] = {
            s.name: {"runs": [], "errors": [], "skipped": skip_reason(s, conns)} for s in servers
        }
        for rep in range(cfg.repeat):
            shift = rep % max(1, len(runnable))
            for spec in runnable[shift:] + runnable[:shift]:
                outcome = measure(spec, conns, size, cfg, server_cpu, client_cpu)
                cell = results[spec.name]
                if "error" in outcome:
                    cell["errors"].append(outcome["error"])
                    progress.step(f"{case_label(conns, size)} {spec.name}", "ERROR " + outcome["error"][:120])
                else:
                    cell["runs"].append(outcome)
                    progress.step(f"{case_label(conns, size)} {spec.name}", _brief(outcome))
        for cell in results.values():
            _summarize_cell(cell)
        cases.append({"case": case_label(conns, size), "conns": conns, "size": size, "results": results})
    return {
        "servers": [describe(s) for s in servers],
        "pinning": {"server_cpu": server_cpu, "client_cpu": client_cpu},
        "warmup_s": cfg.echo_warmup,
        "window_s": cfg.echo_duration,
        "cases": cases,
    }


def describe(spec: ServerSpec) -> dict[str, Any]:
    """How a server was started, for the report (the interpreter's path shortened)."""
    argv = [Path(a).name if a == sys.executable or a.endswith("/eventhub") else a for a in spec.argv(False)]
    return {"name": spec.name, "label": spec.label, "command": " ".join(argv), "missing": spec.missing}


def measure(
    spec: ServerSpec, conns: int, size: int, cfg: Config, server_cpu: int | None, client_cpu: int | None
) -> dict[str, Any]:
    """One server, one case, one repeat: the load generator's figures, or ``{"error": ...}``."""
    try:
        server = Server(spec.argv(False), cpu=server_cpu, env=spec.env())
    except OSError as exc:
        return {"error": f"could not start: {exc}"}
    with server:
        try:
            port = server.wait_for_port()
        except ServerStartError as exc:
            return {"error": str(exc)}
        argv = python_module(
            "benchmarks.loadgen",
            "echo",
            "--port",
            str(port),
            "--server-pid",
            str(server.pid),
            "--conns",
            str(conns),
            "--size",
            str(size),
            "--warmup",
            str(cfg.echo_warmup),
            "--duration",
            str(cfg.echo_duration),
        )
        budget = 60 + conns / 100 + cfg.echo_warmup + cfg.echo_duration
        try:
            done = run_pinned(argv, cpu=client_cpu, timeout=budget)
        except subprocess.TimeoutExpired:
            return {"error": f"load generator did not finish within {budget:.0f} s"}
        if done.returncode != 0:
            return {"error": f"load generator failed: {done.stderr.strip()[-300:]}"}
        if not server.alive():
            return {"error": f"server died during the run: {server.stderr_tail()}"}
        result: dict[str, Any] = json.loads(done.stdout)
        result["via"] = spec.via
        return result


def _brief(r: dict[str, Any]) -> str:
    cpu = r.get("server_cpu_us_per_rt")
    cpu_text = f"{cpu:.2f} us/rt" if cpu is not None else "no round trip"
    return (
        f"{cpu_text}, {r['rt_per_s']:.0f} rt/s, p99 {r['p99_us'] or 0:.0f} us, "
        f"{r['mismatches']} mismatches, {r['errors']} errors, {r['lost']} lost"
    )


def _summarize_cell(cell: dict[str, Any]) -> None:
    runs = cell["runs"]
    cell["summary"] = summarize_runs(runs, FIGURES)
    cell["totals"] = {key: sum(int(r.get(key) or 0) for r in runs) for key in TOTALS}
    cell["totals"]["connected_min"] = min((int(r["connected"]) for r in runs), default=0)
    cell["saturated"] = saturated_side(cell["summary"])
    connected = summarize(r["connected"] for r in runs)
    if connected:
        cell["summary"]["connected"] = connected


def saturated_side(summary: dict[str, Any]) -> str | None:
    """Which process limited throughput: "server", "client", "both" or "neither"."""
    server = median_of(summary, "server_util")
    client = median_of(summary, "client_util")
    if server is None or client is None:
        return None
    busy = [name for name, util in (("server", server), ("client", client)) if util >= SATURATED]
    return "both" if len(busy) == 2 else busy[0] if busy else "neither"
