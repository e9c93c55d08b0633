"""Workers scenario: ``eventhub run --workers 1`` beside ``--workers 2`` on a service the CPU limits.

The service is a plugin written to a temporary folder as an installed
distribution would be (``benchmarks._plugin_dist``: its module and a dist-info
with the entry point ``burn``), that folder on the server's PYTHONPATH: a
protocol that burns a fixed amount of Python work per read, then echoes it.
(Not ``-p bench_burn:burn``: with ``--workers`` the supervisor hands its
workers ``--only burn``, which they look for among the installed plugins and
do not find; they exit 2, and are restarted until the supervisor gives up.)
The load generator keeps one request in flight per connection, so
a read is one message. The work is a loop of ``loops`` iterations, calibrated
once per run here (on the thread's CPU clock, the median of several tries) to
``BURN_US`` microseconds, and the same count is given to every server: a slow
spell of the machine makes it cost more CPU, never less.

Each run starts the server, waits for every worker to listen, and runs
``benchmarks.loadgen echo`` (``CONNS`` connections, 64 bytes) with
``--server-pid`` for the supervisor and each worker, so that server CPU is
all of theirs. Nothing is pinned: two workers need both cores, and the load
generator runs beside them; 1 and 2 workers alternate, the first shifting
each repeat.

On a 2-core machine the load generator competes with two workers for the
cores, and so does anything else running (the "others" column). So beside
the measured ratio, a CPU-time one: with ``S1``, ``S2`` the server's CPU per
round trip at 1 and 2 workers and ``L`` the load generator's, an otherwise
idle 2-core machine serves at most ``1e6 / S1`` round trips per second with
one worker (one core; the load generator on the other) and ``2e6 / (S2 + L)``
with two (both cores shared by the workers and the load generator), a ratio of
``2 * S1 / (S2 + L)``. It is what the cores allow, whatever else ran.
"""

from __future__ import annotations

import importlib.util
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._config import Config
from benchmarks._plugin_dist import env, write_plugin
from benchmarks._proc import Server, ServerStartError, console_script, python_module, run_pinned
from benchmarks._progress import Progress
from benchmarks._stats import median_of, ratio, summarize_runs

BURN_US = 50.0
CONNS = 64
SIZE = 64
COUNTS = (1, 2)
FIGURES = (
    "rt_per_s",
    "server_cpu_us_per_rt",
    "client_cpu_us_per_rt",
    "server_cores",
    "client_util",
    "others_cores",
    "p50_us",
    "p99_us",
)

PLUGIN = '''\
"""A service whose handler costs a fixed amount of CPU per message, then echoes it."""

import logging

import eventhub
from eventhub.protocol import Protocol, ServerFactory

log = logging.getLogger("eventhub.burn")


def work(loops):
    x = 1
    for _ in range(loops):
        x = (x * 1103515245 + 12345) & 0xFFFFFFFF
    return x


class BurnEcho(Protocol):
    def connection_made(self, transport):
        self.write = transport.write
        self.loops = self.factory.loops

    def data_received(self, data):
        work(self.loops)
        self.write(data)


class BurnFactory(ServerFactory):
    protocol = BurnEcho

    def __init__(self, loops):
        self.loops = loops


class BurnPlugin:
    def __init__(self):
        self.loops = 0

    @eventhub.hookimpl
    def eventhub_configure(self, settings, hub):
        self.loops = int(settings.get("loops", 0))

    @eventhub.hookimpl
    def eventhub_start_services(self, hub, reactor):
        listener = reactor.listen_tcp(0, BurnFactory(self.loops), backlog=1024, interface="127.0.0.1")
        log.info("burn: listening on %s, %d loops per message", listener.get_host(), self.loops)
        return listener


burn = BurnPlugin()
'''
MODULE = "bench_burn"


def work(loops: int) -> int:
    """The plugin's per-message work, here to calibrate it (the same code)."""
    x = 1
    for _ in range(loops):
        x = (x * 1103515245 + 12345) & 0xFFFFFFFF
    return x


def calibrate(target_us: float = BURN_US) -> int:
    """Loops of ``work`` costing ``target_us`` of CPU: the median of several tries on the thread clock."""
    probe = 50_000
    typical = statistics.median(_cpu_of_work(probe) for _ in range(9))
    return max(1, round(probe * target_us / 1e6 / typical))


def _cpu_of_work(loops: int) -> float:
    t0 = time.thread_time()
    work(loops)
    return time.thread_time() - t0


def argv(count: int, loops: int) -> list[str]:
    return [
        console_script("eventhub"),
        "run",
        "--only",
        "burn",
        "--set",
        f"burn.loops={loops}",
        "--workers",
        str(count),
    ]


def missing() -> str | None:
    """Why the scenario cannot run here, if it cannot."""
    if importlib.util.find_spec("eventhub.supervisor") is None:
        return "eventhub.supervisor (eventhub run --workers) is not importable"
    if not Path("/proc/self/stat").exists():
        return "no /proc to read the workers' CPU time from"
    return None


def run(cfg: Config, progress: Progress) -> dict[str, Any]:
    why = missing()
    if why is not None:
        progress.note(f"workers: skipped, {why}")
        return {"skipped": why}
    loops = calibrate()
    progress.begin("workers", cfg.repeat * len(COUNTS))
    cells: dict[int, dict[str, Any]] = {n: {"runs": [], "errors": []} for n in COUNTS}
    with tempfile.TemporaryDirectory(prefix="eventhub-bench-workers-") as folder:
        root = write_plugin(Path(folder), "eventhub-bench-burn", {"burn": f"{MODULE}:burn"}, {MODULE: PLUGIN})
        for rep in range(cfg.repeat):
            shift = rep % len(COUNTS)
            for count in COUNTS[shift:] + COUNTS[:shift]:
                outcome = measure(count, loops, root, cfg)
                cell = cells[count]
                if "error" in outcome:
                    cell["errors"].append(outcome["error"])
                    progress.step(f"--workers {count}", "ERROR " + outcome["error"][:120])
                else:
                    cell["runs"].append(outcome)
                    progress.step(f"--workers {count}", _brief(outcome))
    for cell in cells.values():
        cell["summary"] = summarize_runs(cell["runs"], FIGURES)
    return {
        "burn_us": BURN_US,
        "loops": loops,
        "conns": CONNS,
        "size": SIZE,
        "warmup_s": cfg.workers_warmup,
        "window_s": cfg.workers_duration,
        "cells": {str(n): cells[n] for n in COUNTS},
        "ratios": ratios(cells[1]["summary"], cells[2]["summary"]),
    }


def ratios(one: dict[str, Any], two: dict[str, Any]) -> dict[str, float | None]:
    """The measured round trips per second ratio, and what the CPU times allow on two cores."""
    s1, s2 = median_of(one, "server_cpu_us_per_rt"), median_of(two, "server_cpu_us_per_rt")
    load = median_of(two, "client_cpu_us_per_rt")
    projected = None if s1 is None or s2 is None or load is None else 2 * s1 / (s2 + load)
    return {
        "measured": ratio(median_of(two, "rt_per_s"), median_of(one, "rt_per_s")),
        "cpu_projected": projected,
        "server_cpu_per_rt": ratio(s2, s1),
    }


def measure(count: int, loops: int, root: Path, cfg: Config) -> dict[str, Any]:
    """One server with ``count`` workers under load: the load generator's figures, or ``{"error": ...}``."""
    try:
        server = Server(argv(count, loops), cpu=None, env=env(root))
    except OSError as exc:
        return {"error": f"could not start: {exc}"}
    with server:
        try:
            port = server.wait_for_port()
            pids = [server.pid, *_wait_for_workers(server, count)]
        except ServerStartError as exc:
            return {"error": str(exc)}
        args = ["echo", "--port", str(port), "--conns", str(CONNS), "--size", str(SIZE)]
        args += ["--warmup", str(cfg.workers_warmup), "--duration", str(cfg.workers_duration)]
        for pid in pids:
            args += ["--server-pid", str(pid)]
        budget = 60 + cfg.workers_warmup + cfg.workers_duration
        try:
            done = run_pinned(python_module("benchmarks.loadgen", *args), cpu=None, timeout=budget)
        except subprocess.TimeoutExpired:
            return {"error": f"load generator did not finish within {budget:.0f} s"}
        if done.returncode != 0:
            return {"error": f"load generator failed: {done.stderr.strip()[-300:]}"}
        if not server.alive():
            return {"error": f"server died during the run: {server.stderr_tail()}"}
        result: dict[str, Any] = json.loads(done.stdout)
    bad = result["mismatches"] + result["errors"] + result["lost"]
    if bad or not result["round_trips"]:
        samples = result["error_samples"]
        return {"error": f"{result['round_trips']} round trips, {bad} wrong or lost: {samples}"}
    result["workers"] = count
    result["server_cores"] = result["server_util"]
    result["client_cpu_us_per_rt"] = result["client_util"] * result["seconds"] / result["round_trips"] * 1e6
    return result


def _wait_for_workers(server: Server, count: int, timeout: float = 30.0) -> list[int]:
    """The workers' pids once each has said it listens (the supervisor itself, with one worker)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listening = server.stderr_path.read_text(errors="replace").count("burn: listening on")
        children = _children(server.pid)
        if count == 1 and listening >= 1:
            return children  # no supervisor: the process itself serves (and has no children)
        if listening >= count and len(children) >= count:
            return children
        if not server.alive():
            break
        time.sleep(0.01)
    tail = server.stderr_tail()
    raise ServerStartError(f"{count} workers did not all listen within {timeout:.0f} s: {tail}")


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid``, from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path("/proc", entry, "stat").read_bytes()
        except OSError:
            continue
        if int(raw[raw.rindex(b")") + 2 :].split()[1]) == pid:
            found.append(int(entry))
    return found


def _brief(r: dict[str, Any]) -> str:
    return (
        f"{r['rt_per_s']:.0f} rt/s, server {r['server_cpu_us_per_rt']:.1f} us/rt on "
        f"{r['server_cores']:.2f} cores, load generator {r['client_cpu_us_per_rt']:.1f} us/rt, "
        f"others {r['others_cores']:.2f} cores"
    )
