"""``twisted.internet.defer``: ``Deferred`` and its helpers, with Twisted's semantics.

Why it is shaped this way
-------------------------

A ``Deferred`` is a result that is not there yet plus a chain of
``(callback, errback)`` pairs. When it fires, the result runs down the chain:
a callback's return value (or a ``Failure`` of what it raised) is the input of
the next pair, whose callback runs for a value and whose errback runs for a
``Failure``. Everything that decides the order of calls lives in
``_runCallbacks`` (and the step it repeats, ``_run_until_blocked``): a loop
over a stack of Deferreds, never recursion, so that neither long chains nor
Deferreds waiting on Deferreds thousands deep exhaust the Python stack.
A Deferred's chain stops when it is empty or the Deferred is *paused*:

- a callback returned another Deferred: if that one has a result, it is taken
  at once; otherwise a *continuation* is appended to that one's chain and this
  one pauses. When the other one's chain reaches the continuation, its result
  (error included: it is now this chain's to handle) moves here, the other
  one's result becomes ``None``, and the loop runs this chain next, then
  resumes the other's;
- ``pause()`` was called.

A callback that adds callbacks to its own Deferred never runs the chain
re-entrantly: the running loop picks the new work up (``_running`` guards it).

A Deferred garbage-collected with a ``Failure`` as its result logs it once,
"Unhandled error in Deferred:", as Twisted does. Failures are
``cleanFailure()``-ed as they enter a chain (traceback kept as text, frames
dropped), so no reference cycle delays that until the cycle collector runs.

Coroutines: ``await d`` inside a task of the eventhub reactor awaits an
eventhub ``Future`` that the Deferred completes (the task protocol of
``eventhub.reactor._tasks``); cancelling the task cancels the Deferred.
``Deferred.fromCoroutine`` / ``ensureDeferred`` run a coroutine with the
compat reactor's ``spawn``; unlike Twisted, it starts on the next pass of the
loop, not synchronously.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Coroutine, Generator, Iterable
from typing import Any, Generic, TypeVar, cast

from eventhub.compat.twisted.python.failure import Failure
from eventhub.reactor._tasks import Future, TaskAPI

__all__ = [
    "AlreadyCalledError",
    "CancelledError",
    "Deferred",
    "DeferredList",
    "DeferredLock",
    "DeferredQueue",
    "DeferredSemaphore",
    "FirstError",
    "QueueOverflow",
    "QueueUnderflow",
    "TimeoutError",
    "ensureDeferred",
    "fail",
    "gatherResults",
    "inlineCallbacks",
    "maybeDeferred",
    "returnValue",
    "succeed",
]

log = logging.getLogger("eventhub.compat.twisted.defer")

T = TypeVar("T")

_Call = tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]


def _passthru(arg: Any) -> Any:
    return arg


_PASS: _Call = (_passthru, (), {})


def _continuation(result: Any, waiting: Deferred[Any]) -> None:
    """Marks where a Deferred's chain continues another's (never called: ``_runCallbacks`` does it)."""
    raise AssertionError("a Deferred continuation was called")


class AlreadyCalledError(Exception):
    """``callback`` / ``errback`` on a Deferred that already has a result."""


class CancelledError(Exception):
    """A Deferred was cancelled (``d.cancel()``) and its canceller did not fire it otherwise."""


class TimeoutError(Exception):
    """``addTimeout`` ran out."""


class FirstError(Exception):
    """``DeferredList(fireOnOneErrback=True)`` / ``gatherResults``: the first failure and its index."""

    def __init__(self, failure: Failure, index: int) -> None:
        super().__init__(failure, index)
        self.subFailure = failure
        self.index = index

    def __str__(self) -> str:
        return f"FirstError[#{self.index}, {self.subFailure!r}]"


class _NotFired:
    def __repr__(self) -> str:
        return "<not fired>"


_NOT_FIRED: Any = _NotFired()


class Deferred(Generic[T]):
    """A result that arrives later, and the callbacks and errbacks waiting for it."""

    def __init__(self, canceller: Callable[[Deferred[T]], None] | None = None) -> None:
        self.callbacks: list[tuple[_Call, _Call]] = []
        self.called = False
        self.paused = 0
        self.result: Any = _NOT_FIRED
        self._canceller = canceller
        self._suppressAlreadyCalled = False
        self._running = False
        self._chainedTo: Deferred[Any] | None = None

    def __repr__(self) -> str:
        if self._chainedTo is not None:
            state = f"waiting on {self._chainedTo!r}"
        elif self.called:
            state = f"current result: {self.result!r}"
        else:
            state = "pending"
        return f"<Deferred at 0x{id(self):x} {state}>"

    # -- adding to the chain ---------------------------------------------------

    def addCallbacks(
        self,
        callback: Callable[..., Any],
        errback: Callable[..., Any] | None = None,
        callbackArgs: tuple[Any, ...] = (),
        callbackKeywords: dict[str, Any] | None = None,
        errbackArgs: tuple[Any, ...] = (),
        errbackKeywords: dict[str, Any] | None = None,
    ) -> Deferred[Any]:
        """Add one pair: ``callback`` for a value, ``errback`` for a ``Failure``; returns self."""
        eb: _Call = _PASS if errback is None else (errback, errbackArgs, errbackKeywords or {})
        self.callbacks.append(((callback, callbackArgs, callbackKeywords or {}), eb))
        if self.called:
            self._runCallbacks()
        return self

    def addCallback(self, callback: Callable[..., Any], *args: Any, **kw: Any) -> Deferred[Any]:
        """Call ``callback(result, *args, **kw)`` on success; failures pass by."""
        self.callbacks.append(((callback, args, kw), _PASS))
        if self.called:
            self._runCallbacks()
        return self

    def addErrback(self, errback: Callable[..., Any], *args: Any, **kw: Any) -> Deferred[Any]:
        """Call ``errback(failure, *args, **kw)`` on failure; values pass by."""
        self.callbacks.append((_PASS, (errback, args, kw)))
        if self.called:
            self._runCallbacks()
        return self

    def addBoth(self, callback: Callable[..., Any], *args: Any, **kw: Any) -> Deferred[Any]:
        """Call ``callback(result_or_failure, *args, **kw)`` either way."""
        call: _Call = (callback, args, kw)
        self.callbacks.append((call, call))
        if self.called:
            self._runCallbacks()
        return self

    def chainDeferred(self, d: Deferred[Any]) -> Deferred[Any]:
        """Fire ``d`` with this chain's result at this point (``d``'s error is then ``d``'s to handle)."""
        d._chainedTo = self
        return self.addCallbacks(d.callback, d.errback)

    def addTimeout(
        self, timeout: float, clock: Any, onTimeoutCancel: Callable[[Any, float], Any] | None = None
    ) -> Deferred[T]:
        """Cancel this Deferred after ``timeout`` seconds of ``clock``; ``CancelledError`` becomes
        ``defer.TimeoutError``."""
        timed_out = False

        def expire() -> None:
            nonlocal timed_out
            timed_out = True
            self.cancel()

        call = clock.callLater(timeout, expire)

        def done(result: Any) -> Any:
            if call.active():
                call.cancel()
            if timed_out:
                if onTimeoutCancel is not None:
                    return onTimeoutCancel(result, timeout)
                if isinstance(result, Failure) and result.check(CancelledError):
                    return Failure(TimeoutError(f"Deferred timed out after {timeout} seconds"))
            return result

        self.addBoth(done)
        return self

    # -- firing ----------------------------------------------------------------

    def callback(self, result: Any) -> None:
        """Fire with a value (not a Deferred): the chain starts running now."""
        if isinstance(result, Deferred):
            raise TypeError("callback() with a Deferred: return it from a callback to chain it instead")
        self._startRunCallbacks(result)

    def errback(self, fail: Failure | BaseException | None = None) -> None:
        """Fire with a failure (``None``: the exception being handled now)."""
        if fail is None:
            fail = Failure()
        elif not isinstance(fail, Failure):
            fail = Failure(fail)
        self._startRunCallbacks(fail)

    def _startRunCallbacks(self, result: Any) -> None:
        if self.called:
            if self._suppressAlreadyCalled:
                self._suppressAlreadyCalled = False
                return
            raise AlreadyCalledError(f"{self!r} already has a result")
        self.called = True
        self.result = result
        if isinstance(result, Failure):
            result.cleanFailure()
        self._runCallbacks()

    def cancel(self) -> None:
        """Ask whoever would fire this Deferred to stop.

        The canceller given at creation runs; if it did not fire the Deferred, it
        fails with ``CancelledError``. Without a canceller, the ``callback`` that
        comes later anyway is ignored once. A Deferred waiting on one a callback
        returned cancels that one instead.
        """
        if not self.called:
            canceller = self._canceller
            if canceller is not None:
                canceller(self)
            else:
                self._suppressAlreadyCalled = True
            if not self.called:
                self.errback(Failure(CancelledError()))
        elif isinstance(self.result, Deferred):
            self.result.cancel()

    def pause(self) -> None:
        """Stop running the chain until ``unpause()``."""
        self.paused += 1

    def unpause(self) -> None:
        self.paused -= 1
        if not self.paused and self.called:
            self._runCallbacks()

    # -- the one place callbacks run -------------------------------------------

    def _runCallbacks(self) -> None:
        """Run the chain; continue the Deferreds waiting on it, in a loop (see the module docstring).

        ``stack`` holds the Deferreds being run: when one's chain reaches the
        continuation of a Deferred that waits on it, that one is pushed and run
        next (its own result taken from this one), and this one resumes after
        it. No recursion, however deep Deferreds wait on each other.
        """
        if self._running:
            return  # the loop below, further up the stack, takes the new work
        stack: list[Deferred[Any]] = [self]
        while stack:
            current = stack[-1]
            waiting = current._run_until_blocked()
            if waiting is not None:
                stack.append(waiting)  # its turn now; current resumes once it is done
            else:
                stack.pop()  # finished, or paused until another Deferred fires

    def _run_until_blocked(self) -> Deferred[Any] | None:
        """Run callbacks until the chain is empty or paused; a Deferred to continue now, or None."""
        chain = self.callbacks
        while chain and not self.paused:
            success, failure = chain.pop(0)
            fn, args, kw = failure if isinstance(self.result, Failure) else success
            if fn is _passthru:
                continue
            if fn is _continuation:
                waiting: Deferred[Any] = args[0]
                waiting.result, self.result = self.result, None  # its error is the waiting one's now
                waiting.paused -= 1
                waiting._chainedTo = None
                if not waiting.paused:
                    return waiting
                continue  # paused by its owner too: unpause() runs it later
            self._running = True
            try:
                self.result = fn(self.result, *args, **kw)
                if self.result is self:
                    raise TypeError(f"callback {fn!r} returned the Deferred it is a callback of")
            except BaseException as exc:  # an errback's raise is the next failure, SystemExit too
                self.result = Failure(exc)
                self.result.cleanFailure()
            finally:
                self._running = False
            if isinstance(self.result, Deferred):
                self._chain(self.result)
        return None

    def _chain(self, inner: Deferred[Any]) -> None:
        """A callback returned ``inner``: take its result now, or pause until it has one."""
        if inner.called and not inner.paused and not inner._running and not inner.callbacks:
            self.result, inner.result = inner.result, None
            return
        self.paused += 1
        self._chainedTo = inner
        continuation: _Call = (_continuation, (self,), {})
        inner.callbacks.append((continuation, continuation))
        if inner.called and not inner.paused:
            inner._runCallbacks()  # its pending callbacks, then the continuation

    def __del__(self) -> None:
        result = getattr(self, "result", None)
        if isinstance(result, Failure):
            log.error(
                "Unhandled error in Deferred:\n%s",
                result.getTraceback().rstrip("\n"),
                extra={"failure": result},
            )

    # -- coroutines --------------------------------------------------------------

    def __await__(self) -> Generator[Any, None, T]:
        return self.asFuture().__await__()

    __iter__ = __await__

    def asFuture(self) -> Future[T]:
        """An eventhub ``Future`` completed by this Deferred (cancelling it cancels this one).

        The Deferred's result then passes to the future: ``None`` continues its chain.
        """
        cancelling = False

        def cancel_me() -> None:
            nonlocal cancelling
            cancelling = True
            self.cancel()

        future: Future[T] = Future(cancel_me)

        def done(result: Any) -> None:
            if future.done() or cancelling:
                return
            if isinstance(result, Failure):
                future.set_exception(result.value)
            else:
                future.set_result(result)

        self.addBoth(done)
        return future

    @classmethod
    def fromFuture(cls, future: Future[Any] | TaskAPI[Any]) -> Deferred[Any]:
        """A Deferred fired by an eventhub ``Future`` (a ``Task``, a ``ThreadResult``...)."""

        def cancel(d: Deferred[Any]) -> None:
            future.cancel()

        d: Deferred[Any] = cls(cancel)

        def done(f: Any) -> None:  # a Future or a task (an asyncio one on the asyncio backends)
            if d.called:  # cancelled already, whatever the coroutine did with its Cancelled
                if not f.cancelled():
                    f.exception()  # mark it retrieved: the Deferred has reported the outcome
                return
            if f.cancelled():
                d.errback(Failure(CancelledError()))
                return
            error = f.exception()
            if error is None:
                d.callback(f.result())
            else:
                d.errback(Failure(error))

        future.add_done_callback(done)
        return d

    @classmethod
    def fromCoroutine(cls, coro: Coroutine[Any, Any, T]) -> Deferred[T]:
        """Run ``coro`` as a task of the compat reactor; the Deferred fires with its outcome."""
        if not inspect.iscoroutine(coro):
            raise TypeError(f"fromCoroutine() takes a coroutine, not {type(coro).__name__}")
        from eventhub.compat.twisted.internet import _global

        task = _global.get().eventhub_reactor.spawn(coro)
        return cast("Deferred[T]", cls.fromFuture(task))


def succeed(result: T) -> Deferred[T]:
    """A Deferred that already has ``result``."""
    d: Deferred[T] = Deferred()
    d.callback(result)
    return d


def fail(result: Failure | BaseException | None = None) -> Deferred[Any]:
    """A Deferred that already failed with ``result`` (``None``: the exception being handled)."""
    d: Deferred[Any] = Deferred()
    d.errback(result)
    return d


def maybeDeferred(f: Callable[..., Any], *args: Any, **kw: Any) -> Deferred[Any]:
    """Call ``f``; always a Deferred: its returned Deferred, a value, or the failure it raised.

    A returned coroutine runs through ``Deferred.fromCoroutine``.
    """
    try:
        result = f(*args, **kw)
    except BaseException as exc:
        return fail(Failure(exc))
    if isinstance(result, Deferred):
        return result
    if inspect.iscoroutine(result):
        return Deferred.fromCoroutine(result)
    if isinstance(result, Failure):
        return fail(result)
    return succeed(result)


def ensureDeferred(coro: Deferred[T] | Coroutine[Any, Any, T]) -> Deferred[T]:
    """A Deferred for ``coro`` (run as a task), or ``coro`` itself when it is a Deferred."""
    if isinstance(coro, Deferred):
        return coro
    return Deferred.fromCoroutine(coro)


class DeferredList(Deferred[list[tuple[bool, Any]]]):
    """Fires with ``[(success, result_or_failure), ...]`` once every Deferred has a result.

    ``fireOnOneCallback``: fire with ``(result, index)`` at the first success;
    ``fireOnOneErrback``: fail with ``FirstError`` at the first failure;
    ``consumeErrors``: the failures stop in the list (not logged as unhandled).
    """

    def __init__(
        self,
        deferredList: Iterable[Deferred[Any]],
        fireOnOneCallback: bool = False,
        fireOnOneErrback: bool = False,
        consumeErrors: bool = False,
    ) -> None:
        self._deferredList = list(deferredList)
        self.resultList: list[Any] = [None] * len(self._deferredList)
        super().__init__(self._cancelAll)
        self.fireOnOneCallback = fireOnOneCallback
        self.fireOnOneErrback = fireOnOneErrback
        self.consumeErrors = consumeErrors
        self.finishedCount = 0
        if not self._deferredList and not fireOnOneCallback:
            self.callback([])
        for index, d in enumerate(self._deferredList):
            d.addBoth(self._cbDeferred, index)

    def _cbDeferred(self, result: Any, index: int) -> Any:
        succeeded = not isinstance(result, Failure)
        self.resultList[index] = (succeeded, result)
        self.finishedCount += 1
        if not self.called:
            if succeeded and self.fireOnOneCallback:
                self.callback((result, index))
            elif not succeeded and self.fireOnOneErrback:
                self.errback(Failure(FirstError(result, index)))
            elif self.finishedCount == len(self.resultList):
                self.callback(self.resultList)
        if not succeeded and self.consumeErrors:
            return None
        return result

    @staticmethod
    def _cancelAll(self: Deferred[Any]) -> None:
        assert isinstance(self, DeferredList)
        for d in self._deferredList:
            d.cancel()


def _values(results: list[tuple[bool, Any]]) -> list[Any]:
    return [value for _, value in results]


def gatherResults(deferredList: Iterable[Deferred[Any]], consumeErrors: bool = False) -> Deferred[list[Any]]:
    """The list of results, in order; the first failure fails it with ``FirstError``."""
    d = DeferredList(deferredList, fireOnOneErrback=True, consumeErrors=consumeErrors)
    d.addCallback(_values)
    return cast("Deferred[list[Any]]", d)


# -- inlineCallbacks ------------------------------------------------------------


class _DefGen_Return(BaseException):
    def __init__(self, value: Any) -> None:
        super().__init__(value)
        self.value = value


def returnValue(val: Any) -> None:
    """Finish an ``@inlineCallbacks`` generator with ``val`` (``return val`` works too)."""
    raise _DefGen_Return(val)


def inlineCallbacks(
    f: Callable[..., Generator[Any, Any, T]],
) -> Callable[..., Deferred[T]]:
    """A generator function that ``yield``-s Deferreds becomes one returning a Deferred.

    Each yielded Deferred's result is sent back into the generator (a failure is
    thrown in); anything else yielded is sent back as it is. Cancelling the
    returned Deferred cancels the one the generator is waiting on.
    """

    @functools.wraps(f)
    def unwindGenerator(*args: Any, **kwargs: Any) -> Deferred[T]:
        try:
            gen = f(*args, **kwargs)
        except _DefGen_Return:
            raise TypeError(f"inlineCallbacks: {f!r} is not a generator (it called returnValue)") from None
        if not inspect.isgenerator(gen):
            raise TypeError(f"inlineCallbacks requires {f!r} to produce a generator; instead got {gen!r}")
        return _InlineCallbacks(gen).deferred

    return unwindGenerator


class _InlineCallbacks:
    """Drives one generator: a loop while yielded Deferreds already have results, a callback otherwise."""

    def __init__(self, gen: Generator[Any, Any, Any]) -> None:
        self.gen = gen
        self.waiting: Deferred[Any] | None = None
        self.deferred: Deferred[Any] = Deferred(self._cancel)
        self._step(None)

    def _cancel(self, _: Deferred[Any]) -> None:
        waiting = self.waiting
        if waiting is not None:
            waiting.cancel()  # CancelledError is thrown into the generator

    def _finish(self, result: Any) -> None:
        if not self.deferred.called:  # else: cancelled meanwhile, and already failed
            if isinstance(result, Failure):
                self.deferred.errback(result)
            else:
                self.deferred.callback(result)

    def _step(self, result: Any) -> None:
        while True:
            try:
                if isinstance(result, Failure):
                    yielded = self.gen.throw(result.value.with_traceback(result.tb))
                else:
                    yielded = self.gen.send(result)
            except StopIteration as stop:
                self._finish(stop.value)
                return
            except _DefGen_Return as ret:
                self._finish(ret.value)
                return
            except BaseException as exc:
                self._finish(Failure(exc))
                return
            if not isinstance(yielded, Deferred):
                result = yielded
                continue
            # [still inside this step?, the result if it arrived synchronously]
            pending: list[Any] = [True, None]

            def resume(value: Any, pending: list[Any] = pending) -> None:
                if pending[0]:
                    pending[0], pending[1] = False, value
                else:
                    self.waiting = None
                    self._step(value)
                return None  # the yielded Deferred's error is the generator's to handle

            yielded.addBoth(resume)
            if pending[0]:
                pending[0] = False
                self.waiting = yielded
                return
            result = pending[1]


# -- locks, semaphores, queues ----------------------------------------------------------


class _ConcurrencyPrimitive:
    """What DeferredLock and DeferredSemaphore share: waiters, ``run``, ``async with``."""

    def __init__(self) -> None:
        self.waiting: list[Deferred[Any]] = []

    def acquire(self) -> Deferred[Any]:
        raise NotImplementedError

    def release(self) -> None:
        raise NotImplementedError

    def _cancelAcquire(self, d: Deferred[Any]) -> None:
        self.waiting.remove(d)

    def run(self, f: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred[Any]:
        """Acquire, call ``f`` (its Deferred waited for), release, whatever happened."""

        def execute(_: Any) -> Deferred[Any]:
            return maybeDeferred(f, *args, **kwargs).addBoth(self._releaseAndReturn)

        return self.acquire().addCallback(execute)

    def _releaseAndReturn(self, result: Any) -> Any:
        self.release()
        return result

    async def __aenter__(self) -> _ConcurrencyPrimitive:
        await self.acquire()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.release()


class DeferredLock(_ConcurrencyPrimitive):
    """A lock: ``acquire()`` fires with the lock once it is free; ``release()`` hands it to the next."""

    locked = False

    def acquire(self) -> Deferred[DeferredLock]:
        d: Deferred[DeferredLock] = Deferred(self._cancelAcquire)
        if self.locked:
            self.waiting.append(d)
        else:
            self.locked = True
            d.callback(self)
        return d

    def release(self) -> None:
        if not self.locked:
            raise AssertionError("Tried to release an unlocked lock")
        self.locked = False
        if self.waiting:
            self.locked = True
            self.waiting.pop(0).callback(self)


class DeferredSemaphore(_ConcurrencyPrimitive):
    """At most ``tokens`` holders at once (``run`` limits concurrency)."""

    def __init__(self, tokens: int) -> None:
        if tokens < 1:
            raise ValueError("DeferredSemaphore requires tokens >= 1")
        super().__init__()
        self.tokens = tokens
        self.limit = tokens

    def acquire(self) -> Deferred[DeferredSemaphore]:
        d: Deferred[DeferredSemaphore] = Deferred(self._cancelAcquire)
        if self.tokens <= 0:
            self.waiting.append(d)
        else:
            self.tokens -= 1
            d.callback(self)
        return d

    def release(self) -> None:
        if self.tokens >= self.limit:
            raise AssertionError("Someone released me too many times: too many tokens!")
        self.tokens += 1
        if self.waiting:
            self.tokens -= 1
            self.waiting.pop(0).callback(self)


class QueueOverflow(Exception):
    """``put`` on a full ``DeferredQueue``."""


class QueueUnderflow(Exception):
    """``get`` on a ``DeferredQueue`` with ``backlog`` getters waiting already."""


class DeferredQueue(Generic[T]):
    """``put(x)``; ``get()`` is a Deferred firing with the next item (at once if one is there)."""

    def __init__(self, size: int | None = None, backlog: int | None = None) -> None:
        self.waiting: list[Deferred[T]] = []
        self.pending: list[T] = []
        self.size = size
        self.backlog = backlog

    def _cancelGet(self, d: Deferred[T]) -> None:
        self.waiting.remove(d)

    def put(self, obj: T) -> None:
        if self.waiting:
            self.waiting.pop(0).callback(obj)
        elif self.size is None or len(self.pending) < self.size:
            self.pending.append(obj)
        else:
            raise QueueOverflow()

    def get(self) -> Deferred[T]:
        d: Deferred[T] = Deferred(self._cancelGet)
        if self.pending:
            d.callback(self.pending.pop(0))
        elif self.backlog is None or len(self.waiting) < self.backlog:
            self.waiting.append(d)
        else:
            raise QueueUnderflow()
        return d
