"""Chain dispatch, measured in its own process: ``python -m benchmarks.chain_worker --count N``.

Every implementation calls the same N handlers (distinct classes, one trivial
``execute`` each) with one event. Each is timed with ``timeit`` on a statement
compiled into timeit's own loop, on the thread's CPU clock, ``--rounds`` times,
the implementations alternating within every round (``benchmarks._timing``).
Before timing, each implementation is run once with recording handlers to
prove it calls every handler exactly once, in order.
Prints one JSON object: nanoseconds per dispatch for each implementation, or
the error that kept it from running.
"""

from __future__ import annotations

import argparse
import json
import sys
import types
from collections.abc import Callable
from typing import Any

import pluggy

from benchmarks._timing import Prepared, time_statements

bench_hookspec = pluggy.HookspecMarker("eventhub_bench")
bench_hookimpl = pluggy.HookimplMarker("eventhub_bench")


class BenchSpec:
    @bench_hookspec
    def bench_execute(self, event: object) -> None:
        """The pluggy hook that stands for the chain."""


def _base() -> type:
    try:
        from eventhub import Handler
    except ImportError:  # the core has not landed: the peers are still measured
        return object
    return Handler


def _trivial(self: object, event: object) -> None:
    pass


def _recorder(record: list[str]) -> Callable[[object, object], None]:
    def execute(self: object, event: object) -> None:
        record.append(type(self).__name__)

    return execute


def _copy(fn: Callable[[object, object], None]) -> Callable[[object, object], None]:
    """The same code as a distinct function object, so that pluggy's marker stays off ``fn``."""
    copy = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)
    return copy


def make_handlers(count: int, record: list[str] | None) -> list[type]:
    """``count`` distinct handler classes; with ``record``, each appends its name when called."""
    base = _base()
    classes = []
    execute = _trivial if record is None else _recorder(record)
    for i in range(count):
        ns = {"execute": execute, "bench_execute": bench_hookimpl(_copy(execute))}
        classes.append(type(f"Handler{i:03d}", (base,), ns))
    return classes


def _bare(methods: list[Callable[[object], None]]) -> Callable[[object], None]:
    def dispatch(event: object) -> None:
        for method in methods:
            method(event)

    return dispatch


def _seed(classes: list[type]) -> Callable[[object], None]:
    def run(event: object) -> None:
        for cls in classes:  # the seed's run(): instantiate, then execute
            obj = cls()
            obj.execute(event)

    return run


def build(name: str, classes: list[type]) -> tuple[str, dict[str, Any]]:
    """The statement to time and its globals, for implementation ``name``."""
    instances = [cls() for cls in classes]
    methods = [obj.execute for obj in instances]
    if name == "for-loop (inline)":
        return "for m in methods: m(event)", {"methods": methods}
    if name == "for-loop":
        return "dispatch(event)", {"dispatch": _bare(methods)}
    if name == "seed loop":
        return "dispatch(event)", {"dispatch": _seed(classes)}
    if name == "pluggy":
        pm = pluggy.PluginManager("eventhub_bench")
        pm.add_hookspecs(BenchSpec)
        # pluggy calls the last registered first: register in reverse for the same order.
        for i, obj in reversed(list(enumerate(instances))):
            pm.register(obj, name=f"h{i}")
        return "call(event=event)", {"call": pm.hook.bench_execute}
    if name == "blinker":
        import blinker

        signal = blinker.Signal()
        for method in methods:
            signal.connect(method, weak=False)
        return "send(event)", {"send": signal.send}
    if name == "eventhub":
        import eventhub

        hub = eventhub.Hub()
        for cls in classes:
            hub.register(cls)
        return "dispatch(event)", {"dispatch": hub.dispatch}
    raise ValueError(f"unknown implementation {name!r}")


IMPLEMENTATIONS = ("for-loop (inline)", "for-loop", "seed loop", "pluggy", "blinker", "eventhub")


def _event() -> object:
    try:
        from eventhub import Event
    except ImportError:
        return object()
    return Event("bench", None)


def verify(name: str, count: int) -> None:
    """Run ``name`` once on recording handlers: each must be called once, in order."""
    record: list[str] = []
    classes = make_handlers(count, record)
    stmt, env = build(name, classes)
    exec(stmt, {**env, "event": _event()})
    expected = [cls.__name__ for cls in classes]
    if name == "blinker":  # blinker promises no order: compare as sets
        record.sort()
    if record != expected:
        raise AssertionError(f"called {len(record)} handlers, not {count} in order: {record[:5]}...")


def measure(count: int, rounds: int, sample: float, only: list[str] | None) -> dict[str, Any]:
    event = _event()

    def prepare(name: str) -> Prepared:
        verify(name, count)
        stmt, env = build(name, make_handlers(count, None))
        return stmt, {**env, "event": event}

    return {"count": count, **time_statements(only or IMPLEMENTATIONS, prepare, rounds, sample)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--sample", type=float, default=0.01, help="seconds per timed sample")
    parser.add_argument("--only", default="", help="comma-separated implementations")
    args = parser.parse_args(argv)
    only = [n for n in args.only.split(",") if n] or None
    print(json.dumps(measure(args.count, args.rounds, args.sample, only)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
