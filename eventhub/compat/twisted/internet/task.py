"""``twisted.internet.task``: ``LoopingCall``, ``deferLater``, ``react``, ``Clock``, ``cooperate``.

Anything with ``callLater`` and ``seconds`` is a clock here, as in Twisted: the
compat reactor (the default), or ``Clock`` in tests. ``Clock`` is Twisted's test
clock over ``eventhub.testing.Clock``, so fake time runs the reactor's own timer
code (``DelayedCall`` wraps the same ``TimerHandle``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from typing import Any, NoReturn, Protocol

from eventhub import testing as _testing
from eventhub.compat.twisted.internet import _global
from eventhub.compat.twisted.internet._reactor import DelayedCall, TwistedReactor
from eventhub.compat.twisted.internet.defer import CancelledError, Deferred, maybeDeferred
from eventhub.compat.twisted.python.failure import Failure

__all__ = [
    "Clock",
    "CooperativeTask",
    "LoopingCall",
    "SchedulerStopped",
    "TaskDone",
    "TaskFailed",
    "TaskStopped",
    "cooperate",
    "deferLater",
    "react",
]


class IReactorTime(Protocol):
    """What a clock is here: ``callLater`` and ``seconds``."""

    def callLater(self, delay: float, fn: Callable[..., object], *args: Any, **kw: Any) -> DelayedCall: ...

    def seconds(self) -> float: ...


class _TwistedTime(_testing.Clock):
    """eventhub's fake clock, advancing as Twisted's does: time jumps, then what is due runs.

    (``eventhub.testing.Clock`` stops at each due time instead, so a callback
    sees its own due time; Twisted's callbacks see the time advanced to.)
    """

    def advance_to(self, when: float) -> None:
        if not when >= self._now:
            raise ValueError(f"cannot move a Clock back from {self._now} to {when!r}")
        self._now = when
        while (deadline := self._timers.next_deadline()) is not None and deadline <= when:
            self._fire(self._timers.pop_due(when))


class Clock:
    """Fake time (Twisted's ``task.Clock``): nothing runs until ``advance``."""

    def __init__(self) -> None:
        self.eventhub_clock: _testing.Clock = _TwistedTime()

    def seconds(self) -> float:
        return self.eventhub_clock.seconds()

    def callLater(self, delay: float, fn: Callable[..., object], *args: Any, **kw: Any) -> DelayedCall:
        return DelayedCall(self.eventhub_clock.call_later(delay, fn, *args, **kw), self.eventhub_clock)

    def getDelayedCalls(self) -> list[DelayedCall]:
        """The calls still to run, soonest first."""
        return [DelayedCall(h, self.eventhub_clock) for h in self.eventhub_clock.pending()]

    def advance(self, amount: float) -> None:
        """Move time forward by ``amount``, then run every call due by then, in order."""
        self.eventhub_clock.advance(amount)

    def pump(self, timings: list[float]) -> None:
        """``advance`` by each amount in turn."""
        for amount in timings:
            self.advance(amount)


def _default_clock() -> IReactorTime:
    return _global.get()


class LoopingCall:
    """Call ``f(*a, **kw)`` every ``interval`` seconds (``start``) until ``stop``.

    Calls are due at multiples of ``interval`` from the start; when a call
    returns a Deferred, the next one waits for it, and intervals missed
    meanwhile are skipped (``withCount`` tells how many passed). ``start``
    returns a Deferred that fires with the ``LoopingCall`` when stopped, or
    fails with what ``f`` raised (which stops the loop).
    """

    call: DelayedCall | None = None
    running = False
    interval: float | None = None
    starttime: float | None = None
    _deferred: Deferred[LoopingCall] | None = None
    _runAtStart = False

    def __init__(self, f: Callable[..., Any], *a: Any, **kw: Any) -> None:
        self.f = f
        self.a = a
        self.kw = kw
        self.clock: IReactorTime = _default_clock()
        self._realLastTime: float | None = None

    @property
    def deferred(self) -> Deferred[LoopingCall] | None:
        return self._deferred

    @classmethod
    def withCount(cls, countCallable: Callable[[int], Any]) -> LoopingCall:
        """A LoopingCall calling ``countCallable(n)``: ``n`` intervals passed since the last call."""

        def counter() -> Any:
            now = self.clock.seconds()
            assert self.interval is not None and self.starttime is not None
            if self.interval == 0:
                self._realLastTime = now
                return countCallable(1)
            last = self._realLastTime
            if last is None:
                last = self.starttime
                if self._runAtStart:
                    last -= self.interval
            count = self._intervalOf(now) - self._intervalOf(last)
            self._realLastTime = now
            return countCallable(count)

        self = cls(counter)
        return self

    def _intervalOf(self, t: float) -> int:
        assert self.interval and self.starttime is not None
        return int((t - self.starttime) / self.interval)

    def start(self, interval: float, now: bool = True) -> Deferred[LoopingCall]:
        """Start calling every ``interval`` seconds (``now``: the first call at once)."""
        if self.running:
            raise RuntimeError("Tried to start an already running LoopingCall.")
        if interval < 0:
            raise ValueError("interval must be >= 0")
        self.running = True
        deferred = self._deferred = Deferred()
        self.starttime = self.clock.seconds()
        self.interval = interval
        self._runAtStart = now
        if now:
            self()
        else:
            self._scheduleFrom(self.starttime)
        return deferred

    def stop(self) -> None:
        """Stop; ``start``'s Deferred fires with this LoopingCall."""
        if not self.running:
            raise RuntimeError("Tried to stop a LoopingCall that was not running.")
        self.running = False
        if self.call is not None:
            self.call.cancel()
            self.call = None
            self._fire_done()

    def reset(self) -> None:
        """Skip the pending call and start the intervals again from now."""
        if not self.running:
            raise RuntimeError("Tried to reset a LoopingCall that was not running.")
        if self.call is not None:
            self.call.cancel()
            self.call = None
            self.starttime = self.clock.seconds()
            self._scheduleFrom(self.starttime)

    def _fire_done(self) -> None:
        d, self._deferred = self._deferred, None
        if d is not None:
            d.callback(self)

    def __call__(self) -> None:
        def cb(result: object) -> None:
            if self.running:
                self._scheduleFrom(self.clock.seconds())
            else:
                self._fire_done()

        def eb(failure: Failure) -> None:
            self.running = False
            d, self._deferred = self._deferred, None
            if d is not None:
                d.errback(failure)

        self.call = None
        d = maybeDeferred(self.f, *self.a, **self.kw)
        d.addCallback(cb)
        d.addErrback(eb)

    def _scheduleFrom(self, when: float) -> None:
        assert self.interval is not None and self.starttime is not None
        if self.interval == 0:
            delay = 0.0
        else:
            running_for = when - self.starttime
            delay = self.interval - (running_for % self.interval)
            if when == when + delay:  # lost to float precision
                delay = self.interval
        self.call = self.clock.callLater(delay, self)

    def __repr__(self) -> str:
        name = getattr(self.f, "__qualname__", None) or repr(self.f)
        return f"LoopingCall<{self.interval!r}>({name}, *{self.a!r}, **{self.kw!r})"


def deferLater(
    clock: IReactorTime, delay: float, callable: Callable[..., Any] | None = None, *args: Any, **kw: Any
) -> Deferred[Any]:
    """A Deferred firing with ``callable(*args, **kw)`` after ``delay`` (``None``: with ``None``).

    Cancelling it cancels the call.
    """

    def cancel(d: Deferred[Any]) -> None:
        call.cancel()
        d.errback(Failure(CancelledError()))

    d: Deferred[Any] = Deferred(cancel)
    if callable is not None:
        d.addCallback(lambda _: callable(*args, **kw))
    call = clock.callLater(delay, d.callback, None)
    return d


def react(
    main: Callable[..., Any], argv: tuple[Any, ...] | list[Any] = (), _reactor: TwistedReactor | None = None
) -> NoReturn:
    """Run ``main(reactor, *argv)``; stop the reactor when its Deferred fires; exit the process.

    Exit status 0 on success, 1 (and the traceback on stderr) on failure; a
    ``SystemExit`` from ``main`` keeps its code.
    """
    reactor = _reactor if _reactor is not None else _global.get()
    codes: list[int] = []

    def stop(result: Any) -> None:
        if isinstance(result, Failure):
            if result.check(SystemExit):
                code = result.value.code  # type: ignore[attr-defined]
                codes.append(code if isinstance(code, int) else 1)
            else:
                result.printTraceback()
                codes.append(1)
        else:
            codes.append(0)
        if reactor.running:
            reactor.stop()

    def begin() -> None:
        maybeDeferred(main, reactor, *argv).addBoth(stop)

    reactor.callWhenRunning(begin)
    reactor.run()
    sys.exit(codes[0] if codes else 0)


class SchedulerStopped(Exception):
    """The cooperator was stopped."""


class TaskDone(Exception):
    """The iterator of a cooperative task is exhausted: it cannot be paused or resumed."""


class TaskStopped(Exception):
    """``whenDone()``'s failure after ``stop()``."""


class TaskFailed(Exception):
    """The task's iterator raised."""


class CooperativeTask:
    """One iterator run a step per reactor turn: ``pause``, ``resume``, ``stop``, ``whenDone``.

    A step that yields a Deferred waits for it. Simpler than Twisted's
    ``Cooperator`` (no shared time slices): each task steps once per
    ``callLater(0)``, which is enough to keep the loop responsive.
    """

    def __init__(self, iterator: Iterator[Any], clock: IReactorTime) -> None:
        self._iterator = iterator
        self._clock = clock
        self._paused = 0
        self._waiting: Deferred[Any] | None = None
        self._done = False
        self._whenDone: list[Deferred[Iterator[Any]]] = []
        self._call: DelayedCall | None = clock.callLater(0, self._step)

    def whenDone(self) -> Deferred[Iterator[Any]]:
        d: Deferred[Iterator[Any]] = Deferred()
        if self._done:
            d.callback(self._iterator)
        else:
            self._whenDone.append(d)
        return d

    def pause(self) -> None:
        if self._done:
            raise TaskDone()
        self._paused += 1
        if self._call is not None:
            self._call.cancel()
            self._call = None

    def resume(self) -> None:
        if self._done:
            raise TaskDone()
        if self._paused == 0:
            raise RuntimeError("resume() of a task that is not paused")
        self._paused -= 1
        self._schedule()

    def stop(self) -> None:
        if self._done:
            raise TaskDone()
        self._finish(Failure(TaskStopped()))

    def _schedule(self) -> None:
        if not self._paused and not self._done and self._waiting is None and self._call is None:
            self._call = self._clock.callLater(0, self._step)

    def _step(self) -> None:
        self._call = None
        try:
            result = next(self._iterator)
        except StopIteration:
            self._finish(self._iterator)
            return
        except BaseException as exc:
            self._finish(Failure(exc))
            return
        if isinstance(result, Deferred):
            self._waiting = result
            result.addCallbacks(self._resumed, self._failed)
        else:
            self._schedule()

    def _resumed(self, _: Any) -> None:
        self._waiting = None
        self._schedule()

    def _failed(self, failure: Failure) -> None:
        self._waiting = None
        self._finish(failure)

    def _finish(self, result: Any) -> None:
        self._done = True
        if self._call is not None:
            self._call.cancel()
            self._call = None
        waiting, self._whenDone = self._whenDone, []
        for d in waiting:
            if isinstance(result, Failure):
                d.errback(result)
            else:
                d.callback(result)


def cooperate(iterator: Iterator[Any], clock: IReactorTime | None = None) -> CooperativeTask:
    """Run ``iterator`` a step at a time on the reactor; returns the ``CooperativeTask``."""
    return CooperativeTask(iterator, clock if clock is not None else _default_clock())
