"""The Markdown report (docs/benchmarks/README.md) and the table printed at the end of a run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from benchmarks._stats import median_of, ratio
from benchmarks.echo import SATURATED
from benchmarks.nats import ratios

COMMAND = "python -m benchmarks"


def fmt(summary: Mapping[str, Any] | None, digits: int = 1, scale: float = 1.0) -> str:
    """``median (min-max)`` of a summary; just the median when there was one run."""
    if not summary:
        return "-"
    med, lo, hi = (f"{summary[k] * scale:,.{digits}f}" for k in ("median", "min", "max"))
    return med if lo == hi else f"{med} ({lo}-{hi})"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


def machine_section(results: Mapping[str, Any]) -> list[str]:
    m = results["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v) or "-"
    missing = ", ".join(k for k, v in m["versions"].items() if not v)
    load = results.get("load_average", {})
    lines = [
        "## Machine",
        "",
        f"- CPU: {m['cpu_model']}, {m['cores']} cores (usable: {m['usable_cpus']})",
        f"- Python {m['python']} ({m['implementation']}), {m['platform']}",
        f"- Packages: {versions}" + (f"; not installed: {missing}" if missing else ""),
        f"- Open files hard limit: {m['nofile_limit']}",
        f"- Commit: {m['commit'] or 'unknown'}; run started {results['started']}, "
        f"took {results['duration_s'] / 60:.1f} min; repeats: {results['config']['repeat']}",
        f"- Load average at start / end: {load.get('start')} / {load.get('end')} "
        "(other work on the machine shows up here and in the spread)",
        "",
    ]
    return lines + _busy_machine(results)


def _busy_machine(results: Mapping[str, Any]) -> list[str]:
    """A warning when other work kept the machine's CPUs busy during the run (load above the cores)."""
    cores = len(results["machine"]["usable_cpus"]) or 1
    load = results.get("load_average", {})
    peak = max((sample[0] for sample in (load.get("start"), load.get("end")) if sample), default=0.0)
    if peak <= cores:
        return []
    return [
        f"**A busy machine**: the load average reached {peak:.1f} on {cores} usable cores, so other "
        "work competed with the measured processes. Echo, start-up and discovery figures (server CPU "
        "per round trip included: a shared core runs slower) are inflated and their ratios noisier "
        "than on an idle machine; compare them with figures from the same run, not with another "
        "run's. The chain and bus figures read the worker thread's own CPU clock, so time spent "
        "preempted is not counted, but a busy neighbour still slows the core they run on: their "
        "minima (in parentheses) are the steadier figures then.",
        "",
    ]


def goals_section(goals: Sequence[Mapping[str, Any]]) -> list[str]:
    rows = []
    for g in goals:
        value = g["value"]
        shown = "-" if value is None else f"{value:.2f}"
        rows.append([g["goal"], g["measured"], shown, g["limit"], f"**{g['status']}**"])
    passed = sum(g["status"] == "PASS" for g in goals)
    lines = [
        "## Goals",
        "",
        f"{passed} of {len(goals)} goals met. Ratios are of medians. The issues state the echo goals "
        "for the reactor and the chain goal for dispatch in general; here each limit is applied to "
        "every backend and handler count measured (poll and select beside epoll, Twisted's select "
        "reactor beside its epoll one, 1 and 100 handlers beside 10, for the chain and for the "
        "event bus), so a miss on any of them shows.",
        "",
    ]
    return lines + table(["goal", "measured", "ratio / value", "limit", "result"], rows)


ECHO_COLUMNS = (
    "server",
    "CPU us/rt",
    "rt/s",
    "MB/s",
    "p50 us",
    "p99 us",
    "server busy",
    "client busy",
    "others (cores)",
    "bytes verified",
    "mismatches",
    "errors",
    "lost",
)


def echo_section(echo: Mapping[str, Any]) -> list[str]:
    pin = echo["pinning"]
    lines = [
        "## Echo",
        "",
        f"Server pinned to CPU {pin['server_cpu']}, load generator to CPU {pin['client_cpu']}. "
        f"Each run: connect (one verified round trip per connection), {echo['warmup_s']} s warm-up, "
        f"a {echo['window_s']} s measured window, then no new requests and the outstanding ones "
        "drained (a reply that never comes is counted as lost). Server CPU is utime + stime from "
        "/proc/PID/stat at the window's edges, read by the load generator itself, divided by the "
        'round trips completed in the window. MB/s counts echoed payload one way. "busy" is the '
        "share of the window each process spent on its CPU; a side at "
        f"{SATURATED:.0%} or more is the one that limited throughput (CPU per round trip holds "
        'either way); "others" is the CPU the rest of the machine used during the window, in '
        "cores, from /proc/stat. Figures are medians over repeats, (min-max) beside them.",
        "",
        "Servers (each prints the port it got; `python` is this interpreter):",
        "",
        *[
            f"- {d['name']}: `{d['command']}`" + (f" (skipped: {d['missing']})" if d["missing"] else "")
            for d in echo.get("servers", [])
        ],
        "",
        "![server CPU per round trip](echo_cpu.png)",
        "",
        "![throughput and latency](echo_throughput.png)",
        "",
    ]
    for case in echo["cases"]:
        lines += [f"### {case['case']}", ""]
        rows, notes = [], []
        for name, cell in case["results"].items():
            if cell["skipped"]:
                notes.append(f"{name}: skipped, {cell['skipped']}")
                continue
            rows.append(_echo_row(name, cell))
            notes += [f"{name}: run failed: {e}" for e in cell["errors"]]
        lines += table(ECHO_COLUMNS, rows)
        lines += _saturation(case) + [f"- {n}" for n in notes] + ([""] if notes else [])
    return lines


def _echo_row(name: str, cell: Mapping[str, Any]) -> list[str]:
    s, t = cell["summary"], cell["totals"]
    via = cell["runs"][0].get("via", "") if cell["runs"] else ""
    label = f"{name} ({via})" if via else name
    return [
        label,
        fmt(s.get("server_cpu_us_per_rt"), 2),
        fmt(s.get("rt_per_s"), 0),
        fmt(s.get("mb_per_s"), 2),
        fmt(s.get("p50_us"), 0),
        fmt(s.get("p99_us"), 0),
        fmt(s.get("server_util"), 0, 100) + "%",
        fmt(s.get("client_util"), 0, 100) + "%",
        fmt(s.get("others_cores"), 2),
        f"{t['bytes_verified']:,}",
        str(t["mismatches"]),
        str(t["errors"]),
        str(t["lost"]),
    ]


def _saturation(case: Mapping[str, Any]) -> list[str]:
    sides: dict[str, list[str]] = {}
    for name, cell in case["results"].items():
        if cell.get("saturated"):
            sides.setdefault(cell["saturated"], []).append(name)
    if not sides:
        return []
    parts = [f"{side}: {', '.join(names)}" for side, names in sorted(sides.items())]
    lines = ["Saturated side (the one that limited round trips per second): " + "; ".join(parts) + "."]
    if "neither" in sides:
        lines.append(
            '"neither": both processes were below that during the window: each waited for the '
            'other\'s batch, or for its core while other work on the machine ran (the "others" '
            "column: CPU the rest of the machine used meanwhile, in cores). Round trips per second "
            "then understate what either side can do; CPU per round trip still holds."
        )
    return [*lines, ""]


def _handlers(count: int) -> str:
    return f"{count} handler{'s' if count != 1 else ''}"


def _not_measured(result: Mapping[str, Any], name: str) -> str:
    if name in result.get("skipped", {}):
        return "skipped"
    return str(result["errors"].get(name, "-"))[:80]


def _skip_notes(results: Sequence[Mapping[str, Any]]) -> list[str]:
    notes = {f"- {name}: skipped, {why}" for r in results for name, why in r.get("skipped", {}).items()}
    return [*sorted(notes), ""] if notes else []


def per_count_table(counts: Sequence[Mapping[str, Any]], baseline: str) -> list[str]:
    """One row per subject, one column per handler count: ns, median (min-max), and x ``baseline``."""
    names: list[str] = []
    for entry in counts:
        subjects = [*entry["summary"], *entry["errors"], *entry.get("skipped", {})]
        names += [n for n in subjects if n not in names]
    header = ["implementation"] + [f"{_handlers(e['count'])}: ns (x {baseline})" for e in counts]
    rows = []
    for name in names:
        row = [name]
        for entry in counts:
            s = entry["summary"].get(name)
            r = ratio(median_of(entry["summary"], name), median_of(entry["summary"], baseline))
            row.append(f"{fmt(s, 0)} ({r:.2f}x)" if s and r else _not_measured(entry, name))
        rows.append(row)
    return table(header, rows) + _skip_notes(counts)


def chain_section(chain: Mapping[str, Any]) -> list[str]:
    intro = [
        "## Chain dispatch",
        "",
        "Nanoseconds per dispatch of one event to N handlers (distinct classes with a trivial "
        "`execute`), timed with `timeit` on the thread's CPU clock (`time.thread_time`: time "
        "spent preempted by other work is not counted) in a process pinned to one core, "
        f"{chain['rounds']} samples each, the implementations alternating within every round; "
        "median (min-max). `for-loop` is a function looping over the handlers' bound methods "
        "(the goal's baseline, called like `hub.dispatch(event)`); `for-loop (inline)` is the same "
        "loop written at the call site. `seed loop` instantiates each class and calls `execute`, as "
        "the seed's `run()` does; `pluggy` is a hook call with one implementation per handler; "
        "`eventhub` is `hub.dispatch(event)` after `hub.register(cls)` for each handler class. "
        "Each implementation was first run once on recording handlers to check it calls every "
        "handler exactly once.",
        "",
        "![chain dispatch](chain.png)",
        "",
    ]
    return intro + per_count_table(chain["counts"], "for-loop")


def bus_section(bus: Mapping[str, Any]) -> list[str]:
    emits = bus["emits"]
    call = median_of(emits["summary"], bus["emit_baseline"])
    rows = []
    for name in [*emits["summary"], *emits["errors"], *emits.get("skipped", {})]:
        s = emits["summary"].get(name)
        r = ratio(median_of(emits["summary"], name), call)
        rows.append([name, fmt(s, 0) if s else _not_measured(emits, name), f"{r:.1f}x" if r else "-"])
    lines = [
        "## Event bus",
        "",
        "Nanoseconds per call, timed with `timeit` on the thread's CPU clock in a process pinned "
        "to one core, "
        f"{bus['rounds']} samples each, the subjects alternating within every round; median (min-max). "
        "Each subject was first run once on recording handlers to check it calls every handler exactly "
        "once, in order, and that an emit nobody wants calls none. No reactor runs meanwhile: "
        "while one does, `hub.dispatch` also compares the caller's thread with the reactor's.",
        "",
        "### Delivery to N handlers of one name",
        "",
        "N handler classes with a trivial `execute`, all on `order.paid`. `hub.dispatch` delivers a "
        'prebuilt `Event` to `Handler` subclasses declaring `events = ("order.paid",)`, registered '
        "with `hub.register`; `hub.dispatch (subscribe)` the same to the bound methods given to "
        '`hub.subscribe("order.paid", method)`; `hub.emit` is `hub.emit("order.paid", payload)` to '
        "the registered classes, building the `Event` (id, time) on every call. `for-loop` is a "
        "function looping over the same N bound methods (the goal's baseline, called like "
        "`hub.dispatch(event)`), `for-loop (inline)` that loop written at the call site. "
        "blinker: `Signal.send(event)` with the bound methods connected (`weak=False`); pyee: "
        '`EventEmitter.emit("order.paid", event)` with the bound methods added by `on`.',
        "",
        "![event bus delivery](bus.png)",
        "",
        *per_count_table(bus["counts"], bus["baseline"]),
        "### Emits nobody (or only a pattern) wants",
        "",
        "`hub.emit(name, payload)` on a hub whose one subscriber (a trivial function) listens to "
        "`order.paid` while `nobody.listens` is emitted; to `order.*` while `user.created` is emitted; "
        "and, delivering to that one handler, to `order.paid` or to `order.*` only while `order.paid` "
        f"is emitted (the route is compiled once per name). `{bus['emit_baseline']}` is an empty "
        "Python function called with the same two arguments; the ratio column is against it. "
        'blinker: `send(payload)` of a `Signal` with no receiver; pyee: `emit("nobody.listens", '
        "payload)` with a listener on `order.paid`.",
        "",
        "![event bus emits](bus_emit.png)",
        "",
        *table(["emit", "ns", f"x {bus['emit_baseline']}"], rows),
        *_skip_notes([emits]),
    ]
    return lines


def discovery_section(d: Mapping[str, Any]) -> list[str]:
    rows = [[str(r["dists"]), r["subject"], fmt(r["summary"], 1)] for r in d["rows"]]
    lines = [
        "## Plugin discovery",
        "",
        "Wall time of a whole `eventhub plugins` process with N synthetic, unrelated "
        "distributions (dist-info folders, a third with entry points in other groups) on "
        "PYTHONPATH. Cold: the first run with an empty `EVENTHUB_CACHE_DIR`; warm: the runs after "
        "it. `importlib.metadata`'s `entry_points(group='eventhub.plugins')` and `python -c pass` "
        "are timed alike for reference. Milliseconds, median (min-max).",
        "",
        "![plugin discovery](discovery.png)",
        "",
    ]
    lines += table(["distributions", "command", "ms"], rows)
    lines += [f"- error, {k}: {v}" for k, v in d["errors"].items()]
    return lines + ([""] if d["errors"] else [])


def startup_section(s: Mapping[str, Any]) -> list[str]:
    rows = [
        [r["subject"], fmt(r["summary"], 0), fmt(r["cpu"], 0) if r.get("cpu") else "-"]
        if r["summary"]
        else [r["subject"], f"not run: {r['error']}", "-"]
        for r in s["rows"]
    ]
    lines = [
        "## Start-up",
        "",
        "From spawning the server process to the first connection it accepted and echoed "
        "(the clock stops when the probe has come back), and the CPU time the server had used by "
        "then. `eventhub run` includes plugin discovery and loading the echo plugin. Each server "
        "starts once unmeasured first. As users get it: eventhub from a `pip install --target` of the "
        "checkout (not the benchmark venv's editable install), and every server on the interpreter of "
        "a throwaway venv that sees the benchmark venv's packages without running their `.pth` files "
        "(the editable install's finder costs every Python start ~15 ms). Milliseconds, median (min-max).",
        "",
        "![start-up](startup.png)",
        "",
    ]
    header = ["server", "ms to first echo", "CPU ms to first echo"]
    return lines + table(header, rows) + _imports(s.get("imports"))


def _imports(imports: Mapping[str, Any] | None) -> list[str]:
    """The ``-X importtime`` table of ``eventhub run``: the modules costing most, cumulative."""
    if not imports:
        return []
    if "error" in imports:
        return ["", f"`-X importtime` of `eventhub run`: not measured, {imports['error']}", ""]
    rows = [
        [("&nbsp;" * 2 * r["depth"]) + f"`{r['module']}`", f"{r['cumulative_us'] / 1000:.1f}",
         f"{r['self_us'] / 1000:.1f}"]
        for r in imports["top"]
    ]  # fmt: skip
    total = imports["total_self_us"]
    lines = [
        "",
        f"`eventhub run`'s imports up to the first echo (`-X importtime`, median of {imports['runs']} "
        f"runs): {imports['modules']} modules, {total / 1000:.1f} ms in all (the profiler's overhead "
        "included); the costliest by cumulative time (a module and what it imported), indented by "
        "nesting. Milliseconds.",
        "",
    ]
    return lines + table(["module", "cumulative", "self"], rows)


def memory_section(m: Mapping[str, Any]) -> list[str]:
    rows, notes = [], []
    for name, cell in m["servers"].items():
        if cell["skipped"]:
            notes.append(f"{name}: skipped, {cell['skipped']}")
            continue
        s = cell["summary"]
        rows.append(
            [name, f"{cell['conns']:,}", fmt(s["rss_bytes_per_conn"], 0), fmt(s["traced_bytes_per_conn"], 0)]
        )
        notes += [f"{name}: {e}" for e in cell["errors"]]
    lines = [
        "## Memory per idle connection",
        "",
        f"Bytes per idle connection between {m['base']} and N open connections (target "
        f"{m['target_conns']:,}; select-based servers stop at what `select()` can watch). RSS from "
        "/proc/PID/status in a plain run; Python memory from `tracemalloc` (traced total after "
        "`gc.collect()`) in a separate run under `PYTHONTRACEMALLOC=1`. eventhub runs as "
        "`python -m benchmarks.servers.eventhub_cli run ...`: the `eventhub` entry point with the same "
        "arguments, plus the SIGUSR1 handler that reports the traced total. Median (min-max).",
        "",
        "![memory per connection](memory.png)",
        "",
    ]
    lines += table(["server", "connections", "RSS bytes/conn", "Python bytes/conn"], rows)
    return lines + [f"- {n}" for n in notes] + ([""] if notes else [])


def workers_section(w: Mapping[str, Any]) -> list[str]:
    if "skipped" in w:
        return ["## Workers", "", f"Skipped: {w['skipped']}.", ""]
    rows = []
    for count, cell in w["cells"].items():
        s = cell["summary"]
        rows.append(
            [
                f"--workers {count}",
                fmt(s.get("rt_per_s"), 0),
                fmt(s.get("server_cpu_us_per_rt"), 1),
                fmt(s.get("server_cores"), 2),
                fmt(s.get("client_cpu_us_per_rt"), 1),
                fmt(s.get("others_cores"), 2),
                fmt(s.get("p50_us"), 0),
                fmt(s.get("p99_us"), 0),
                str(len(cell["runs"])) + (f" ({len(cell['errors'])} failed)" if cell["errors"] else ""),
            ]
        )
    r = w["ratios"]
    shown = {k: "-" if v is None else f"{v:.2f}x" for k, v in r.items()}
    lines = [
        "## Workers",
        "",
        f"`eventhub run --workers N` serving an echo whose handler first runs a fixed Python loop "
        f"({w['loops']} iterations, calibrated at the start of the run to ~{w['burn_us']:g} us on "
        "the thread's CPU clock), so that the server, not the load generator, is the limit; the "
        "plugin is written to a temporary folder as an installed distribution. "
        f"`benchmarks.loadgen echo`: {w['conns']} connections, {w['size']} bytes, one request in "
        f"flight on each, {w['warmup_s']} s warm-up, a {w['window_s']} s window; every byte verified. "
        "Nothing pinned (two workers need both cores). Server CPU is the supervisor's and every "
        "worker's, read at the window's edges; \"cores\" is that CPU over the window; "
        '"others" the CPU the rest of the machine used meanwhile. 1 and 2 workers alternate; '
        "medians (min-max).",
        "",
        *table(
            [
                "server",
                "rt/s",
                "server CPU us/rt",
                "server cores",
                "load generator CPU us/rt",
                "others (cores)",
                "p50 us",
                "p99 us",
                "runs",
            ],
            rows,
        ),
        f"Measured ratio of round trips per second: {shown['measured']}. On a 2-core machine the "
        "load generator (a Python process too) needs CPU beside two workers, and any other work on "
        "the machine takes cores from them, which the measured ratio shows as a loss of scaling. "
        "The CPU-time figure does not depend on it: with S1 and S2 the server's CPU per round trip "
        "at 1 and 2 workers and L the load generator's, 2 idle cores serve 1e6 / S1 round trips "
        "per second with one worker (a core each for it and the load generator) and 2e6 / (S2 + L) "
        f"with two: a ratio of 2 S1 / (S2 + L) = {shown['cpu_projected']} "
        f"(S2 / S1 = {shown['server_cpu_per_rt']}: what a round trip costs with two workers against one).",
        "",
    ]
    if r["server_cpu_per_rt"] is not None and r["server_cpu_per_rt"] < 0.95:
        lines += [
            "S2 below S1 does not mean two workers are cheaper: on this machine CPU time per round "
            "trip grows with the other work competing for the cores (see the others column and the "
            "min-max), and the one-worker runs met more of it; the two agree within that spread.",
            "",
        ]
    one_core = median_of(w["cells"]["1"]["summary"], "server_cores")
    if one_core is not None and one_core < SATURATED:
        lines += [
            f"**Not CPU-bound here**: with one worker the server was busy {one_core:.2f} of a core "
            "(below the 90% that marks the limiting side), other work on the machine taking the rest, "
            "so the measured ratio compares how much of the machine each configuration got, not what "
            "a second worker adds; read the CPU-time figure.",
            "",
        ]
    return lines + [f"- --workers {n}: run failed: {e}" for n, c in w["cells"].items() for e in c["errors"]]


def _times(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


NATS_COLUMNS = (
    "subject",
    "events/s",
    "p50 ms",
    "p99 ms",
    "client CPU us/event",
    "nats-server CPU us/event",
    "runs",
)


def nats_section(n: Mapping[str, Any]) -> list[str]:
    if "skipped" in n:
        return ["## NATS", "", f"Skipped: {n['skipped']}.", ""]
    rows = []
    for name, cell in n["cells"].items():
        s = cell["summary"]
        failed = f" ({len(cell['errors'])} failed)" if cell["errors"] else ""
        rows.append(
            [
                name,
                fmt(s.get("events_per_s"), 0),
                fmt(s.get("p50_ms"), 1),
                fmt(s.get("p99_ms"), 1),
                fmt(s.get("client_cpu_us"), 1),
                fmt(s.get("server_cpu_us"), 1),
                f"{len(cell['runs'])}{failed}",
            ]
        )
    raw_js = n["cells"].get("raw jetstream", {}).get("summary", {})
    halves = [
        f"{label} {fmt(raw_js.get(key), 0)} msg/s"
        for label, key in (
            ("pipelined publishes alone", "publish_per_s"),
            ("pull + ack alone", "pull_ack_per_s"),
            ("publishes each awaited", "publish_awaited_per_s"),
        )
    ]
    shown = ", ".join(
        f"{mode}: {_times(v['rate'])} the events/s, {_times(v['cpu'])} the client CPU per event"
        for mode, v in ratios(n).items()
    )
    lines = [
        "## NATS",
        "",
        f"{n['events']:,} events per run, hub A -> nats-server -> hub B, beside nats-py's own loop "
        "doing the same work (raw: one process, a publishing and a subscribing connection, the "
        "bridge's JSON body and headers, parsed on arrival). Core NATS: publish and subscribe. "
        f"JetStream: pipelined publishes (`publish_async`) and a pull consumer fetching {n['fetch']} "
        "at a time, acking each. Hub A's probe emits its events "
        f"{n['chunk']} per pass of its loop. events/s: events over the time from the first one's "
        "`time` (its emission or publication) to the last arrival; latency: arrival minus `time`, "
        "so with every event sent in one burst mostly time spent queued, alike for both. Client "
        "CPU: hub A + hub B, or the raw process; nats-server's CPU beside it (the raw JetStream "
        "process also runs the phases below, counted in the server's figure: per message it handled). "
        "Medians (min-max).",
        "",
        *table(NATS_COLUMNS, rows),
        f"eventhub over nats-py: {shown}.",
        "",
        f"nats-py JetStream, each half alone: {'; '.join(halves)}.",
        "",
        "nats-py core with a constant 7-byte body and no headers, nothing built or parsed: "
        f"{fmt(n['cells'].get('raw core', {}).get('summary', {}).get('plain_per_s'), 0)} msg/s "
        "(the kind of figure nats-py's own benchmarks give; building and parsing the bridge's "
        "headers and JSON, as both sides above do, is most of the difference).",
        "",
    ]
    for name, cell in n["cells"].items():
        lines += [f"- {name}: run failed: {e}" for e in cell["errors"]]
    return lines + ([""] if any(c["errors"] for c in n["cells"].values()) else [])


def http_section(h: Mapping[str, Any]) -> list[str]:
    if "skipped" in h:
        return ["## HTTP", "", f"Skipped: {h['skipped']}.", ""]
    lines = [
        "## HTTP",
        "",
        "Each server in its own process pinned to one core, wrk (one thread) on the other; the "
        "server's CPU time read from /proc around each wrk run. eventhub-http is served by "
        "`eventhub run` with the http plugin and a route plugin (`GET /hello`; a no-op handler "
        "subscribed to `x`); the peers (`benchmarks/servers/http.py`) serve the same routes, "
        f"`POST /events/x` parsing the JSON body `{h['post_body']}` and answering 202 with an id. "
        f"{h['warmup_s']} s warm-up per route, {h['window_s']} s per cell; servers take turns. "
        "Medians (min-max).",
        "",
    ]
    for route in h["routes"]:
        rows = []
        for entry in h["servers"].values():
            if entry["skipped"]:
                rows.append([entry["label"], *["-"] * (4 * len(h["conns"]))])
                continue
            row = [entry["label"]]
            for conns in h["conns"]:
                s = entry["cells"][route][str(conns)]["summary"]
                row += [
                    fmt(s.get("server_cpu_us_per_req"), 1),
                    fmt(s.get("requests_per_s"), 0),
                    fmt(s.get("p50_us"), 0),
                    fmt(s.get("p99_us"), 0),
                ]
            rows.append(row)
        header = ["server"]
        for conns in h["conns"]:
            header += [f"{conns} conn: CPU us/req", "req/s", "p50 us", "p99 us"]
        lines += [f"### {route}", "", *table(header, rows)]
    f = h["fanout"]
    fs = f.get("summary", {})
    lines += [
        "### SSE fan-out",
        "",
        f"eventhub-http (httptools): {f['subscribers']} raw-socket subscribers to `GET /events?match=x`, "
        f"{f['events']:,} events posted to `POST /events/x` (a few in flight): "
        f"{fmt(fs.get('events_per_s'), 0)} events/s delivered, "
        f"{fmt(fs.get('server_cpu_us_per_delivery'), 2)} us of server CPU per delivery.",
        "",
    ]
    failed = [
        f"- {entry['label']} {route} x{conns}: {error}"
        for entry in h["servers"].values()
        for route, cells in entry["cells"].items()
        for conns, cell in cells.items()
        for error in cell["errors"]
    ]
    failed += [f"- {entry['label']}: {error}" for entry in h["servers"].values() for error in entry["errors"]]
    failed += [f"- {entry['label']}: skipped, {entry['skipped']}" for entry in h["servers"].values()
               if entry["skipped"]]  # fmt: skip
    failed += [f"- SSE fan-out: {error}" for error in f["errors"]]
    return lines + failed + ([""] if failed else [])


SECTIONS = (
    ("echo", echo_section),
    ("chain", chain_section),
    ("bus", bus_section),
    ("discovery", discovery_section),
    ("startup", startup_section),
    ("memory", memory_section),
    ("workers", workers_section),
    ("nats", nats_section),
    ("http", http_section),
)


def markdown(results: Mapping[str, Any], plots_note: str | None) -> str:
    lines = [
        "# eventhub benchmarks",
        "",
        f"Generated by `{COMMAND}` (see `benchmarks/__main__.py`); raw numbers in "
        "[results.json](results.json). Every peer is measured in the same run as eventhub, "
        "alternately, on the same machine; a peer that is not installed is skipped with a note.",
        "",
    ]
    lines += machine_section(results) + goals_section(results["goals"])
    if plots_note:
        lines += [f"Plots: {plots_note}", ""]
    for key, section in SECTIONS:
        if key in results:
            lines += section(results[key])
    if results.get("notes"):
        lines += ["## Notes", ""] + [f"- {n}" for n in results["notes"]] + [""]
    lines += [
        "## Reproduce",
        "",
        "```sh",
        "pip install -e '.[bench]'",
        f"{COMMAND}                # every scenario: about 5 minutes on 2 cores",
        f"{COMMAND} --quick        # seconds (writes to benchmarks/results/quick)",
        f"{COMMAND} --only echo,chain --repeat 5 --out /tmp/bench",
        f"{COMMAND} --render-only  # rebuild this page and the plots from results.json",
        "```",
        "",
        "The echo plugin is used as installed; when the environment lacks it, the run pip-installs "
        "`plugins/echo` into a temporary folder first. Run on an otherwise idle machine: other work "
        'shows in the load average and in each echo window\'s "others" column.',
        "",
    ]
    return "\n".join(lines)


def text_table(results: Mapping[str, Any]) -> str:
    """The summary printed at the end: every goal, then server CPU per round trip per case."""
    out = ["", "GOALS"]
    width = max((len(g["goal"]) for g in results["goals"]), default=10)
    for g in results["goals"]:
        value = "-" if g["value"] is None else f"{g['value']:.2f}"
        out.append(f"  {g['goal']:<{width}}  {value:>8} {g['limit']:<12} {g['status']}")
    echo = results.get("echo")
    if echo:
        out += ["", "ECHO: server CPU us per round trip, median (min-max)"]
        for case in echo["cases"]:
            out.append(f"  {case['case']}")
            for name, cell in case["results"].items():
                text = cell["skipped"] or fmt(cell.get("summary", {}).get("server_cpu_us_per_rt"), 2)
                if cell["errors"]:
                    text += f"  [{len(cell['errors'])} failed: {cell['errors'][0][:60]}]"
                out.append(f"    {name:<16} {text}")
    return "\n".join(out) + "\n"
