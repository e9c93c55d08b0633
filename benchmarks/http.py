"""HTTP scenario: eventhub-http beside uvicorn, aiohttp and twisted.web, loaded by wrk.

Every server runs in its own process, pinned to one core (``_proc.pin_cpus``),
and serves the same two routes on 127.0.0.1: ``GET /hello`` (``hello\\n``) and
``POST /events/x`` with a small JSON body (parsed; handed to a no-op handler;
202 with an id). eventhub-http is served as a user would run it, by
``eventhub run`` with the http plugin and a tiny route plugin (``GET /hello``,
and a no-op handler subscribed to ``x``) written to a temporary folder as
installed distributions (``benchmarks._plugin_dist``), once with
``http.parser=httptools`` and once with ``h11``. The peers are in
``benchmarks.servers.http``: uvicorn with ``--http httptools`` and with
``--http h11``, aiohttp, twisted.web (epoll reactor); none writes an access log.

wrk, pinned to the other core, runs one thread with 1, 50 and 500 keep-alive
connections for each route (``--latency`` for p50/p99); the server's CPU time
is read from /proc/PID/stat around each run, so CPU per request is the
server's alone, whatever wrk or the rest of the machine cost. Servers take
turns, the first shifting each repeat.

SSE fan-out (eventhub-http only: the peers have no event stream): 100
subscribers read ``GET /events?match=x`` over raw sockets while a client posts
events to ``POST /events/x`` (a few requests in flight); events per second is
the events delivered to all subscribers over the time from the first post to
the last delivery. The client is this module (``python -m benchmarks.http
fanout``), pinned to the load generator's core.

Without wrk (``apt-get install wrk``) the scenario is skipped, saying so.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import re
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._config import Config
from benchmarks._plugin_dist import env, write_plugin
from benchmarks._proc import (
    REPO_ROOT,
    Server,
    ServerStartError,
    child_env,
    console_script,
    cpu_seconds,
    pin_cpus,
    python_module,
    run_pinned,
)
from benchmarks._progress import Progress
from benchmarks._stats import summarize_runs

HTTP_PLUGIN_SRC = REPO_ROOT / "plugins" / "http"
ROUTES = ("GET /hello", "POST /events/x")
POST_BODY = '{"order": 1, "paid": true}'
FIGURES = ("requests_per_s", "server_cpu_us_per_req", "p50_us", "p99_us", "server_cores")
SUBSCRIBERS = 100
IN_FLIGHT = 8  # POSTs the fan-out client keeps in flight
WRK_LUA = f"""\
wrk.method = "POST"
wrk.body = '{POST_BODY}'
wrk.headers["Content-Type"] = "application/json"
"""

ROUTE_PLUGIN = '''\
"""The benchmark's route and its no-op subscriber, as a third party would write them."""

import eventhub


class BenchRoutes:
    @eventhub.hookimpl
    def eventhub_http_routes(self, router):
        router.add("GET", "/hello", self.hello)

    def hello(self, request):
        return "hello\\n"

    @eventhub.on("x")
    def consume(self, event):
        pass


routes = BenchRoutes()
'''
ROUTE_MODULE = "bench_http_routes"

# (name, label, how it is started: "eventhub:PARSER" or a benchmarks.servers.http kind, module needed)
SERVERS = (
    ("eventhub-httptools", "eventhub-http (httptools)", "eventhub:httptools", "httptools"),
    ("eventhub-h11", "eventhub-http (h11)", "eventhub:h11", "h11"),
    ("uvicorn-httptools", "uvicorn --http httptools", "uvicorn-httptools", "uvicorn"),
    ("uvicorn-h11", "uvicorn --http h11", "uvicorn-h11", "uvicorn"),
    ("aiohttp", "aiohttp", "aiohttp", "aiohttp"),
    ("twisted", "twisted.web (epoll)", "twisted", "twisted"),
)


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def missing() -> str | None:
    """Why the scenario cannot run here, if it cannot."""
    if shutil.which("wrk") is None:
        return "wrk is not installed (apt-get install wrk)"
    if not (HTTP_PLUGIN_SRC / "eventhub_http").is_dir():
        return "plugins/http does not exist"
    if not Path("/proc/self/stat").exists():
        return "no /proc to read the servers' CPU time from"
    return None


_NOT_SOURCE = shutil.ignore_patterns("__pycache__")


def write_plugins(root: Path) -> Path:
    """The route plugin, and the http plugin's entry points unless the environment has them."""
    entry_points = {"benchroutes": f"{ROUTE_MODULE}:routes"}
    have_http = any(ep.name == "http" for ep in importlib.metadata.entry_points(group="eventhub.plugins"))
    if not have_http:
        entry_points["http"] = "eventhub_http:HttpPlugin"
    write_plugin(root, "eventhub-bench-http", entry_points, {ROUTE_MODULE: ROUTE_PLUGIN})
    if not have_http:
        # The package alone, copied: plugins/http itself may hold an egg-info left by a pip
        # install from source, which would declare the entry points a second time.
        shutil.copytree(HTTP_PLUGIN_SRC / "eventhub_http", root / "eventhub_http", ignore=_NOT_SOURCE)
        points = next(root.glob("*.dist-info")) / "entry_points.txt"  # and its hook specifications
        points.write_text(points.read_text() + "[eventhub.hookspecs]\nhttp = eventhub_http.hookspecs\n")
    return root


def server_argv(start: str) -> list[str]:
    if start.startswith("eventhub:"):
        return [
            console_script("eventhub"),
            "run",
            "--only",
            "http,benchroutes",
            "--set",
            'http.listen=["tcp:0"]',
            "--set",
            f"http.parser={start.removeprefix('eventhub:')}",
        ]
    return python_module("benchmarks.servers.http", start)


def run(cfg: Config, progress: Progress) -> dict[str, Any]:
    why = missing()
    if why is not None:
        progress.note(f"http: skipped, {why}")
        return {"skipped": why}
    server_cpu, client_cpu = pin_cpus()
    servers: dict[str, dict[str, Any]] = {}
    for name, label, _start, module in SERVERS:
        absent = None if _installed(module) else f"{module} is not installed (the bench extra)"
        servers[name] = {
            "label": label,
            "skipped": absent,
            "errors": [],
            "cells": {r: {str(c): {"runs": [], "errors": []} for c in cfg.http_conns} for r in ROUTES},
        }
    present = [s for s in SERVERS if servers[s[0]]["skipped"] is None]
    progress.begin("http", cfg.repeat * len(present) * len(ROUTES) * len(cfg.http_conns) + 1)
    with tempfile.TemporaryDirectory(prefix="eventhub-bench-http-") as folder:
        root = write_plugins(Path(folder, "site"))
        lua = Path(folder, "post.lua")
        lua.write_text(WRK_LUA)
        for rep in range(cfg.repeat):
            shift = rep % max(1, len(present))
            for name, _label, start, _module in present[shift:] + present[:shift]:
                server_env = env(root) if start.startswith("eventhub:") else child_env()
                pins = (server_cpu, client_cpu)
                measure_server(name, start, server_env, servers[name], lua, cfg, pins, progress)
        fanout = measure_fanout(root, cfg, server_cpu, client_cpu)
        progress.step("SSE fan-out", _fanout_brief(fanout))
    for entry in servers.values():
        for cells in entry["cells"].values():
            for cell in cells.values():
                cell["summary"] = summarize_runs(cell["runs"], FIGURES)
    return {
        "routes": list(ROUTES),
        "conns": list(cfg.http_conns),
        "goal_conns": 50 if 50 in cfg.http_conns else cfg.http_conns[-1],
        "warmup_s": cfg.http_warmup,
        "window_s": cfg.http_duration,
        "post_body": POST_BODY,
        "pinning": {"server_cpu": server_cpu, "client_cpu": client_cpu},
        "servers": servers,
        "fanout": fanout,
    }


def measure_server(
    name: str,
    start: str,
    server_env: dict[str, str],
    entry: dict[str, Any],
    lua: Path,
    cfg: Config,
    pins: tuple[int | None, int | None],
    progress: Progress,
) -> None:
    """Start one server, then wrk each route at each connection count against it."""
    server_cpu, client_cpu = pins
    try:
        server = Server(server_argv(start), cpu=server_cpu, env=server_env)
    except OSError as exc:
        entry["errors"].append(f"could not start: {exc}")
        return
    with server:
        try:
            port = server.wait_for_port()
        except ServerStartError as exc:
            entry["errors"].append(str(exc))
            progress.step(name, "ERROR " + str(exc)[:120])
            return
        for route in ROUTES:
            url, script = _target(port, route, lua)
            if cfg.http_warmup:  # lazy imports, caches, the allocator's pools
                wrk(url, script, 50, cfg.http_warmup, client_cpu)
            for conns in cfg.http_conns:
                cell = entry["cells"][route][str(conns)]
                outcome = measure(server, url, script, conns, cfg.http_duration, client_cpu)
                if "error" in outcome:
                    cell["errors"].append(outcome["error"])
                    progress.step(f"{name} {route} x{conns}", "ERROR " + outcome["error"][:120])
                else:
                    cell["runs"].append(outcome)
                    progress.step(f"{name} {route} x{conns}", _brief(outcome))


def _target(port: int, route: str, lua: Path) -> tuple[str, Path | None]:
    method, path = route.split()
    return f"http://127.0.0.1:{port}{path}", lua if method == "POST" else None


def wrk(url: str, script: Path | None, conns: int, seconds: int, cpu: int | None) -> str:
    """Run wrk (one thread) for whole ``seconds``; its output, or RuntimeError if it fails."""
    argv = ["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--latency", "--timeout", "5s"]
    if script is not None:
        argv += ["-s", str(script)]
    done = run_pinned([*argv, url], cpu=cpu, timeout=seconds + 60)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed: {(done.stderr or done.stdout).strip()[-300:]}")
    return done.stdout


def measure(
    server: Server, url: str, script: Path | None, conns: int, seconds: int, cpu: int | None
) -> dict[str, Any]:
    """One wrk run: its figures and the server's CPU time per request, or ``{"error": ...}``."""
    cpu0, t0 = cpu_seconds(server.pid), time.perf_counter()
    try:
        out = wrk(url, script, conns, seconds, cpu)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        return {"error": str(exc)}
    cpu1, t1 = cpu_seconds(server.pid), time.perf_counter()
    if not server.alive():
        return {"error": f"the server died: {server.stderr_tail()}"}
    try:
        result = parse_wrk(out)
    except ValueError as exc:
        return {"error": str(exc)}
    if not result["requests"]:
        return {"error": f"no request answered: {out.strip()[-300:]}"}
    if result["non_2xx"] or result["socket_errors"]:
        return {"error": f"{result['non_2xx']} non-2xx answers, socket errors {result['socket_errors']}"}
    result["conns"] = conns
    result["server_cpu_s"] = cpu1 - cpu0
    result["server_cpu_us_per_req"] = (cpu1 - cpu0) / result["requests"] * 1e6
    result["server_cores"] = (cpu1 - cpu0) / (t1 - t0)
    return result


_UNITS = {"us": 1.0, "ms": 1e3, "s": 1e6, "m": 60e6}


def _us(text: str) -> float:
    found = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not found:
        raise ValueError(f"wrk: cannot read the duration {text!r}")
    return float(found.group(1)) * _UNITS[found.group(2)]


def parse_wrk(out: str) -> dict[str, Any]:
    """requests, requests/s, p50/p99 (us), non-2xx answers and socket errors from wrk's report."""
    requests = re.search(r"^\s*(\d+) requests in ([\d.]+)(\w+),", out, re.M)
    rate = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    if not (requests and rate and p50 and p99):
        raise ValueError(f"wrk's report is not as expected: {out.strip()[-300:]}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "requests": int(requests.group(1)),
        "seconds": _us(requests.group(2) + requests.group(3)) / 1e6,
        "requests_per_s": float(rate.group(1)),
        "p50_us": _us(p50.group(1)),
        "p99_us": _us(p99.group(1)),
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": sum(int(n) for n in errors.groups()) if errors else 0,
    }


def _brief(r: dict[str, Any]) -> str:
    return (
        f"{r['requests_per_s']:.0f} req/s, server {r['server_cpu_us_per_req']:.1f} us/req on "
        f"{r['server_cores']:.2f} cores, p50 {r['p50_us']:.0f} us, p99 {r['p99_us']:.0f} us"
    )


# -- SSE fan-out ------------------------------------------------------------------


def measure_fanout(root: Path, cfg: Config, server_cpu: int | None, client_cpu: int | None) -> dict[str, Any]:
    """eventhub-http (httptools): events/s delivered to ``SUBSCRIBERS`` SSE clients."""
    out: dict[str, Any] = {"subscribers": SUBSCRIBERS, "events": cfg.http_fanout_events}
    out.update(runs=[], errors=[])
    for _ in range(cfg.repeat):
        server_env = env(root)
        with Server(server_argv("eventhub:httptools"), cpu=server_cpu, env=server_env) as server:
            try:
                port = server.wait_for_port()
            except ServerStartError as exc:
                out["errors"].append(str(exc))
                continue
            argv = python_module(
                "benchmarks.http", "fanout", "--port", str(port), "--server-pid", str(server.pid),
                "--subscribers", str(SUBSCRIBERS), "--events", str(cfg.http_fanout_events),
            )  # fmt: skip
            try:
                done = run_pinned(argv, cpu=client_cpu, timeout=120)
            except subprocess.TimeoutExpired:
                out["errors"].append("the fan-out client did not finish within 120 s")
                continue
            if done.returncode != 0:
                out["errors"].append(f"the fan-out client failed: {done.stderr.strip()[-300:]}")
                continue
            out["runs"].append(json.loads(done.stdout))
    out["summary"] = summarize_runs(out["runs"], ("events_per_s", "server_cpu_us_per_delivery"))
    return out


def _fanout_brief(f: dict[str, Any]) -> str:
    if not f["runs"]:
        return "ERROR " + "; ".join(f["errors"])[:120]
    r = f["runs"][-1]
    return f"{r['events_per_s']:.0f} events/s delivered, server {r['server_cpu_us_per_delivery']:.1f} us each"


_HEAD_END = b"\r\n\r\n"


def fanout(port: int, server_pid: int, subscribers: int, events: int) -> dict[str, Any]:
    """Subscribe ``subscribers`` raw SSE clients to ``x``, post ``events`` events, time the deliveries."""
    selector = selectors.DefaultSelector()
    counts: dict[socket.socket, int] = {}
    tails: dict[socket.socket, bytes] = {}
    marker = b"event: x\n"
    for _ in range(subscribers):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(b"GET /events?match=x HTTP/1.1\r\nHost: bench\r\n\r\n")
        seen = b""
        while b": eventhub" not in seen:  # the stream's first comment: subscribed
            chunk = sock.recv(4096)
            if not chunk:
                raise ConnectionError("the server closed an SSE stream before it began")
            seen += chunk
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
        counts[sock] = 0
        tails[sock] = b""
    poster = socket.create_connection(("127.0.0.1", port))
    poster.setblocking(False)
    selector.register(poster, selectors.EVENT_READ)
    body = POST_BODY.encode()
    request = b"POST /events/x HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n" + (
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    sent = answered = 0
    answers = b""
    cpu0, t0 = cpu_seconds(server_pid), time.perf_counter()
    while sent < min(IN_FLIGHT, events):
        poster.sendall(request)
        sent += 1
    done = 0
    deadline = time.monotonic() + 60
    while done < subscribers:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{done} of {subscribers} subscribers had every event after 60 s")
        for key, _ in selector.select(1.0):
            sock = key.fileobj
            if not isinstance(sock, socket.socket):
                continue
            data = sock.recv(262144)
            if not data:
                raise ConnectionError("the server closed a connection")
            if sock is poster:
                answers += data
                while (end := answers.find(_HEAD_END)) >= 0:
                    length = re.search(rb"(?i)content-length: *(\d+)", answers[:end])
                    size = end + 4 + (int(length.group(1)) if length else 0)
                    if len(answers) < size:
                        break
                    if not answers.startswith(b"HTTP/1.1 202"):
                        raise RuntimeError(f"POST /events/x answered {answers[:40]!r}")
                    answers = answers[size:]
                    answered += 1
                    if sent < events:
                        poster.sendall(request)
                        sent += 1
                continue
            text = tails[sock] + data
            before = counts[sock]
            counts[sock] += text.count(marker)
            tails[sock] = text[-(len(marker) - 1) :]
            if before < events <= counts[sock]:
                done += 1
    cpu1, t1 = cpu_seconds(server_pid), time.perf_counter()
    deliveries = subscribers * events
    return {
        "subscribers": subscribers,
        "events": events,
        "posted": answered,
        "seconds": t1 - t0,
        "events_per_s": deliveries / (t1 - t0),
        "server_cpu_us_per_delivery": (cpu1 - cpu0) / deliveries * 1e6,
    }


def main(argv: list[str] | None = None) -> int:
    cli = argparse.ArgumentParser(prog="python -m benchmarks.http", description="the SSE fan-out client")
    sub = cli.add_subparsers(dest="command", required=True)
    fan = sub.add_parser("fanout", help="subscribe over SSE, post events, print JSON figures")
    fan.add_argument("--port", type=int, required=True)
    fan.add_argument("--server-pid", type=int, required=True)
    fan.add_argument("--subscribers", type=int, default=SUBSCRIBERS)
    fan.add_argument("--events", type=int, default=1000)
    args = cli.parse_args(argv)
    sys.stdout.write(json.dumps(fanout(args.port, args.server_pid, args.subscribers, args.events)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
