"""The goals of the core, reactor, echo, bus, workers, NATS and HTTP issues: ratios with PASS or MISS."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from benchmarks import bus as bus_scenario
from benchmarks import nats as nats_scenario
from benchmarks import startup as startup_scenario
from benchmarks import workers as workers_scenario
from benchmarks._stats import median_of, ratio

PASS, MISS, NO_DATA = "PASS", "MISS", "NO DATA"


def _goal(
    goal: str, measured: str, value: float | None, limit: float, *, at_least: bool = False, unit: str = "x"
) -> dict[str, Any]:
    met = value is not None and (value >= limit if at_least else value <= limit)
    status = NO_DATA if value is None else PASS if met else MISS
    sign = ">=" if at_least else "<="
    return {
        "goal": goal,
        "measured": measured,
        "value": value,
        "limit": f"{sign} {limit:g}{unit}",
        "status": status,
    }


def _echo_cell(results: dict[str, Any], case: str, server: str) -> dict[str, Any] | None:
    for c in results.get("echo", {}).get("cases", []):
        if c["case"] == case:
            cell: dict[str, Any] | None = c["results"].get(server)
            return cell
    return None


def _echo_median(results: dict[str, Any], case: str, server: str, field: str) -> float | None:
    cell = _echo_cell(results, case, server)
    return median_of(cell.get("summary"), field) if cell else None


def _fmt(value: float | None, unit: str, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f} {unit}".rstrip()


def echo_goals(results: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    cpu = "server_cpu_us_per_rt"
    bare = _echo_median(results, "100 x 64 B", "bare", cpu)
    for backend in ("epoll", "poll", "select"):
        eh = _echo_median(results, "100 x 64 B", f"eventhub-{backend}", cpu)
        out.append(
            _goal(
                f"echo 100 x 64 B: eventhub ({backend}) CPU per round trip <= 1.1x the bare loop",
                f"{_fmt(eh, 'us')} vs {_fmt(bare, 'us')}",
                ratio(eh, bare),
                1.1,
            )
        )
    for backend in ("epoll", "select"):
        eh = _echo_median(results, "100 x 64 B", f"eventhub-{backend}", cpu)
        tw = _echo_median(results, "100 x 64 B", f"twisted-{backend}", cpu)
        out.append(
            _goal(
                f"echo 100 x 64 B: eventhub ({backend}) CPU per round trip <= 0.4x Twisted ({backend})",
                f"{_fmt(eh, 'us')} vs {_fmt(tw, 'us')}",
                ratio(eh, tw),
                0.4,
            )
        )
    for backend in ("asyncio", "uvloop"):  # the asyncio backends beside their raw loop
        eh = _echo_median(results, "100 x 64 B", f"eventhub-{backend}", cpu)
        raw = _echo_median(results, "100 x 64 B", backend, cpu)
        out.append(
            _goal(
                f"echo 100 x 64 B: eventhub ({backend}) CPU per round trip <= 1.1x the raw {backend} server",
                f"{_fmt(eh, 'us')} vs {_fmt(raw, 'us')}",
                ratio(eh, raw),
                1.1,
            )
        )
    out.extend(_many_connections(results, backend) for backend in ("epoll", "asyncio", "uvloop"))
    out.append(_bulk(results))
    out.append(_integrity(results))
    return out


def _bulk(results: dict[str, Any]) -> dict[str, Any]:
    """16 KiB MB/s, compared as MB per second of server CPU (payload size / CPU per round trip).

    A Python load generator costs about what a Python echo server does per 16 KiB
    round trip, so with two cores it saturates first and the measured MB/s would
    compare the client with itself; the server's MB per CPU-second does not
    depend on it. The measured MB/s and the saturated side are shown beside it.
    """
    case, size = "100 x 16 KiB", 16384
    cpu = {n: _echo_median(results, case, n, "server_cpu_us_per_rt") for n in ("eventhub-epoll", "bare")}
    cap = {n: None if v is None else size / v for n, v in cpu.items()}  # bytes per us = MB/s
    measured = {n: _echo_median(results, case, n, "mb_per_s") for n in cpu}
    sides = {n: (_echo_cell(results, case, n) or {}).get("saturated") for n in cpu}
    text = (
        f"{_fmt(cap['eventhub-epoll'], 'MB/s', 0)} vs {_fmt(cap['bare'], 'MB/s', 0)} per server CPU-second "
        f"(measured {_fmt(measured['eventhub-epoll'], 'MB/s', 0)} vs {_fmt(measured['bare'], 'MB/s', 0)}; "
        f"saturated: {sides['eventhub-epoll']} / {sides['bare']})"
    )
    goal = "echo 100 x 16 KiB: eventhub (epoll) MB per server CPU-second >= 0.9x the bare loop's"
    return _goal(goal, text, ratio(cap["eventhub-epoll"], cap["bare"]), 0.9, at_least=True)


def _many_connections(results: dict[str, Any], backend: str) -> dict[str, Any]:
    text = f"echo 5000 x 64 B on {backend}: every connection served, nothing lost or corrupted"
    cell = _echo_cell(results, "5000 x 64 B", f"eventhub-{backend}")
    if not cell or not cell["runs"]:
        return {"goal": text, "measured": "not measured", "value": None, "limit": "0 lost", "status": NO_DATA}
    t = cell["totals"]
    bad = t["lost"] + t["mismatches"] + t["errors"] + len(cell["errors"])
    ok = bad == 0 and t["connected_min"] >= 5000
    measured = (
        f"{t['connected_min']} connected, {t['lost']} lost, {t['mismatches']} mismatches, "
        f"{t['errors']} errors, {len(cell['errors'])} failed runs"
    )
    return {
        "goal": text,
        "measured": measured,
        "value": float(bad),
        "limit": "0 lost",
        "status": PASS if ok else MISS,
    }


def _integrity(results: dict[str, Any]) -> dict[str, Any]:
    text = "echo, every case and backend: every echoed byte of eventhub verified, none lost"
    totals = {"mismatches": 0, "lost": 0, "errors": 0, "bytes_verified": 0}
    runs = 0
    for c in results.get("echo", {}).get("cases", []):
        for name, cell in c["results"].items():
            if name.startswith("eventhub-"):
                runs += len(cell["runs"])
                for key in totals:
                    totals[key] += cell.get("totals", {}).get(key, 0)
    bad = totals["mismatches"] + totals["lost"] + totals["errors"]
    measured = (
        f"{totals['bytes_verified']:,} bytes verified in {runs} runs; {totals['mismatches']} "
        f"mismatches, {totals['lost']} lost, {totals['errors']} errors"
    )
    status = NO_DATA if runs == 0 else PASS if bad == 0 else MISS
    return {"goal": text, "measured": measured, "value": float(bad), "limit": "0", "status": status}


def _handlers(count: int) -> str:
    return f"{count} handler" + ("" if count == 1 else "s")


def chain_goals(results: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for entry in results.get("chain", {}).get("counts", []):
        s = entry["summary"]
        eh, loop = median_of(s, "eventhub"), median_of(s, "for-loop")
        out.append(
            _goal(
                f"chain, {_handlers(entry['count'])}: hub.dispatch <= 1.2x a for-loop over bound methods",
                f"{_fmt(eh, 'ns', 0)} vs {_fmt(loop, 'ns', 0)}",
                ratio(eh, loop),
                1.2,
            )
        )
    return out


def bus_goals(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The event bus issue: delivery <= 1.2x a for-loop at every N; an emit nobody wants <= 0.3 us."""
    bus = results.get("bus", {})
    out = []
    for entry in bus.get("counts", []):
        s = entry["summary"]
        eh, loop = median_of(s, bus_scenario.DISPATCH), median_of(s, bus_scenario.BASELINE)
        out.append(
            _goal(
                f"bus, {_handlers(entry['count'])} on one name: hub.dispatch <= 1.2x a for-loop "
                "over the same bound methods",
                f"{_fmt(eh, 'ns', 0)} vs {_fmt(loop, 'ns', 0)}",
                ratio(eh, loop),
                1.2,
            )
        )
    emits = bus.get("emits", {}).get("summary", {})
    for subject in (bus_scenario.UNSUBSCRIBED, bus_scenario.UNSUBSCRIBED_PATTERN):
        ns = median_of(emits, subject)
        us = None if ns is None else ns / 1000
        out.append(_goal(f"bus: {subject} <= 0.3 us", _fmt(ns, "ns", 0), us, 0.3, unit=" us"))
    return out


def discovery_goals(results: dict[str, Any]) -> list[dict[str, Any]]:
    d = results.get("discovery")
    if not d or len(d["dists"]) < 2:
        return []
    few, many = min(d["dists"]), max(d["dists"])
    warm = {
        r["dists"]: r["summary"]["median"]
        for r in d["rows"]
        if r["subject"] == "eventhub plugins (warm)" and r["summary"]
    }
    delta = warm[many] - warm[few] if few in warm and many in warm else None
    measured = f"{_fmt(warm.get(many), 'ms', 1)} vs {_fmt(warm.get(few), 'ms', 1)}"
    return [
        _goal(
            f"discovery, warm: eventhub plugins with {many} distributions <= 50 ms more than with {few}",
            measured,
            delta,
            50.0,
            unit=" ms",
        )
    ]


def startup_goals(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 10: eventhub run (echo) accepts and echoes its first connection in <= 0.35x twistd's time."""
    rows = {r["subject"]: r for r in results.get("startup", {}).get("rows", [])}
    eh, tw = rows.get(startup_scenario.EVENTHUB, {}), rows.get(startup_scenario.TWISTD, {})
    out = []
    for field, what in (("summary", "time"), ("cpu", "CPU time")):
        mine, theirs = ((row.get(field) or {}).get("median") for row in (eh, tw))
        out.append(
            _goal(
                f"start-up: eventhub run (echo plugin) {what} to its first echo <= 0.35x "
                "twistd -y echo.tac's",
                f"{_fmt(mine, 'ms', 0)} vs {_fmt(theirs, 'ms', 0)}",
                ratio(mine, theirs),
                0.35,
            )
        )
    return out


def memory_goals(results: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    servers = results.get("memory", {}).get("servers", {})
    for name, cell in servers.items():
        if not name.startswith("eventhub-"):
            continue
        traced = median_of(cell.get("summary"), "traced_bytes_per_conn")
        out.append(
            _goal(
                f"memory: {name} Python memory per idle connection <= 1 KiB (at {cell['conns']} connections)",
                _fmt(traced, "bytes", 0),
                traced,
                1024.0,
                unit=" bytes",
            )
        )
    return out


def workers_goals(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 16: --workers 2 serves >= 1.6x the round trips of --workers 1, measured and from CPU time."""
    w = results.get("workers", {})
    if "skipped" in w:
        return []
    cells = w.get("cells", {})
    one, two = (cells.get(n, {}).get("summary") for n in ("1", "2"))
    r = workers_scenario.ratios(one or {}, two or {})
    rts = f"{_fmt(median_of(two, 'rt_per_s'), 'rt/s', 0)} vs {_fmt(median_of(one, 'rt_per_s'), 'rt/s', 0)}"
    s1, s2 = median_of(one, "server_cpu_us_per_rt"), median_of(two, "server_cpu_us_per_rt")
    load = median_of(two, "client_cpu_us_per_rt")
    cpu = f"2 x {_fmt(s1, 'us', 1)} / ({_fmt(s2, 'us', 1)} + load generator {_fmt(load, 'us', 1)})"
    burn = f"~{w.get('burn_us', 50):g} us of CPU per message"
    return [
        _goal(f"workers ({burn}): --workers 2 round trips/s >= 1.6x --workers 1", rts, r["measured"], 1.6,
              at_least=True),
        _goal(f"workers ({burn}): the same from CPU per round trip on 2 idle cores, 2 S1 / (S2 + L)", cpu,
              r["cpu_projected"], 1.6, at_least=True),
    ]  # fmt: skip


def nats_goals(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 16: events hub -> NATS -> hub at >= 0.8x nats-py's own loop, core and JetStream."""
    n = results.get("nats", {})
    if "skipped" in n:
        return []
    cells = n.get("cells", {})
    out = []
    for mode, r in nats_scenario.ratios(n).items():
        eh = median_of(cells.get(f"eventhub {mode}", {}).get("summary"), "events_per_s")
        raw = median_of(cells.get(f"raw {mode}", {}).get("summary"), "events_per_s")
        out.append(
            _goal(
                f"nats ({mode}): hub -> NATS -> hub events/s >= 0.8x nats-py's own publish/subscribe loop",
                f"{_fmt(eh, 'events/s', 0)} vs {_fmt(raw, 'events/s', 0)}",
                r["rate"],
                0.8,
                at_least=True,
            )
        )
    return out


def http_cpu(results: dict[str, Any], server: str, route: str, conns: int) -> float | None:
    """The median server CPU per request of ``server`` on ``route`` at ``conns`` connections."""
    entry = results.get("http", {}).get("servers", {}).get(server, {})
    cell = entry.get("cells", {}).get(route, {}).get(str(conns))
    return median_of(cell.get("summary"), "server_cpu_us_per_req") if cell else None


# (eventhub-http with ..., the peer, its label, the limit): issue 15's goals
HTTP_GOALS = (
    ("httptools", "uvicorn-httptools", "uvicorn --http httptools", 1.0),
    ("httptools", "twisted", "twisted.web", 0.5),
    ("h11", "uvicorn-h11", "uvicorn --http h11", 1.0),
)


def http_goals(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 15: eventhub-http's server CPU per request against uvicorn's and twisted.web's, each route."""
    h = results.get("http", {})
    if "skipped" in h:
        return []
    conns = h.get("goal_conns", 50)
    out = []
    for route in h.get("routes", []):
        for parser, peer, label, limit in HTTP_GOALS:
            eh = http_cpu(results, f"eventhub-{parser}", route, conns)
            other = http_cpu(results, peer, route, conns)
            out.append(
                _goal(
                    f"http {route} at {conns} connections: eventhub-http ({parser}) server CPU per request "
                    f"<= {limit:g}x {label}'s",
                    f"{_fmt(eh, 'us', 1)} vs {_fmt(other, 'us', 1)}",
                    ratio(eh, other),
                    limit,
                )
            )
    return out


ALL: dict[str, Callable[[dict[str, Any]], list[dict[str, Any]]]] = {
    "echo": echo_goals,
    "chain": chain_goals,
    "bus": bus_goals,
    "discovery": discovery_goals,
    "startup": startup_goals,
    "memory": memory_goals,
    "workers": workers_goals,
    "nats": nats_goals,
    "http": http_goals,
}


def evaluate(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Every goal whose scenario ran; a goal without numbers says NO DATA, never PASS."""
    goals = []
    for scenario, fn in ALL.items():
        if scenario in results:
            goals.extend(fn(results))
    return goals
