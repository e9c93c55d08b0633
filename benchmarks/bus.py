"""Event bus scenario: one named event delivered to N handlers, and emits nobody (or a pattern) wants.

``run`` (the scenario of ``python -m benchmarks``) starts one worker process
per handler count, and one for the emits, each pinned to one core; the worker
is this module: ``python -m benchmarks.bus --count N`` or ``--emits``.

Delivery (``--count N``): N handler classes, each with a trivial ``execute``,
subscribed to ``order.paid`` the way a user subscribes them (``Handler``
subclasses with ``events = ("order.paid",)``, registered; or bound methods
given to ``hub.subscribe``). ``hub.dispatch(event)`` delivers a prebuilt
``Event``; ``hub.emit(name, payload)`` builds one per call. Beside them: a
for-loop over the same N bound methods (the goal's baseline), blinker's
``Signal.send(event)`` and pyee's ``EventEmitter.emit(name, event)``.

Emits (``--emits``): ``hub.emit`` of a name nobody subscribes to (with handlers
on another name; and with an ``order.*`` pattern subscribed elsewhere), of a
name only that pattern matches, and of the same name subscribed exactly (one
trivial handler each), beside an empty function called with the same two
arguments and the peers' emits to nobody.

Before timing, each subject runs once on recording handlers: it must call
every handler exactly once, in order (blinker promises no order: compared as
a set), and the emits nobody wants must call none.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from benchmarks._config import Config
from benchmarks._proc import pin_cpus, python_module
from benchmarks._progress import Progress
from benchmarks._timing import Prepared, run_worker, time_statements

NAME = "order.paid"
PATTERN = "order.*"
NOBODY = "nobody.listens"
OTHER = "user.created"  # matched by no pattern either
PAYLOAD = {"order": 1234, "amount": 99.5}

BASELINE = "for-loop"
DISPATCH = "hub.dispatch"
DELIVERY = (
    "for-loop (inline)",
    BASELINE,
    DISPATCH,
    "hub.dispatch (subscribe)",
    "hub.emit",
    "blinker Signal.send",
    "pyee EventEmitter.emit",
)

CALL = "function call"
UNSUBSCRIBED = "hub.emit, nobody subscribes"
UNSUBSCRIBED_PATTERN = "hub.emit, nobody subscribes (order.* elsewhere)"
EMITS = (
    CALL,
    UNSUBSCRIBED,
    UNSUBSCRIBED_PATTERN,
    "hub.emit, one handler on order.paid",
    "hub.emit, one handler on order.* only",
    "blinker send, no receiver",
    "pyee emit, no listener",
)
# What the emits nobody wants are compared with (the goal is an absolute 0.3 us).
EMIT_BASELINE = CALL


# -- runner (python -m benchmarks) ---------------------------------------------------------------


def run(cfg: Config, progress: Progress) -> dict[str, Any]:
    cpu, _ = pin_cpus()
    progress.begin("bus", len(cfg.bus_counts) + 1)
    counts = []
    for count in cfg.bus_counts:
        counts.append({"count": count, **_worker(cfg, cpu, "--count", str(count))})
        progress.step(f"{count} handlers", _brief(counts[-1]))
    emits = _worker(cfg, cpu, "--emits")
    progress.step("emits", _brief(emits))
    return {
        "baseline": BASELINE,
        "emit_baseline": EMIT_BASELINE,
        "rounds": cfg.bus_rounds,
        "counts": counts,
        "emits": emits,
    }


def _worker(cfg: Config, cpu: int | None, *what: str) -> dict[str, Any]:
    argv = python_module(
        "benchmarks.bus", *what, "--rounds", str(cfg.bus_rounds), "--sample", str(cfg.bus_sample_seconds)
    )
    return run_worker(argv, cpu)


def _brief(result: dict[str, Any]) -> str:
    medians = [f"{name} {s['median']:.0f} ns" for name, s in result["summary"].items()]
    return ", ".join(medians) or f"no result: {result['errors']}"


# -- worker (python -m benchmarks.bus) -----------------------------------------------------------


def make_handlers(count: int, record: list[str] | None) -> list[type]:
    """``count`` distinct ``Handler`` classes on ``order.paid``; with ``record``, each logs its name."""
    from eventhub import Handler

    def trivial(self: object, event: object) -> None:
        pass

    def recording(self: object, event: object) -> None:
        assert record is not None
        record.append(type(self).__name__)

    execute = trivial if record is None else recording
    return [
        type(f"Handler{i:03d}", (Handler,), {"events": (NAME,), "execute": execute}) for i in range(count)
    ]


def _methods(classes: list[type]) -> list[Callable[[object], None]]:
    return [cls().execute for cls in classes]


def _bare(methods: list[Callable[[object], None]]) -> Callable[[object], None]:
    def dispatch(event: object) -> None:
        for method in methods:
            method(event)

    return dispatch


def _hub(classes: list[type]) -> Any:
    import eventhub

    hub = eventhub.Hub()
    for cls in classes:
        hub.register(cls)
    return hub


def build_delivery(name: str, classes: list[type]) -> Prepared:
    """The statement delivering ``event`` to ``classes``' handlers for subject ``name``."""
    if name == "for-loop (inline)":
        return "for m in methods: m(event)", {"methods": _methods(classes)}
    if name == BASELINE:
        return "dispatch(event)", {"dispatch": _bare(_methods(classes))}
    if name == DISPATCH:
        return "dispatch(event)", {"dispatch": _hub(classes).dispatch}
    if name == "hub.dispatch (subscribe)":
        hub = _hub([])
        for method in _methods(classes):
            hub.subscribe(NAME, method)
        return "dispatch(event)", {"dispatch": hub.dispatch}
    if name == "hub.emit":
        return "emit(name, payload)", {"emit": _hub(classes).emit, "name": NAME, "payload": PAYLOAD}
    if name == "blinker Signal.send":
        import blinker

        signal = blinker.Signal()
        for method in _methods(classes):
            signal.connect(method, weak=False)
        return "send(event)", {"send": signal.send}
    if name == "pyee EventEmitter.emit":
        from pyee import EventEmitter

        emitter = EventEmitter()
        for method in _methods(classes):
            emitter.on(NAME, method)
        return "emit(name, event)", {"emit": emitter.emit, "name": NAME}
    raise ValueError(f"unknown subject {name!r}")


def _event() -> Any:
    from eventhub import Event

    return Event(NAME, PAYLOAD)


def verify_delivery(name: str, count: int) -> None:
    """Run ``name`` once on recording handlers: each must be called once, in order."""
    record: list[str] = []
    classes = make_handlers(count, record)
    stmt, env = build_delivery(name, classes)
    exec(stmt, {**env, "event": _event()})
    expected = [cls.__name__ for cls in classes]
    if name.startswith("blinker"):  # blinker promises no order: compare as sets
        record.sort()
    if record != expected:
        raise AssertionError(f"called {len(record)} handlers, not {count} in order: {record[:5]}...")


def build_emit(name: str, record: list[str]) -> Prepared:
    """The statement emitting for subject ``name``; the handlers around it append to ``record``."""

    def handler(event: object) -> None:
        record.append("called")

    def noop(name: str, payload: object) -> None:
        pass

    env: dict[str, Any] = {"payload": PAYLOAD}
    if name == CALL:
        return "f(name, payload)", {**env, "f": noop, "name": NOBODY}
    if name in (UNSUBSCRIBED, UNSUBSCRIBED_PATTERN):
        hub = _hub([])
        hub.subscribe(PATTERN if name == UNSUBSCRIBED_PATTERN else NAME, handler)
        emitted = OTHER if name == UNSUBSCRIBED_PATTERN else NOBODY
        return "emit(name, payload)", {**env, "emit": hub.emit, "name": emitted}
    if name.startswith("hub.emit, one handler"):
        hub = _hub([])
        hub.subscribe(PATTERN if name.endswith("only") else NAME, handler)
        return "emit(name, payload)", {**env, "emit": hub.emit, "name": NAME}
    if name == "blinker send, no receiver":
        import blinker

        return "send(payload)", {**env, "send": blinker.Signal().send}
    if name == "pyee emit, no listener":
        from pyee import EventEmitter

        emitter = EventEmitter()
        emitter.on(NAME, handler)
        return "emit(name, payload)", {**env, "emit": emitter.emit, "name": NOBODY}
    raise ValueError(f"unknown subject {name!r}")


def verify_emit(name: str) -> None:
    """Run ``name`` once: an emit nobody wants calls no handler, the others call theirs once."""
    record: list[str] = []
    stmt, env = build_emit(name, record)
    exec(stmt, env)
    expected = 1 if name.startswith("hub.emit, one handler") else 0
    if len(record) != expected:
        raise AssertionError(f"called {len(record)} handlers, not {expected}")


def measure_delivery(count: int, rounds: int, sample: float) -> dict[str, Any]:
    event = _event()

    def prepare(name: str) -> Prepared:
        verify_delivery(name, count)
        stmt, env = build_delivery(name, make_handlers(count, None))
        return stmt, {**env, "event": event}

    return time_statements(DELIVERY, prepare, rounds, sample)


def measure_emits(rounds: int, sample: float) -> dict[str, Any]:
    def prepare(name: str) -> Prepared:
        verify_emit(name)
        return build_emit(name, [])

    return time_statements(EMITS, prepare, rounds, sample)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Time the event bus beside a for-loop, blinker and pyee.")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--count", type=int, help="deliver one event to this many handlers")
    what.add_argument("--emits", action="store_true", help="emits of names nobody (or a pattern) wants")
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--sample", type=float, default=0.01, help="seconds per timed sample")
    args = parser.parse_args(argv)
    if args.emits:
        result = measure_emits(args.rounds, args.sample)
    else:
        result = measure_delivery(args.count, args.rounds, args.sample)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
