"""PNG plots of the results (matplotlib, the optional ``bench`` extra; skipped when missing)."""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks._stats import median_of

Errors = tuple[list[float], list[float]]


def available() -> str | None:
    """``None`` when plots can be drawn, else the note the report shows instead."""
    if importlib.util.find_spec("matplotlib") is None:
        return "not drawn: matplotlib is not installed (pip install -e '.[bench]')"
    return None


def draw_all(results: Mapping[str, Any], out: Path) -> list[str]:
    """Draw every plot whose scenario ran; return the file names written."""
    import matplotlib

    matplotlib.use("Agg")
    drawers: dict[str, Callable[[Mapping[str, Any], Path], None]] = {
        "echo": _echo,
        "chain": _chain,
        "bus": _bus,
        "discovery": _discovery,
        "startup": _startup,
        "memory": _memory,
    }
    written = []
    for key, draw in drawers.items():
        if key in results:
            draw(results[key], out)
            written.append(key)
    return written


def _spread(summaries: Sequence[Mapping[str, Any] | None]) -> tuple[list[float], Errors]:
    med = [s["median"] if s else math.nan for s in summaries]  # nan: no bar where nothing ran
    low = [s["median"] - s["min"] if s else 0.0 for s in summaries]
    high = [s["max"] - s["median"] if s else 0.0 for s in summaries]
    return med, (low, high)


def _grouped(
    ax: Any, groups: Sequence[str], series: Mapping[str, Sequence[Mapping[str, Any] | None]]
) -> None:
    """Bars: one group per x label, one bar per series, min-max as error bars."""
    width = 0.8 / max(1, len(series))
    for i, (name, summaries) in enumerate(series.items()):
        med, err = _spread(summaries)
        xs = [g + (i - (len(series) - 1) / 2) * width for g in range(len(groups))]
        ax.bar(xs, med, width, yerr=err, capsize=2, label=name)
    ax.set_xticks(range(len(groups)), groups)
    ax.grid(axis="y", alpha=0.3)


def _log_axis(ax: Any, minor_labels: bool = True) -> None:
    """A log y axis labelled with plain numbers (4, 6, 10, 20) rather than powers of ten."""
    from matplotlib.ticker import FormatStrFormatter, NullFormatter

    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    # Minor labels help over a decade or two; over more they pile up.
    ax.yaxis.set_minor_formatter(FormatStrFormatter("%g") if minor_labels else NullFormatter())


def _save(fig: Any, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)


def _echo_series(echo: Mapping[str, Any], field: str) -> dict[str, list[Mapping[str, Any] | None]]:
    names: list[str] = []
    for case in echo["cases"]:
        names += [n for n in case["results"] if n not in names]
    return {
        n: [case["results"].get(n, {}).get("summary", {}).get(field) for case in echo["cases"]] for n in names
    }


def _echo(echo: Mapping[str, Any], out: Path) -> None:
    import matplotlib.pyplot as plt

    groups = [c["case"] for c in echo["cases"]]
    fig, ax = plt.subplots(figsize=(11, 4.8))
    _grouped(ax, groups, _echo_series(echo, "server_cpu_us_per_rt"))
    _log_axis(ax)
    ax.set_ylabel("server CPU per round trip (us, log), lower is better")
    ax.set_title("Echo: server CPU per round trip (median, min-max)")
    ax.legend(fontsize=8, ncol=4)
    _save(fig, out / "echo_cpu.png")

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 8))
    _grouped(top, groups, _echo_series(echo, "rt_per_s"))
    top.set_ylabel("round trips per second")
    top.set_title("Echo: throughput (higher is better)")
    top.legend(fontsize=8, ncol=4)
    _grouped(bottom, groups, _echo_series(echo, "p99_us"))
    _log_axis(bottom, minor_labels=False)
    bottom.set_ylabel("p99 latency (us, log)")
    bottom.set_title("Echo: p99 latency (lower is better)")
    _save(fig, out / "echo_throughput.png")


def _per_count(counts: Sequence[Mapping[str, Any]], title: str, path: Path) -> None:
    """ns per delivery against the number of handlers, one line per subject, log-log."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    names: list[str] = []
    for entry in counts:
        names += [n for n in entry["summary"] if n not in names]
    for name in names:
        pts = [(e["count"], median_of(e["summary"], name)) for e in counts]
        xs = [c for c, v in pts if v is not None]
        ys = [v for c, v in pts if v is not None]
        ax.plot(xs, ys, marker="o", label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("handlers")
    ax.set_ylabel("ns per dispatch (median, log)")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    _save(fig, path)


def _chain(chain: Mapping[str, Any], out: Path) -> None:
    _per_count(chain["counts"], "Chain dispatch: lower is better", out / "chain.png")


def _bus(bus: Mapping[str, Any], out: Path) -> None:
    _per_count(bus["counts"], "Event bus: one event to N handlers, lower is better", out / "bus.png")
    emits = bus["emits"]["summary"]
    _horizontal(
        list(emits),
        list(emits.values()),
        "ns per call (median, min-max)",
        "Event bus: emits nobody (or a pattern) wants; lower is better",
        out / "bus_emit.png",
        limit=300.0,
        limit_unit=" ns (hub.emit, nobody subscribes)",
    )


def _discovery(d: Mapping[str, Any], out: Path) -> None:
    import matplotlib.pyplot as plt

    subjects: list[str] = []
    for r in d["rows"]:
        if r["subject"] not in subjects:
            subjects.append(r["subject"])
    groups = [f"{n} distributions" for n in d["dists"]]
    series = {
        s: [
            next((r["summary"] for r in d["rows"] if r["subject"] == s and r["dists"] == n), None)
            for n in d["dists"]
        ]
        for s in subjects
    }
    fig, ax = plt.subplots(figsize=(9, 4.8))
    _grouped(ax, groups, series)
    ax.set_ylabel("wall time of the process (ms)")
    ax.set_title("Plugin discovery (median, min-max): lower is better")
    ax.legend(fontsize=8)
    _save(fig, out / "discovery.png")


def _horizontal(
    labels: Sequence[str],
    summaries: Sequence[Mapping[str, Any] | None],
    xlabel: str,
    title: str,
    path: Path,
    limit: float | None = None,
    limit_unit: str = "",
) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 0.5 * len(labels) + 1.5))
    med, err = _spread(summaries)
    ax.barh(range(len(labels)), med, xerr=err, capsize=2, color="tab:blue")
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    if limit is not None:
        ax.axvline(limit, color="tab:red", linestyle="--", label=f"goal: {limit:g}{limit_unit}")
        ax.legend(fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    _save(fig, path)


def _startup(s: Mapping[str, Any], out: Path) -> None:
    rows = s["rows"]
    _horizontal(
        [r["subject"] for r in rows],
        [r["summary"] for r in rows],
        "ms from spawn to first echo",
        "Start-up (median, min-max): lower is better",
        out / "startup.png",
    )


def _memory(m: Mapping[str, Any], out: Path) -> None:
    import matplotlib.pyplot as plt

    names = [n for n, c in m["servers"].items() if not c["skipped"]]
    series = {
        "RSS": [m["servers"][n]["summary"]["rss_bytes_per_conn"] for n in names],
        "Python (tracemalloc)": [m["servers"][n]["summary"]["traced_bytes_per_conn"] for n in names],
    }
    fig, ax = plt.subplots(figsize=(10, 4.8))
    _grouped(ax, names, series)
    ax.axhline(1024, color="tab:red", linestyle="--", label="goal: 1 KiB Python memory (eventhub)")
    ax.set_ylabel("bytes per idle connection")
    ax.set_title("Memory per idle connection (median, min-max): lower is better")
    ax.tick_params(axis="x", labelsize=8)
    ax.legend(fontsize=8)
    _save(fig, out / "memory.png")
