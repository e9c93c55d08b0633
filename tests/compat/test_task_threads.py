"""task (LoopingCall, deferLater, Clock, cooperate, react) and threads, in fake time and on real threads.

Tests taking ``task`` run on the compat module and on Twisted's ``task`` where installed.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from eventhub.compat.twisted import TwistedReactor, use_reactor
from eventhub.compat.twisted.internet import defer as compat_defer
from eventhub.compat.twisted.internet import task as compat_task
from eventhub.compat.twisted.internet import threads
from eventhub.reactor import Reactor
from eventhub.testing import HANG_TIMEOUT, run_until_stopped


@pytest.fixture(params=["compat", "twisted"])
def task(request: pytest.FixtureRequest) -> ModuleType:
    if request.param == "compat":
        return compat_task
    twisted_task: ModuleType = pytest.importorskip("twisted.internet.task")
    return twisted_task


def _defer_of(task: ModuleType) -> ModuleType:
    return compat_defer if task is compat_task else pytest.importorskip("twisted.internet.defer")


def test_looping_call_runs_at_each_interval_and_stops(task: ModuleType) -> None:
    clock = task.Clock()
    times: list[float] = []
    loop = task.LoopingCall(lambda: times.append(clock.seconds()))
    loop.clock = clock
    done: list[Any] = []
    loop.start(2.0).addCallback(done.append)
    assert times == [0.0]
    clock.advance(1)
    assert times == [0.0]
    clock.advance(1)
    clock.pump([2, 2])
    assert times == [0.0, 2.0, 4.0, 6.0]
    loop.stop()
    assert done == [loop] and not loop.running
    clock.advance(10)
    assert times == [0.0, 2.0, 4.0, 6.0]
    assert clock.getDelayedCalls() == []


def test_looping_call_not_now_and_keeps_to_the_grid(task: ModuleType) -> None:
    clock = task.Clock()
    times: list[float] = []
    loop = task.LoopingCall(lambda: times.append(clock.seconds()))
    loop.clock = clock
    loop.start(3, now=False)
    clock.advance(2)
    assert times == []
    clock.advance(2.5)  # to 4.5: the call due at 3 runs now, seeing 4.5, as in Twisted
    clock.advance(1.5)  # 6: back on the grid of multiples of 3
    assert times == [4.5, 6.0]
    loop.stop()


def test_looping_call_waits_for_a_returned_deferred_and_skips_missed_intervals(task: ModuleType) -> None:
    defer = _defer_of(task)
    clock = task.Clock()
    pending: list[Any] = []
    counts: list[int] = []

    def work(count: int) -> Any:
        counts.append(count)
        d = defer.Deferred()
        pending.append(d)
        return d

    loop = task.LoopingCall.withCount(work)
    loop.clock = clock
    loop.start(1)
    clock.advance(3.5)  # three intervals pass while the first call's Deferred is pending
    assert counts == [1]
    pending[0].callback(None)  # at 3.5: the next call is due at 4
    clock.advance(0.5)
    assert counts == [1, 4]
    pending[1].callback(None)
    clock.advance(1)
    assert counts == [1, 4, 1]
    loop.stop()


def test_looping_call_failure_stops_it_and_fails_its_deferred(task: ModuleType) -> None:
    clock = task.Clock()
    calls: list[int] = []

    def flaky() -> None:
        calls.append(1)
        if len(calls) == 2:
            raise ValueError("second call")

    loop = task.LoopingCall(flaky)
    loop.clock = clock
    errors: list[Any] = []
    loop.start(1).addErrback(errors.append)
    clock.advance(1)
    clock.advance(1)
    assert len(calls) == 2 and not loop.running
    assert errors[0].check(ValueError)


def test_defer_later_and_its_cancel(task: ModuleType) -> None:
    defer = _defer_of(task)
    clock = task.Clock()
    seen: list[Any] = []
    task.deferLater(clock, 2, lambda a, b: a + b, 1, b=2).addCallback(seen.append)
    cancelled = task.deferLater(clock, 5, seen.append, "never")
    cancelled.addErrback(lambda f: seen.append(f.type))
    clock.advance(2)
    cancelled.cancel()
    clock.advance(10)
    assert seen == [3, defer.CancelledError]
    assert clock.getDelayedCalls() == []


def test_cooperate_runs_an_iterator_step_by_step(task: ModuleType) -> None:
    clock = task.Clock()
    steps: list[int] = []

    def work() -> Iterator[None]:
        for i in range(3):
            steps.append(i)
            yield None

    coop = task.Cooperator(scheduler=lambda f: clock.callLater(0, f)) if task is not compat_task else None
    running = coop.cooperate(work()) if coop else task.cooperate(work(), clock)
    done: list[Any] = []
    running.whenDone().addCallback(lambda _: done.append(True))
    for _ in range(10):
        clock.advance(0)
    assert steps == [0, 1, 2] and done == [True]


@pytest.mark.e2e
def test_react_exits_with_main_s_outcome(tmp_path: Path) -> None:
    program = (
        "from eventhub.compat.twisted.internet import task, defer\n"
        "import sys\n"
        "def main(reactor, word):\n"
        "    print('main', word, flush=True)\n"
        "    d = task.deferLater(reactor, 0.01, lambda: None)\n"
        "    if word == 'fail':\n"
        "        d.addCallback(lambda _: 1 / 0)\n"
        "    return d\n"
        "task.react(main, sys.argv[1:])\n"
    )
    ok = subprocess.run(
        [sys.executable, "-c", program, "ok"], capture_output=True, text=True, timeout=HANG_TIMEOUT
    )
    assert (ok.returncode, ok.stdout) == (0, "main ok\n"), ok.stderr
    bad = subprocess.run(
        [sys.executable, "-c", program, "fail"], capture_output=True, text=True, timeout=HANG_TIMEOUT
    )
    assert bad.returncode == 1
    assert "ZeroDivisionError" in bad.stderr


# -- threads, on a real reactor -----------------------------------------------------


@pytest.fixture
def compat() -> Iterator[TwistedReactor]:
    reactor = TwistedReactor(lambda: Reactor("select"))
    undo = use_reactor(reactor)
    yield reactor
    undo()


def test_defer_to_thread_fires_on_the_reactor_thread(compat: TwistedReactor) -> None:
    seen: list[Any] = []
    loop_thread: list[int] = []

    def blocking(x: int) -> tuple[int, bool]:
        return x * 2, threading.get_ident() != loop_thread[0]

    def failing() -> None:
        raise KeyError("in thread")

    def start() -> None:
        loop_thread.append(threading.get_ident())
        ok = threads.deferToThread(blocking, 21)
        ok.addCallback(lambda r: seen.append((r, threading.get_ident() == loop_thread[0])))
        bad = threads.deferToThread(failing)
        bad.addErrback(lambda f: seen.append(f.type))
        compat_defer.DeferredList([ok, bad]).addCallback(lambda _: compat.stop())

    compat.callWhenRunning(start)
    run_until_stopped(compat.eventhub_reactor)
    assert seen == [((42, True), True), KeyError]


def test_blocking_call_from_thread_waits_for_a_deferred(compat: TwistedReactor) -> None:
    results: list[Any] = []

    def on_loop(x: int) -> compat_defer.Deferred[int]:
        return compat_task.deferLater(compat, 0, lambda: x + 1)

    def broken() -> None:
        raise LookupError("on the loop")

    def in_thread() -> None:
        results.append(threads.blockingCallFromThread(compat, on_loop, 1))
        try:
            threads.blockingCallFromThread(compat, broken)
        except LookupError as error:
            results.append(str(error))
        compat.callFromThread(compat.stop)

    compat.callWhenRunning(compat.callInThread, in_thread)
    run_until_stopped(compat.eventhub_reactor)
    assert results == [2, "on the loop"]


def test_thread_pool_size_before_and_after_the_reactor_exists() -> None:
    compat = TwistedReactor()
    compat.suggestThreadPoolSize(3)
    pool = compat.getThreadPool()
    assert (pool.min, pool.max) == (0, 3)
    real = compat.eventhub_reactor
    assert isinstance(real, Reactor) and real.max_threads == 3
    pool.adjustPoolsize(maxthreads=5)
    assert real.max_threads == 5 and compat.getThreadPool().max == 5
    with pytest.raises(ValueError):
        compat.suggestThreadPoolSize(0)
    real.close()


def test_call_when_running_after_start_runs_soon(compat: TwistedReactor) -> None:
    order: list[str] = []

    def started() -> None:
        order.append("started")
        compat.callWhenRunning(order.append, "while running")
        compat.callLater(0, compat.stop)

    compat.callWhenRunning(started)
    compat.addSystemEventTrigger("before", "shutdown", order.append, "before shutdown")
    run_until_stopped(compat.eventhub_reactor)
    assert order == ["started", "while running", "before shutdown"]


def test_a_shutdown_trigger_returning_a_deferred_delays_the_end_of_shutdown(compat: TwistedReactor) -> None:
    order: list[str] = []

    def slow_stop() -> compat_defer.Deferred[None]:
        order.append("stopping")
        return compat_task.deferLater(compat, 0.01, order.append, "stopped later")

    compat.addSystemEventTrigger("before", "shutdown", slow_stop)
    compat.addSystemEventTrigger("after", "shutdown", order.append, "after shutdown")
    compat.callWhenRunning(compat.stop)
    run_until_stopped(compat.eventhub_reactor)
    assert order == ["stopping", "stopped later", "after shutdown"]
