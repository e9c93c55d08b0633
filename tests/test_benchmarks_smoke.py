"""The benchmark harness in its tiny configuration, so that it cannot rot.

Runs ``python -m benchmarks --quick`` for real (subprocess servers on
127.0.0.1, the load generator, every scenario) and checks the shape of what it
wrote: numbers where a subject ran, a reason where it did not, no mismatched or
lost byte anywhere. No timing is asserted: performance lives in the report.
Also checks that the load generator's byte verification can fail.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
SCENARIOS = ("echo", "chain", "bus", "discovery", "startup", "memory", "workers", "nats", "http")


def _run_benchmarks(*args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path_factory.mktemp("bench")
    return _run_benchmarks("--quick", "--out", str(out)), out


@pytest.fixture(scope="module")
def results(quick_run: tuple[subprocess.CompletedProcess[str], Path]) -> dict[str, Any]:
    done, out = quick_run
    assert done.returncode == 0, done.stderr[-2000:]
    data: dict[str, Any] = json.loads((out / "results.json").read_text())
    return data


def _have(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def test_every_scenario_ran_and_the_report_was_written(
    quick_run: tuple[subprocess.CompletedProcess[str], Path], results: dict[str, Any]
) -> None:
    done, out = quick_run
    for scenario in SCENARIOS:
        assert scenario in results, results.get("notes")
    readme = (out / "README.md").read_text()
    assert "## Goals" in readme and "## Machine" in readme and results["machine"]["python"] in readme
    assert "GOALS" in done.stdout  # the table printed at the end
    assert "echo" in done.stderr and "/" in done.stderr  # the progress lines
    assert {g["status"] for g in results["goals"]} <= {"PASS", "MISS", "NO DATA"}
    if _have("matplotlib"):
        assert (out / "echo_cpu.png").stat().st_size > 0


def _echo_cells(results: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for case in results["echo"]["cases"]:
        yield from case["results"].items()


def test_echo_verified_every_byte(results: dict[str, Any]) -> None:
    cells = dict(_echo_cells(results))
    expected = {"bare", "asyncio"}
    if _have("eventhub.reactor"):
        expected |= {"eventhub-epoll", "eventhub-poll", "eventhub-select"}
    for name, cell in cells.items():
        if cell["skipped"]:
            assert not cell["runs"] and name not in expected
            continue
        if name in expected:
            assert cell["runs"], (name, cell["errors"])
        for run in cell["runs"]:
            assert run["round_trips"] > 0 and run["server_cpu_s"] >= 0
            assert run["bytes_verified"] == run["round_trips_total"] * run["size"]
            assert (run["mismatches"], run["errors"], run["lost"]) == (0, 0, 0), (name, run)


def test_chain_discovery_startup_memory_have_numbers(results: dict[str, Any]) -> None:
    for entry in results["chain"]["counts"]:
        assert entry["summary"]["for-loop"]["median"] > 0
        assert entry["summary"]["pluggy"]["median"] > 0
        assert "eventhub" in entry["summary"], entry["errors"]
    rows = {(r["dists"], r["subject"]): r["summary"] for r in results["discovery"]["rows"]}
    for dists in results["discovery"]["dists"]:
        assert rows[(dists, "importlib.metadata entry_points")]["median"] > 0
        assert rows[(dists, "eventhub plugins (warm)")], results["discovery"]["errors"]
    startup = {r["subject"]: r for r in results["startup"]["rows"]}
    assert startup["bare python -c server"]["summary"]["median"] > 0
    bare_memory = results["memory"]["servers"]["bare"]
    assert bare_memory["summary"]["traced_bytes_per_conn"] is not None, bare_memory["errors"]


def test_the_bus_measured_every_subject_or_said_why(results: dict[str, Any]) -> None:
    from benchmarks import bus

    bus_results = results["bus"]
    assert [entry["count"] for entry in bus_results["counts"]] == [1, 3]
    for entry in [*bus_results["counts"], bus_results["emits"]]:
        assert not entry["errors"], entry["errors"]  # a subject that miscounted its handlers fails here
    for entry in bus_results["counts"]:
        assert set(entry["summary"]) | set(entry["skipped"]) == set(bus.DELIVERY)
        assert entry["summary"][bus.DISPATCH]["median"] > 0
    assert set(bus_results["emits"]["summary"]) | set(bus_results["emits"]["skipped"]) == set(bus.EMITS)
    goals = [g for g in results["goals"] if g["goal"].startswith("bus")]
    assert len(goals) == 2 + 2 and all(g["status"] in ("PASS", "MISS") for g in goals)


def test_workers_served_every_round_trip_with_one_and_two_workers(results: dict[str, Any]) -> None:
    workers = results["workers"]
    if "skipped" in workers:
        assert workers["skipped"]
        return
    for count in ("1", "2"):
        cell = workers["cells"][count]
        assert cell["runs"] and not cell["errors"], cell["errors"]
        for run in cell["runs"]:
            assert run["round_trips"] > 0 and (run["mismatches"], run["errors"], run["lost"]) == (0, 0, 0)
            assert run["server_cpu_us_per_rt"] > 0
    goals = [g for g in results["goals"] if g["goal"].startswith("workers")]
    assert len(goals) == 2 and all(g["status"] in ("PASS", "MISS") for g in goals)


def test_nats_measured_both_sides_or_said_why(results: dict[str, Any]) -> None:
    nats = results["nats"]
    if "skipped" in nats:
        assert "nats" in nats["skipped"]
        return
    for name, cell in nats["cells"].items():
        assert cell["runs"] and not cell["errors"], (name, cell["errors"])
        assert all(run["received"] == nats["events"] for run in cell["runs"])
        assert cell["summary"]["events_per_s"]["median"] > 0
    goals = [g for g in results["goals"] if g["goal"].startswith("nats")]
    assert len(goals) == 2 and all(g["status"] in ("PASS", "MISS") for g in goals)


def test_a_missing_nats_server_skips_the_nats_scenario(monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmarks import nats
    from benchmarks._config import QUICK
    from benchmarks._progress import Progress

    monkeypatch.setattr(nats, "server_binary", lambda: None)
    assert "nats" in (nats.missing() or "")  # nats-py, or else nats-server, is not installed
    result = nats.run(QUICK, Progress(stream=io.StringIO()))
    assert set(result) == {"skipped"}
    assert goals_of({"nats": result}) == []


def goals_of(results: dict[str, Any]) -> list[dict[str, Any]]:
    from benchmarks import goals

    found: list[dict[str, Any]] = goals.evaluate(results)
    return found


def test_workers_and_nats_goals_show_a_miss_and_never_pass_without_numbers() -> None:
    def cell(**medians: float) -> dict[str, Any]:
        return {"summary": _summary(**medians), "runs": [], "errors": []}

    one = cell(rt_per_s=10_000.0, server_cpu_us_per_rt=60.0, client_cpu_us_per_rt=15.0)
    two = cell(rt_per_s=15_000.0, server_cpu_us_per_rt=55.0, client_cpu_us_per_rt=15.0)
    found = goals_of({"workers": {"cells": {"1": one, "2": two}}})
    assert [g["status"] for g in found] == ["MISS", "PASS"]  # 1.5x measured; 2 x 60 / (55 + 15) from CPU
    assert found[1]["value"] == pytest.approx(2 * 60 / 70)
    cells = {"raw core": cell(events_per_s=100.0), "eventhub core": cell(events_per_s=81.0)}
    found = goals_of({"nats": {"cells": cells}})
    assert [g["status"] for g in found] == ["PASS", "NO DATA"]


def test_merge_replaces_only_the_scenarios_measured(tmp_path: Path) -> None:
    from benchmarks.__main__ import merge_into

    notes = ["kept", "merged: nats measured later (...)", "merged: workers measured later (...)"]
    earlier = {"started": "then", "notes": notes, "config": {"scenarios": ["echo"]}, "echo": {"old": 1}}
    (tmp_path / "results.json").write_text(json.dumps(earlier))
    fresh = {
        "started": "now",
        "notes": [],
        "config": {"repeat": 5, "scenarios": ["workers"]},
        "machine": {"commit": "abc"},
        "duration_s": 60.0,
        "load_average": {"start": [1.0], "end": [2.0]},
        "workers": {"new": 2},
        "echo": {"ignored": 3},
    }
    merged = merge_into(tmp_path, fresh, ["workers"])
    assert merged is not None
    assert merged["echo"] == {"old": 1} and merged["workers"] == {"new": 2}
    assert merged["config"]["scenarios"] == ["echo", "workers"]
    assert merged["notes"][:2] == notes[:2]  # the note of the nats merge stays; the workers one is new
    assert merged["notes"][2].startswith("merged: workers measured in a later run (started now, commit abc")
    assert merge_into(tmp_path / "nothing", fresh, ["workers"]) is None


def test_an_unknown_scenario_is_a_usage_error() -> None:
    done = _run_benchmarks("--only", "echo,nonesuch")
    assert done.returncode == 2
    assert "nonesuch" in done.stderr and "Traceback" not in done.stderr


class _FaultyEcho:
    """A threaded echo server on 127.0.0.1 port 0 whose replies go wrong after the first."""

    def __init__(self, fault: str) -> None:
        self.fault = fault  # "corrupt": flip a byte of each later reply; "silent": stop replying
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> _FaultyEcho:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
        self.listener.close()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.sendall(conn.recv(64))  # the load generator's first, connecting round trip
            while data := conn.recv(65536):
                if self.fault == "corrupt":
                    conn.sendall(bytes([data[0] ^ 0xFF]) + data[1:])


def _loadgen_against(fault: str) -> dict[str, Any]:
    with _FaultyEcho(fault) as server:
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.loadgen", "echo", "--port", str(server.port),
             "--server-pid", str(os.getpid()), "--conns", "2", "--size", "64",
             "--warmup", "0", "--duration", "0.1", "--drain", "0.3"],
            cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_the_load_generator_catches_a_corrupted_echo() -> None:
    result = _loadgen_against("corrupt")
    assert result["mismatches"] > 0
    assert result["bytes_verified"] == 2 * 64  # only the two connecting round trips were right


def test_the_load_generator_counts_replies_that_never_come() -> None:
    result = _loadgen_against("silent")
    assert result["lost"] == 2 and not result["drained"]
    assert result["round_trips"] == 0


def test_a_missing_peer_is_skipped_with_a_note(monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmarks import _servers, echo

    # Pretend uvloop is missing and Twisted present, whatever this machine has.
    monkeypatch.setattr(_servers, "_installed", lambda module: module != "uvloop")
    specs = {s.name: s for s in _servers.peer_servers()}
    assert echo.skip_reason(specs["uvloop"], 1) == "uvloop is not installed (pip install uvloop)"
    assert echo.skip_reason(specs["bare"], 1) is None
    assert "FD_SETSIZE" in (echo.skip_reason(specs["twisted-select"], 5000) or "")


def _echo_results(eventhub_cpu: float | None, bare_cpu: float) -> dict[str, Any]:
    def cell(cpu: float | None) -> dict[str, Any]:
        summary = (
            {} if cpu is None else {"server_cpu_us_per_rt": {"median": cpu, "min": cpu, "max": cpu, "n": 1}}
        )
        return {"summary": summary, "runs": [], "errors": [], "totals": {}, "skipped": None}

    results = {"eventhub-epoll": cell(eventhub_cpu), "bare": cell(bare_cpu)}
    return {"echo": {"cases": [{"case": "100 x 64 B", "results": results}]}}


def test_goals_show_a_miss_and_never_pass_without_numbers() -> None:
    from benchmarks import goals

    def status(results: dict[str, Any]) -> str:
        goal = next(g for g in goals.echo_goals(results) if "(epoll) CPU per round trip <= 1.1x" in g["goal"])
        return str(goal["status"])

    assert status(_echo_results(5.0, 5.0)) == "PASS"
    assert status(_echo_results(5.6, 5.0)) == "MISS"
    assert status(_echo_results(None, 5.0)) == "NO DATA"


def test_a_missing_bus_peer_is_skipped_with_a_note(monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmarks import bus

    monkeypatch.setitem(sys.modules, "pyee", None)  # "import pyee" now raises ImportError
    emits = bus.measure_emits(rounds=1, sample=0.0001)
    assert "pyee" in emits["skipped"]["pyee emit, no listener"]
    assert "pyee emit, no listener" not in emits["ns"] and not emits["errors"]
    assert emits["ns"][bus.UNSUBSCRIBED]


def _summary(**medians: float) -> dict[str, Any]:
    return {name: {"median": m, "min": m, "max": m, "n": 1} for name, m in medians.items()}


def test_bus_goals_show_each_count_and_a_miss() -> None:
    from benchmarks import bus, goals

    counts = [
        {"count": 1, "summary": _summary(**{bus.BASELINE: 60.0, bus.DISPATCH: 140.0})},
        {"count": 100, "summary": _summary(**{bus.BASELINE: 2400.0, bus.DISPATCH: 2450.0})},
    ]
    emits = {"summary": _summary(**{bus.UNSUBSCRIBED: 120.0, bus.UNSUBSCRIBED_PATTERN: 310.0})}
    found = goals.bus_goals({"bus": {"counts": counts, "emits": emits}})
    assert [g["status"] for g in found] == ["MISS", "PASS", "PASS", "MISS"]
    assert found[2]["value"] == pytest.approx(0.12)


def test_http_measured_every_server_and_route_or_said_why(results: dict[str, Any]) -> None:
    http = results["http"]
    if "skipped" in http:
        assert "wrk" in http["skipped"]
        return
    for name, entry in http["servers"].items():
        assert not entry["errors"], (name, entry["errors"])
        if entry["skipped"]:
            assert not name.startswith("eventhub-"), entry["skipped"]
            continue
        for route in ("GET /hello", "POST /events/x"):
            cell = entry["cells"][route]["10"]
            assert cell["runs"] and not cell["errors"], (name, route, cell["errors"])
            assert all(run["requests"] > 0 and run["server_cpu_us_per_req"] > 0 for run in cell["runs"])
    fanout = http["fanout"]
    assert fanout["runs"] and not fanout["errors"], fanout["errors"]
    assert all(run["posted"] == fanout["events"] for run in fanout["runs"])
    goals = [g for g in results["goals"] if g["goal"].startswith("http")]
    assert len(goals) == 6 and all(g["status"] in ("PASS", "MISS", "NO DATA") for g in goals)


def test_a_missing_wrk_skips_the_http_scenario(monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmarks import http
    from benchmarks._config import QUICK
    from benchmarks._progress import Progress

    monkeypatch.setattr("benchmarks.http.shutil.which", lambda name: None)
    result = http.run(QUICK, Progress(stream=io.StringIO()))
    assert result == {"skipped": "wrk is not installed (apt-get install wrk)"}
    assert goals_of({"http": result}) == []


def test_http_goals_compare_cpu_per_request_and_show_a_miss() -> None:
    def server(**by_route: float) -> dict[str, Any]:
        cells = {r: {"50": {"summary": _summary(server_cpu_us_per_req=cpu)}} for r, cpu in by_route.items()}
        return {"cells": cells}

    servers = {
        "eventhub-httptools": server(**{"GET /hello": 20.0}),
        "uvicorn-httptools": server(**{"GET /hello": 25.0}),
        "twisted": server(**{"GET /hello": 30.0}),
        "eventhub-h11": server(**{"GET /hello": 90.0}),
    }
    found = goals_of({"http": {"routes": ["GET /hello"], "goal_conns": 50, "servers": servers}})
    assert [g["status"] for g in found] == ["PASS", "MISS", "NO DATA"]  # 0.8x; 0.67x; no uvicorn-h11
    assert found[1]["value"] == pytest.approx(20 / 30)


def test_wrk_report_is_read_with_its_units() -> None:
    from benchmarks.http import parse_wrk

    out = """Running 2s test @ http://127.0.0.1:1/hello
  Latency Distribution
     50%  210.00us
     75%  300.00us
     90%  500.00us
     99%    1.52ms
  81234 requests in 2.00s, 10.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:  40617.00
"""
    found = parse_wrk(out)
    assert found["requests"] == 81234 and found["requests_per_s"] == 40617.0 and found["seconds"] == 2.0
    assert (found["p50_us"], found["p99_us"]) == (210.0, 1520.0)
    assert (found["non_2xx"], found["socket_errors"]) == (4, 3)
