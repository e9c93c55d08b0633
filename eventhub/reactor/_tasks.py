"""Coroutines on the reactor: ``Future``, ``Task``, ``sleep``, ``timeout``; no asyncio underneath.

Why it is shaped this way
-------------------------

A coroutine runs by being stepped: ``coro.send(None)`` runs it up to its next
``await`` of something that is not ready, where it *yields* that thing. The
``Task`` that steps it looks at what came out:

- a ``Future`` (ours): the task adds a done callback and sleeps; when the
  future completes, the callback schedules the next step with ``call_soon``,
  so a step never runs nested inside other code (a protocol callback that
  completed the future, say), always from the reactor's ready queue;
- ``None`` (a bare ``yield``, ``asyncio.sleep(0)``): step again on the next pass;
- anything else, an asyncio future among them: an error is thrown into the
  coroutine at once, saying which backend can await it (never a hang).

The protocol between awaitable and task is asyncio's own
(``_asyncio_future_blocking``, ``add_done_callback(fn, context=...)``,
``remove_done_callback``, ``cancel(msg)``), so that the same ``Future`` can be
awaited by an asyncio task once asyncio is a backend of the reactor: one
Task/awaitable API for both loops.

On the asyncio backends (``eventhub.reactor._aio``) tasks are asyncio's own
and await these futures through that protocol: ``get_loop()`` is the running
loop, a done callback added with a ``context`` (only asyncio's tasks pass one)
is scheduled with that loop's ``call_soon`` rather than called inside
``set_result``, and a cancellation thrown at the ``await`` of one of these
futures reaches the coroutine as ``AsyncioCancelled``, which is both
``eventhub.Cancelled`` and ``asyncio.CancelledError`` (see ``_aio.py``).

Everything here needs only ``call_soon`` and ``call_later`` of the reactor it
is given (``Runner(reactor)``), so tasks run the same on the real reactor and
on ``eventhub.testing.MemoryReactor`` under a fake clock.

Cancellation (``task.cancel()``) throws ``eventhub.Cancelled`` into the
coroutine at the pending ``await``; ``finally`` blocks run and may await
again. A task awaiting a leaf future (a sleep, a thread result) cancels that
future too (its timer is freed); a task awaiting another *task* only stops
waiting for it: that one may have other awaiters and runs on. ``timeout``
cancels its task when the time is up and turns that ``Cancelled`` into
``TimeoutError`` on the way out of the ``async with``, as ``asyncio.timeout``
does (a cancellation from elsewhere at the same time stays a cancellation).

A task that fails with nobody retrieving its exception (``await``,
``result()``, ``exception()``) is logged once, with its name and traceback,
when it is garbage collected: as asyncio does, since someone may still await
it after it failed.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Coroutine, Generator
from types import TracebackType
from typing import Any, Generic, Protocol, TypeVar

from eventhub.errors import PLUGIN_ERRORS, Cancelled, UsageError, reraise_user_interrupt

__all__ = ["Future", "Runner", "Task", "TaskAPI", "Timeout"]

log = logging.getLogger("eventhub.tasks")

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

_PENDING, _DONE, _FAILED, _CANCELLED = "pending", "done", "failed", "cancelled"


class _Scheduler(Protocol):
    """What tasks need of a reactor."""

    def call_soon(self, fn: Callable[..., object], /, *args: Any, **kw: Any) -> None: ...

    def call_later(self, delay: float, fn: Callable[..., object], /, *args: Any, **kw: Any) -> Any: ...


class TaskAPI(Protocol[T_co]):
    """What every backend's task offers: eventhub's ``Task``, or an asyncio one on the asyncio backends."""

    @property
    def name(self) -> str: ...

    def done(self) -> bool: ...

    def cancelled(self) -> bool: ...

    def result(self) -> T_co: ...

    def exception(self) -> BaseException | None: ...

    def cancel(self, msg: Any = None) -> bool: ...

    def add_done_callback(self, fn: Callable[[Any], object], /, *, context: Any = None) -> None: ...

    def remove_done_callback(self, fn: Callable[[Any], object], /) -> int: ...

    def __await__(self) -> Generator[Any, None, T_co]:
        """``await task``: its result, or what it raised (both backends' tasks are awaitable)."""
        ...


class Future(Generic[T]):
    """A value that arrives later: ``await`` it, or ``add_done_callback``.

    Complete it with ``set_result`` / ``set_exception``; ``cancel()`` completes
    it with ``Cancelled`` (and calls the ``canceller`` given at creation, to
    free what would have completed it). Done callbacks are called with the
    future, at completion, in the order they were added.
    """

    __slots__ = ("_asyncio_future_blocking", "_callbacks", "_canceller", "_retrieved", "_state", "_value")

    def __init__(self, canceller: Callable[[], object] | None = None) -> None:
        self._state = _PENDING
        self._value: Any = None
        self._callbacks: list[Callable[[Future[T]], object]] = []
        self._canceller = canceller
        self._retrieved = False
        # asyncio's flag: set while the future is yielded to a task (see the module docstring).
        self._asyncio_future_blocking = False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._state}>"

    def done(self) -> bool:
        return self._state is not _PENDING

    def cancelled(self) -> bool:
        return self._state is _CANCELLED

    def result(self) -> T:
        """The value; raise the exception it failed with; ``Cancelled`` if cancelled."""
        if self._state is _PENDING:
            raise UsageError(f"{self!r} is not done yet")
        self._retrieved = True
        if self._state is _DONE:
            return self._value  # type: ignore[no-any-return]
        raise self._value

    def exception(self) -> BaseException | None:
        """The exception it failed with (``None`` if it succeeded); ``Cancelled`` if cancelled."""
        if self._state is _PENDING:
            raise UsageError(f"{self!r} is not done yet")
        self._retrieved = True
        if self._state is _CANCELLED:
            raise self._value
        return self._value if self._state is _FAILED else None

    def _value_if_failed(self) -> BaseException | None:
        """The exception it failed with, without marking it retrieved (for callbacks that pass it on)."""
        return self._value if self._state is _FAILED else None

    def get_loop(self) -> Any:
        """asyncio's: the running asyncio loop (asked only by an asyncio task awaiting this future)."""
        import asyncio

        return asyncio.get_running_loop()

    def add_done_callback(self, fn: Callable[[Future[T]], object], *, context: object = None) -> None:
        """Call ``fn(self)`` when done (at once if it already is).

        With a ``context`` (an asyncio task awaiting this future), ``fn`` is
        scheduled on the running asyncio loop instead, in that context.
        """
        if context is not None:
            fn = _OnLoop(fn, context)
        if self._state is _PENDING:
            self._callbacks.append(fn)
        else:
            _call_back(fn, self)

    def remove_done_callback(self, fn: Callable[[Future[T]], object]) -> int:
        before = len(self._callbacks)
        self._callbacks = [cb for cb in self._callbacks if cb != fn]
        return before - len(self._callbacks)

    def set_result(self, value: T) -> None:
        self._complete(_DONE, value)

    def set_exception(self, error: BaseException) -> None:
        if isinstance(error, Cancelled):
            self._complete(_CANCELLED, error)
        else:
            self._complete(_FAILED, error)

    def cancel(self, msg: object = None) -> bool:
        """Complete with ``Cancelled`` unless already done; True if it was pending."""
        if self._state is not _PENDING:
            return False
        canceller, self._canceller = self._canceller, None
        if canceller is not None:
            canceller()
        self._complete(_CANCELLED, Cancelled() if msg is None else Cancelled(msg))
        return True

    def _complete(self, state: str, value: object) -> None:
        if self._state is not _PENDING:
            raise UsageError(f"{self!r} is already done")
        self._state, self._value, self._canceller = state, value, None
        callbacks, self._callbacks = self._callbacks, []
        for fn in callbacks:
            _call_back(fn, self)

    def __await__(self) -> Generator[Any, None, T]:
        if self._state is _PENDING:
            self._asyncio_future_blocking = True
            try:
                yield self
            except Cancelled as cancelled:
                raise _as_awaiter_sees(cancelled) from None
        if self._state is _PENDING:
            raise UsageError(f"{self!r} was awaited outside a task")
        return self.result()

    __iter__ = __await__

    def __del__(self) -> None:
        if self._state is _FAILED and not self._retrieved:
            error = self._value
            log.error(
                "%s failed and nobody retrieved its exception: %s: %s",
                self._describe(),
                type(error).__name__,
                error,
                exc_info=error,
            )

    def _describe(self) -> str:
        return repr(self)


class _OnLoop:
    """A done callback of an asyncio task: run from the loop's ready queue, never inside ``set_result``."""

    __slots__ = ("context", "fn", "loop")

    def __init__(self, fn: Callable[[Any], object], context: object) -> None:
        import asyncio

        self.fn, self.context, self.loop = fn, context, asyncio.get_running_loop()

    def __call__(self, future: Future[Any]) -> None:
        self.loop.call_soon(self.fn, future, context=self.context)  # type: ignore[arg-type]

    def __eq__(self, other: object) -> bool:  # remove_done_callback(fn) finds it
        return other is self or other == self.fn

    __hash__ = None  # type: ignore[assignment]


def _as_awaiter_sees(cancelled: Cancelled) -> BaseException:
    """``cancelled`` as an asyncio task must see it (``AsyncioCancelled``), else unchanged."""
    asyncio = sys.modules.get("asyncio")
    if (
        asyncio is None
        or asyncio._get_running_loop() is None
        or isinstance(cancelled, asyncio.CancelledError)
    ):
        return cancelled
    from eventhub.reactor._aio import AsyncioCancelled

    return AsyncioCancelled(*cancelled.args)


def _call_back(fn: Callable[[Future[Any]], object], future: Future[Any]) -> None:
    try:
        fn(future)
    except PLUGIN_ERRORS as failure:
        reraise_user_interrupt(failure)
        log.exception("done callback %r of %r raised", fn, future)


class Task(Future[T]):
    """A coroutine running on a reactor (``reactor.spawn(coro)``); a ``Future`` of its result."""

    __slots__ = ("_cancels", "_coro", "_must_cancel", "_runner", "_waiting", "name")

    def __init__(self, runner: Runner, coro: Coroutine[Any, Any, T], name: str | None = None) -> None:
        super().__init__()
        self._runner = runner
        self._coro = coro
        self.name = name or getattr(coro, "__qualname__", None) or repr(coro)
        self._waiting: Future[Any] | None = None
        self._must_cancel = False
        self._cancels = 0

    def __repr__(self) -> str:
        return f"<Task {self.name!r} {self._state}>"

    def _describe(self) -> str:
        return f"task {self.name!r}"

    def cancel(self, msg: object = None) -> bool:
        """Throw ``Cancelled`` into the coroutine at its pending ``await``; True if still running."""
        if self._state is not _PENDING:
            return False
        self._cancels += 1
        if not self._must_cancel:
            self._must_cancel = True
            self._stop_waiting()
        return True

    def cancelling(self) -> int:
        """How many cancellations are pending (asyncio's ``Task.cancelling``)."""
        return self._cancels

    def uncancel(self) -> int:
        """Take one cancellation request back; returns how many remain."""
        if self._cancels > 0:
            self._cancels -= 1
        return self._cancels

    def _stop_waiting(self) -> None:
        """Detach from the awaited future (cancelling it if it is a leaf) and step again soon."""
        waiting, self._waiting = self._waiting, None
        if waiting is not None:
            waiting.remove_done_callback(self._wakeup)
            if not isinstance(waiting, Task):
                waiting.cancel()
            self._runner.scheduler.call_soon(self._step)

    def _wakeup(self, future: Future[Any]) -> None:
        if self._waiting is future:
            self._waiting = None
            self._runner.scheduler.call_soon(self._step)

    def _step(self, error: BaseException | None = None) -> None:
        if self._state is not _PENDING:
            return
        if self._must_cancel:
            self._must_cancel = False
            error = Cancelled()
        runner = self._runner
        previous, runner.current = runner.current, self
        try:
            yielded = self._coro.send(None) if error is None else self._coro.throw(error)
        except StopIteration as stop:
            self._finish(_DONE, stop.value)
        except Cancelled as cancelled:
            self._finish(_CANCELLED, cancelled)
        except BaseException as failure:  # a plugin's SystemExit too: the task's failure, not ours
            self._finish(_FAILED, _explained(failure, runner.backend))
        else:
            self._await(yielded)
        finally:
            runner.current = previous

    def _await(self, yielded: object) -> None:
        if isinstance(yielded, Future) and yielded._asyncio_future_blocking:
            yielded._asyncio_future_blocking = False
            self._waiting = yielded
            yielded.add_done_callback(self._wakeup)
            if self._must_cancel:  # cancelled from inside this very step
                self._stop_waiting()
        elif yielded is None:
            self._runner.scheduler.call_soon(self._step)
        else:
            self._runner.scheduler.call_soon(self._step, _not_awaitable_here(yielded, self._runner.backend))

    def _finish(self, state: str, value: object) -> None:
        self._runner.tasks.discard(self)
        self._complete(state, value)

    def _abandon(self) -> None:
        waiting, self._waiting = self._waiting, None
        if waiting is not None:
            waiting.remove_done_callback(self._wakeup)
            if not isinstance(waiting, Task):
                waiting.cancel()
        try:
            self._coro.close()
        except RuntimeError:  # it awaited again inside finally: nothing more can be done
            log.warning("%s ignored being closed", self._describe())
        if self._state is _PENDING:
            self._finish(_CANCELLED, Cancelled("abandoned: the reactor closed"))


def _explained(failure: BaseException, backend: str) -> BaseException:
    """asyncio's "no running event loop" (asyncio.get_running_loop() in a task here) as a UsageError."""
    if type(failure) is RuntimeError and str(failure) == "no running event loop":
        error = UsageError(
            f"a task asked for the running asyncio loop on the {backend!r} backend, where none runs: "
            "run the hub with --backend asyncio (or uvloop) to use asyncio libraries"
        )
        error.__cause__ = failure
        return error
    return failure


def _not_awaitable_here(yielded: object, backend: str) -> BaseException:
    if getattr(yielded, "_asyncio_future_blocking", None) is not None:
        return UsageError(
            f"a task awaited an asyncio future ({type(yielded).__name__}) on the {backend!r} backend, "
            "where no asyncio loop runs: await eventhub's own (reactor.sleep, reactor.defer_to_thread, "
            "streams) or run the hub on an asyncio backend"
        )
    return UsageError(f"a task's coroutine yielded {yielded!r}, which is not an awaitable eventhub knows")


class Runner:
    """The tasks of one reactor: spawning, the current task, cancelling them all at shutdown."""

    __slots__ = ("backend", "current", "scheduler", "tasks")

    def __init__(self, scheduler: _Scheduler, backend: str) -> None:
        self.scheduler = scheduler
        self.backend = backend
        self.tasks: set[Task[Any]] = set()
        self.current: Task[Any] | None = None

    def spawn(self, coro: Coroutine[Any, Any, T], name: str | None = None) -> Task[T]:
        """Run ``coro`` as a task from the next pass of the loop on."""
        if not isinstance(coro, Coroutine):
            raise TypeError(f"spawn() takes a coroutine (call the async function), not {type(coro).__name__}")
        task = Task(self, coro, name)
        self.tasks.add(task)
        self.scheduler.call_soon(task._step)
        return task

    def sleep(self, seconds: float, result: T | None = None) -> Future[T | None]:
        """A future completing with ``result`` after ``seconds`` (cancelling it frees its timer)."""
        timer = None

        def cancel_timer() -> None:
            if timer is not None:
                timer.cancel()

        future: Future[T | None] = Future(cancel_timer)
        timer = self.scheduler.call_later(max(0.0, seconds), _set_if_pending, future, result)
        return future

    def timeout(self, seconds: float | None) -> Timeout:
        return Timeout(self.current_task, self.scheduler.call_later, seconds)

    def current_task(self) -> Task[Any]:
        task = self.current
        if task is None:
            raise UsageError("not inside a task: this must be awaited from a coroutine the reactor runs")
        return task

    def cancel_all(self) -> list[Task[Any]]:
        """Cancel every running task; returns them."""
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        return tasks

    def abandon_all(self) -> None:
        """End the tasks still running when their reactor closes (they ignored cancellation).

        Their coroutines are closed (``GeneratorExit`` at the pending await, so
        ``finally`` blocks run, without awaiting) and what they awaited is
        cancelled, freeing its timer.
        """
        for task in list(self.tasks):
            task._abandon()


def _set_if_pending(future: Future[T], value: T) -> None:
    if not future.done():
        future.set_result(value)


class Timeout:
    """``async with reactor.timeout(seconds):`` raise ``TimeoutError`` at the pending await when due.

    ``seconds=None`` never expires. ``expired`` tells, afterwards, whether it did.
    """

    __slots__ = ("_call_later", "_current_task", "_task", "_timer", "expired", "seconds")

    #: What the task raises at its pending await when cancelled (asyncio's own on the asyncio backends).
    cancelled: type[BaseException] = Cancelled

    def __init__(
        self,
        current_task: Callable[[], Any],
        call_later: Callable[[float, Callable[[], None]], Any],
        seconds: float | None,
    ) -> None:
        self._current_task = current_task
        self._call_later = call_later
        self.seconds = seconds
        self._task: Any = None
        self._timer: Any = None
        self.expired = False

    async def __aenter__(self) -> Timeout:
        self._task = self._current_task()
        if self.seconds is not None:
            self._timer = self._call_later(max(0.0, self.seconds), self._expire)
        return self

    def _expire(self) -> None:
        if self._task is not None and not self._task.done():
            self.expired = True
            self._task.cancel()

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._timer is not None:
            self._timer.cancel()
        task, self._task = self._task, None
        if self.expired and task is not None and isinstance(error, self.cancelled):
            uncancel = getattr(task, "uncancel", None)  # asyncio's tasks have it from Python 3.11
            if uncancel is None or uncancel() == 0:
                raise TimeoutError(f"timed out after {self.seconds}s") from error
