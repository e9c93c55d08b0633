"""``python -m benchmarks``: run the scenarios, print a table, write JSON, Markdown and plots.

    python -m benchmarks                     # every scenario, about 10 minutes on 2 cores
    python -m benchmarks --quick             # a tiny configuration that runs in seconds
    python -m benchmarks --only echo,chain --repeat 5 --out /tmp/bench
    python -m benchmarks --render-only       # rebuild report and plots from results.json
    python -m benchmarks --only workers,nats --merge   # re-measure these, keep the rest of the report

Results go to ``--out`` (default docs/benchmarks; with ``--quick``,
benchmarks/results/quick so that a smoke run never overwrites the report):
``results.json`` (every raw figure), ``README.md`` (the report) and PNG plots.
A scenario that cannot run (an eventhub piece missing, a peer not installed)
is recorded as an error or a skip in the report; it never stops the others.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import bus, chain, discovery, echo, goals, http, memory, nats, plots, report, startup, workers
from benchmarks._config import DEFAULT, QUICK, SCENARIOS, Config
from benchmarks._machine import describe, load_average
from benchmarks._proc import REPO_ROOT, raise_nofile
from benchmarks._progress import Progress
from benchmarks._servers import EchoPluginInstall, ServerSpec, all_servers

DEFAULT_OUT = REPO_ROOT / "docs" / "benchmarks"
QUICK_OUT = REPO_ROOT / "benchmarks" / "results" / "quick"
NEEDS_SERVERS = {"echo", "startup", "memory"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Measure eventhub beside a bare loop and its peers; write a report with plots.",
    )
    parser.add_argument("--quick", action="store_true", help="tiny configuration for a smoke run (seconds)")
    parser.add_argument(
        "--only",
        default=",".join(SCENARIOS),
        help=f"comma-separated scenarios to run (default: all of {','.join(SCENARIOS)})",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"output folder (default {DEFAULT_OUT.relative_to(REPO_ROOT)}; "
        f"{QUICK_OUT.relative_to(REPO_ROOT)} with --quick)",
    )
    parser.add_argument("--repeat", type=int, default=None, help="repeats of each measurement")
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="measure nothing: rebuild the report, goals and plots from OUT/results.json",
    )
    parser.add_argument(
        "--merge",
        action="store_true",
        help="measure the --only scenarios and put them into OUT/results.json in place of that run's, "
        "keeping its other scenarios (a note says when each part was measured)",
    )
    args = parser.parse_args(argv)
    args.only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in args.only if s not in SCENARIOS]
    if unknown or not args.only:
        parser.error(
            f"--only: unknown scenario {', '.join(map(repr, unknown)) or '(none given)'}; "
            f"choose from {', '.join(SCENARIOS)}"
        )
    if args.repeat is not None and args.repeat < 1:
        parser.error(f"--repeat must be at least 1, not {args.repeat}")
    return args


def config_for(args: argparse.Namespace) -> Config:
    base = QUICK if args.quick else DEFAULT
    return dataclasses.replace(base, repeat=args.repeat or base.repeat)


def server_notes(servers: list[ServerSpec], plugin: EchoPluginInstall) -> list[str]:
    notes = [f"{s.label}: skipped, {s.missing}" for s in servers if s.missing and not s.is_eventhub]
    eventhub = [s for s in servers if s.is_eventhub]
    if eventhub and eventhub[0].missing:
        notes.append(f"eventhub echo: not measured, {eventhub[0].missing}")
    elif eventhub:
        how = eventhub[0].via
        notes.append(
            f"eventhub echo served through `{how}`"
            + (
                " (echo plugin installed for this run into a temporary --target folder)"
                if plugin.path
                else ""
            )
        )
        if plugin.error:
            notes.append(f"echo plugin unavailable ({plugin.error}); eventhub served by a reactor script")
    return notes


def run_scenarios(cfg: Config, only: list[str], progress: Progress) -> dict[str, Any]:
    results: dict[str, Any] = {"notes": []}
    plugin = EchoPluginInstall()
    try:
        servers = all_servers(plugin) if NEEDS_SERVERS & set(only) else []
        results["notes"] += server_notes(servers, plugin)
        runners: dict[str, Callable[[], dict[str, Any]]] = {
            "echo": lambda: echo.run(cfg, servers, progress),
            "chain": lambda: chain.run(cfg, progress),
            "bus": lambda: bus.run(cfg, progress),
            "discovery": lambda: discovery.run(cfg, progress),
            "startup": lambda: startup.run(cfg, servers, progress),
            "memory": lambda: memory.run(cfg, servers, progress),
            "workers": lambda: workers.run(cfg, progress),
            "nats": lambda: nats.run(cfg, progress),
            "http": lambda: http.run(cfg, progress),
        }
        for name in only:
            try:
                results[name] = runners[name]()
            except Exception as exc:  # one broken scenario must not lose the others' results
                results["notes"].append(f"scenario {name} crashed: {type(exc).__name__}: {exc}")
                progress.note(f"{name} crashed:\n{traceback.format_exc()}")
    finally:
        plugin.cleanup()
    return results


def write_outputs(results: dict[str, Any], out: Path, progress: Progress) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1, sort_keys=False) + "\n")
    plots_note = plots.available()
    if plots_note is None:
        try:
            drawn = plots.draw_all(results, out)
            progress.note(f"plots written for: {', '.join(drawn)}")
        except Exception as exc:  # a plot must never cost the numbers
            plots_note = f"not drawn: {type(exc).__name__}: {exc}"
    (out / "README.md").write_text(report.markdown(results, plots_note))


def render_only(out: Path) -> int:
    """Rebuild README.md, the goals and the plots from an earlier run's results.json."""
    source = out / "results.json"
    try:
        results = json.loads(source.read_text())
    except (OSError, ValueError) as exc:
        sys.stderr.write(f"--render-only: cannot read {source}: {exc}\n")
        return 2
    results["goals"] = goals.evaluate(results)
    write_outputs(results, out, Progress())
    sys.stdout.write(report.text_table(results))
    return 0


def merge_into(out: Path, fresh: dict[str, Any], only: list[str]) -> dict[str, Any] | None:
    """An earlier run's results with ``only`` replaced by ``fresh``'s, or None if there is none."""
    try:
        merged: dict[str, Any] = json.loads((out / "results.json").read_text())
    except (OSError, ValueError) as exc:
        sys.stderr.write(f"--merge: cannot read {out / 'results.json'}: {exc}; writing this run alone\n")
        return None
    for name in only:
        merged[name] = fresh[name]
    loads = fresh["load_average"]
    commit = fresh["machine"]["commit"] or "unknown"
    when = (
        f"measured in a later run (started {fresh['started']}, commit {commit}, "
        f"{fresh['duration_s'] / 60:.1f} min, load average {loads['start']} / {loads['end']}, "
        f"{fresh['config']['repeat']} repeat(s)); the machine section describes the earlier run"
    )
    replaced = tuple(f"{_MERGED}{name} " for name in only)
    notes = [
        *(n for n in merged.get("notes", []) if not n.startswith(replaced)),
        *(f"{_MERGED}{name} {when}" for name in only),
        *fresh["notes"],
    ]
    merged["notes"] = list(dict.fromkeys(notes))  # a note both runs wrote is said once
    merged["config"]["scenarios"] = list(dict.fromkeys([*merged["config"].get("scenarios", []), *only]))
    for key, value in fresh["config"].items():
        merged["config"].setdefault(key, value)
    return merged


_MERGED = "merged: "


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = config_for(args)
    out: Path = args.out or (QUICK_OUT if args.quick else DEFAULT_OUT)
    if args.render_only:
        return render_only(out)
    raise_nofile()
    progress = Progress()
    started = time.time()
    progress.note(f"benchmarks: {', '.join(args.only)}; {cfg.repeat} repeat(s); output in {out}")
    results: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(started)),
        "config": {**dataclasses.asdict(cfg), "scenarios": args.only},
        "machine": describe(),
    }
    load_start = results["machine"]["load_average_start"]
    results.update(run_scenarios(cfg, args.only, progress))
    results["duration_s"] = time.time() - started
    results["load_average"] = {"start": load_start, "end": load_average()}
    took = results["duration_s"]
    if args.merge:
        results = merge_into(out, results, args.only) or results
    results["goals"] = goals.evaluate(results)
    write_outputs(results, out, progress)
    sys.stdout.write(report.text_table(results))
    progress.note(f"done in {took:.0f} s: {out / 'README.md'}, {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
