"""Micro-benchmarks: statements timed alternately in a worker process, and read back by the runner.

The worker side (``time_statements``) prepares each statement (checking first
that it does what it claims), calibrates how many loops make one sample, then
takes ``rounds`` samples of each, the statements alternating within every round
and the starting one shifting from round to round, so that a slow spell of the
machine falls on all of them alike. The runner side (``run_worker``) starts
such a worker pinned to one core and summarizes its samples.

Samples are read on the worker thread's CPU clock (``time.thread_time``), not
the wall clock: on a machine where other work runs (tests beside the
benchmarks), the time the worker spends preempted would otherwise land in
whichever sample it fell on. Measured with a test suite running on both
cores: wall-clock medians of one statement moved by 2x from run to run, CPU
medians by 2%, and matched those of an idle machine.
"""

from __future__ import annotations

import json
import subprocess
import time
import timeit
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from benchmarks._proc import run_pinned
from benchmarks._stats import summarize

# (statement, its globals), for one named subject.
Prepared = tuple[str, dict[str, Any]]


def calibrate(timer: timeit.Timer, sample: float) -> int:
    """The number of loops (a power of two) that takes at least ``sample`` seconds."""
    number = 1
    while True:
        if timer.timeit(number) >= sample or number >= 1 << 24:
            return number
        number *= 2


def time_statements(
    names: Iterable[str], prepare: Callable[[str], Prepared], rounds: int, sample: float
) -> dict[str, Any]:
    """Nanoseconds per execution of each named statement: ``rounds`` samples each.

    ``prepare(name)`` returns the statement and its globals, or raises: an
    ``ImportError`` marks the subject skipped (a peer not installed), any other
    exception is recorded as its error. Neither stops the others.
    """
    timers: dict[str, tuple[timeit.Timer, int]] = {}
    errors: dict[str, str] = {}
    skipped: dict[str, str] = {}
    for name in names:
        try:
            stmt, env = prepare(name)
            timer = timeit.Timer(stmt, timer=time.thread_time, globals=env)
            timers[name] = (timer, calibrate(timer, sample))
        except ImportError as exc:
            skipped[name] = f"{exc.name or exc} is not installed (pip install -e '.[bench]')"
        except Exception as exc:  # recorded in the report, never a crash of the run
            errors[name] = f"{type(exc).__name__}: {exc}"
    samples: dict[str, list[float]] = {name: [] for name in timers}
    order = list(timers)
    for r in range(rounds):
        shift = r % max(1, len(order))
        for name in order[shift:] + order[:shift]:
            timer, number = timers[name]
            samples[name].append(timer.timeit(number) / number * 1e9)
    return {
        "ns": samples,
        "errors": errors,
        "skipped": skipped,
        "numbers": {name: timers[name][1] for name in timers},
    }


def run_worker(argv: Sequence[str], cpu: int | None, timeout: float = 300) -> dict[str, Any]:
    """Run a worker printing ``time_statements``'s JSON; its raw samples, summaries and errors."""
    result: dict[str, Any] = {"summary": {}, "errors": {}, "skipped": {}, "ns": {}}
    try:
        done = run_pinned(argv, cpu=cpu, timeout=timeout)
    except subprocess.TimeoutExpired:
        result["errors"]["worker"] = f"timed out after {timeout:.0f} s"
        return result
    if done.returncode != 0:
        result["errors"]["worker"] = done.stderr.strip()[-300:]
        return result
    raw = json.loads(done.stdout)
    result.update(errors=raw["errors"], skipped=raw["skipped"], ns=raw["ns"])
    for name, samples in raw["ns"].items():
        s = summarize(samples)
        if s is not None:
            result["summary"][name] = s
    return result
