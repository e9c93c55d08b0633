"""Timers: a binary heap of ``(when, seq, handle)`` entries, lazily pruned.

Cancelling or resetting a timer does not search the heap (O(n)); it marks the
old entry dead (the handle's ``_seq`` no longer matches the entry's) and the
entry is dropped when it reaches the top. Many timers cancelled long before
they are due (connection timeouts that never fire, the common case) would pile
up, so when dead entries are both numerous and the majority, the heap is
rebuilt from the live ones (``compact``): O(n) once per O(n) cancellations.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from typing import Any, Final

from eventhub.errors import UsageError

__all__ = ["NO_KWARGS", "TimerHandle", "TimerQueue"]

# The keyword arguments of every call queued without any: one shared dict
# instead of a fresh ``{}`` per call. Never mutated: ``fn(**NO_KWARGS)`` hands
# the callee a copy, and nothing else touches it.
NO_KWARGS: Final[dict[str, Any]] = {}

# Rebuild the heap when it holds more than this many dead entries and they are
# more than half of it.
COMPACT_MIN_DEAD = 64

_PENDING, _CANCELLED, _CALLED = 0, 1, 2


class TimerHandle:
    """A call scheduled by ``Reactor.call_later``: ``cancel()``, ``reset(delay)``, ``active()``."""

    __slots__ = ("_args", "_fn", "_kw", "_queue", "_seq", "_state", "_when")

    def __init__(
        self,
        queue: TimerQueue,
        when: float,
        fn: Callable[..., object],
        args: tuple[Any, ...],
        kw: dict[str, Any],
    ) -> None:
        self._queue = queue
        self._when = when
        self._fn = fn
        self._args = args
        self._kw = kw
        self._state = _PENDING
        self._seq = 0  # the live heap entry's seq; 0 once taken out of the heap, due

    @property
    def time(self) -> float:
        """When it is due, on the reactor's ``seconds()`` clock."""
        return self._when

    def active(self) -> bool:
        """True until it has been called or cancelled."""
        return self._state == _PENDING

    def cancel(self) -> None:
        """Make sure it never runs. Cancelling an inactive timer does nothing."""
        if self._state == _PENDING:
            self._state = _CANCELLED
            if self._seq:  # still in the heap (not already taken out, due)
                self._queue._entry_died()
            self._fn = _nothing  # drop references to the callback's world early
            self._args = ()
            self._kw = NO_KWARGS

    def reset(self, delay: float) -> None:
        """Make it due ``delay`` seconds from now instead."""
        if self._state != _PENDING:
            raise UsageError("cannot reset a timer that was already called or cancelled")
        self._queue._reschedule(self, _check_delay(delay))

    def _fire(self) -> None:
        """Run it, unless cancelled or reset after it became due (run from the ready queue)."""
        if self._state == _PENDING and not self._seq:
            self._state = _CALLED
            fn, args, kw = self._fn, self._args, self._kw
            self._fn, self._args, self._kw = _nothing, (), NO_KWARGS
            fn(*args, **kw)

    def __repr__(self) -> str:
        state = ("pending", "cancelled", "called")[self._state]
        return f"<TimerHandle {state} when={self._when:.6f} {self._fn!r}>"


def _nothing() -> None:
    pass


def _check_delay(delay: float) -> float:
    if not (delay >= 0):  # also catches NaN
        raise UsageError(f"timer delay must be a number >= 0 seconds, got {delay!r}")
    return float(delay)


class TimerQueue:
    """The reactor's timers. ``clock`` is its monotonic ``seconds``."""

    __slots__ = ("_clock", "_counter", "_dead", "heap")

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self.heap: list[tuple[float, int, TimerHandle]] = []
        self._dead = 0
        self._counter = itertools.count(1)

    def schedule(
        self, delay: float, fn: Callable[..., object], args: tuple[Any, ...], kw: dict[str, Any]
    ) -> TimerHandle:
        when = self._clock() + _check_delay(delay)
        handle = TimerHandle(self, when, fn, args, kw or NO_KWARGS)
        self._push(handle, when)
        return handle

    def _push(self, handle: TimerHandle, when: float) -> None:
        # seq breaks ties in scheduling order and identifies the live entry.
        seq = next(self._counter)
        handle._seq = seq
        handle._when = when
        heapq.heappush(self.heap, (when, seq, handle))

    def _reschedule(self, handle: TimerHandle, delay: float) -> None:
        in_heap = handle._seq != 0
        self._push(handle, self._clock() + delay)  # first: compaction keys on the new seq
        if in_heap:
            self._entry_died()  # the old entry stays in the heap, dead

    def _entry_died(self) -> None:
        self._dead += 1
        if self._dead > COMPACT_MIN_DEAD and self._dead * 2 > len(self.heap):
            self.compact()

    def compact(self) -> None:
        """Drop every dead entry and re-heapify."""
        # In place: the loop holds a reference to this list across a pass.
        self.heap[:] = [e for e in self.heap if e[1] == e[2]._seq and e[2]._state == _PENDING]
        heapq.heapify(self.heap)
        self._dead = 0

    def next_deadline(self) -> float | None:
        """When the earliest live timer is due, or ``None``."""
        heap = self.heap
        while heap:
            when, seq, handle = heap[0]
            if seq == handle._seq and handle._state == _PENDING:
                return when
            heapq.heappop(heap)
            self._dead -= 1
        return None

    def pop_due(self, now: float) -> list[TimerHandle]:
        """Remove and return the live timers due at ``now``, in order."""
        heap = self.heap
        due = []
        while heap and heap[0][0] <= now:
            _, seq, handle = heapq.heappop(heap)
            if seq == handle._seq and handle._state == _PENDING:
                handle._seq = 0  # out of the heap: _fire may run it
                due.append(handle)
            else:
                self._dead -= 1
        return due
