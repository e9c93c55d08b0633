"""Timers: the heap on its own (with a fake clock), then through a real reactor on every backend."""

from __future__ import annotations

import socket

import pytest

from eventhub.errors import UsageError
from eventhub.reactor import Reactor, TimerHandle
from eventhub.reactor._timers import COMPACT_MIN_DEAD, TimerQueue

from ._util import run


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def live(q: TimerQueue) -> int:
    """Heap entries that may still fire (the others are dead: cancelled or superseded by a reset)."""
    return sum(1 for _, seq, handle in q.heap if seq == handle._seq and handle.active())


def fire_due(q: TimerQueue, now: float) -> None:
    for h in q.pop_due(now):
        h._fire()


def test_due_timers_come_out_in_time_order_ties_in_scheduling_order() -> None:
    clock = FakeClock()
    q = TimerQueue(clock)
    fired: list[str] = []
    for name, delay in [("c", 3), ("a", 1), ("b1", 2), ("b2", 2), ("d", 4)]:
        q.schedule(delay, fired.append, (name,), {})
    fire_due(q, 102.5)
    assert fired == ["a", "b1", "b2"]
    assert q.next_deadline() == 103.0
    fire_due(q, 200)
    assert fired == ["a", "b1", "b2", "c", "d"]
    assert live(q) == 0 and q.next_deadline() is None


def test_cancelled_timer_never_fires_and_cancel_is_idempotent() -> None:
    q = TimerQueue(FakeClock())
    fired: list[int] = []
    h = q.schedule(1, fired.append, (1,), {})
    q.schedule(2, fired.append, (2,), {})
    h.cancel()
    h.cancel()
    assert not h.active()
    fire_due(q, 1000)
    assert fired == [2]


def test_cancel_after_due_but_before_running_wins() -> None:
    q = TimerQueue(FakeClock())
    fired: list[int] = []
    h = q.schedule(1, fired.append, (1,), {})
    (due,) = q.pop_due(1000)
    h.cancel()  # e.g. an earlier callback in the same pass cancels it
    due._fire()
    assert fired == []
    assert live(q) == 0


def test_reset_moves_the_deadline_both_ways() -> None:
    clock = FakeClock()
    q = TimerQueue(clock)
    fired: list[str] = []
    late = q.schedule(10, fired.append, ("late",), {})
    early = q.schedule(1, fired.append, ("early",), {})
    early.reset(20)
    late.reset(5)
    assert late.time == 105.0 and early.time == 120.0
    fire_due(q, 110)
    assert fired == ["late"]
    fire_due(q, 130)
    assert fired == ["late", "early"]
    with pytest.raises(UsageError):
        early.reset(1)


def test_reset_after_due_but_before_running_postpones() -> None:
    clock = FakeClock()
    q = TimerQueue(clock)
    fired: list[int] = []
    h = q.schedule(1, fired.append, (1,), {})
    (due,) = q.pop_due(101)
    h.reset(5)
    due._fire()
    assert fired == []
    fire_due(q, 106)
    assert fired == [1]


@pytest.mark.parametrize("delay", [-1, float("nan")])
def test_bad_delay_is_a_clear_error(delay: float) -> None:
    with pytest.raises(UsageError, match="delay"):
        TimerQueue(FakeClock()).schedule(delay, print, (), {})


def test_heap_compacts_when_most_entries_are_cancelled() -> None:
    q = TimerQueue(FakeClock())
    keep = [q.schedule(1000 + i, print, (), {}) for i in range(10)]
    doomed = [q.schedule(1 + i, print, (), {}) for i in range(10 * COMPACT_MIN_DEAD)]
    for h in doomed:
        h.cancel()
    # Without compaction the heap would hold all 650 entries until they came due.
    assert len(q.heap) <= 2 * COMPACT_MIN_DEAD + len(keep)
    assert live(q) == len(keep)
    q.compact()
    assert len(q.heap) == len(keep)
    assert q.next_deadline() == keep[0].time


def test_resets_also_compact() -> None:
    q = TimerQueue(FakeClock())
    h = q.schedule(1, print, (), {})
    for i in range(10 * COMPACT_MIN_DEAD):
        h.reset(1 + i)
    assert len(q.heap) <= COMPACT_MIN_DEAD + 2
    assert live(q) == 1


def test_reactor_timers_fire_in_order_cancelled_never(reactor: Reactor) -> None:
    # Each due time is counted from when it is scheduled: in this order, the
    # expected one holds however long the thread is preempted between lines.
    fired: list[str] = []
    reactor.call_later(0.01, fired.append, "first")
    reactor.call_later(0.02, fired.append, "second")
    doomed = reactor.call_later(0.015, fired.append, "cancelled")
    moved = reactor.call_later(0.001, fired.append, "moved")
    moved.reset(0.025)
    doomed.cancel()
    reactor.call_later(0.03, fired.append, "third")
    reactor.call_later(0.04, reactor.stop)
    run(reactor)
    assert fired == ["first", "second", "moved", "third"]
    assert not moved.active()


def test_timer_can_cancel_a_later_one_due_in_the_same_pass(reactor: Reactor) -> None:
    fired: list[str] = []
    # Both due before run() starts, so both come out in its first pass, in this
    # order (equal delays keep scheduling order): the first cancels the second.
    handles: list[TimerHandle] = []
    reactor.call_later(0, lambda: handles[0].cancel())
    handles.append(reactor.call_later(0, fired.append, "second"))

    def stop_later() -> None:
        reactor.call_later(0.02, reactor.stop)

    reactor.call_soon(stop_later)
    run(reactor)
    assert fired == []


def test_many_cancelled_timers_in_a_running_reactor(reactor: Reactor) -> None:
    fired: list[int] = []
    handles = [reactor.call_later(0.001 * (i % 50), fired.append, i) for i in range(2000)]
    for h in handles[::2]:
        h.cancel()
    reactor.call_later(0.05, reactor.stop)  # due after every timer above (the last is due at 0.049)
    run(reactor)
    assert sorted(fired) == list(range(1, 2000, 2))


@pytest.mark.parametrize("delay", [3e6, 1e12], ids=["25-days", "31709-years"])
def test_a_timer_beyond_what_the_poller_takes_does_not_crash_the_loop(reactor: Reactor, delay: float) -> None:
    """epoll/poll take at most 2**31-1 ms (24.8 days), select a time_t: the timeout is clamped.

    The long timer is the only one while the loop polls (no hang guard: a byte
    is already waiting, so the first poll returns at once, or raised before).
    """
    far = reactor.call_later(delay, pytest.fail, "a far timer fired")
    a, b = socket.socketpair()

    def readable() -> None:
        reactor.remove_reader(a.fileno())
        reactor.stop()

    with a, b:
        b.send(b"x")
        reactor.add_reader(a.fileno(), readable)
        try:
            reactor.run(install_signal_handlers=False)
        finally:
            far.cancel()
