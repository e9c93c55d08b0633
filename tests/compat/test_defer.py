"""Deferreds: the chain semantics, run on the compat module and, where installed, on Twisted's.

Every test taking ``defer`` runs on ``eventhub.compat.twisted.internet.defer``
and on ``twisted.internet.defer`` (skipped when Twisted is not installed), so
the expected values are Twisted's own behaviour, not our reading of it.
"""

# defer is the compat module or Twisted's, chosen per test at run time: its decorators are untyped here.
# mypy: disable-error-code="untyped-decorator"
from __future__ import annotations

import gc
import logging
from collections.abc import Generator, Iterator
from types import ModuleType
from typing import Any

import pytest

from eventhub.compat.twisted import TwistedReactor, use_reactor
from eventhub.compat.twisted.internet import defer as compat_defer
from eventhub.compat.twisted.python.failure import Failure, NoCurrentExceptionError
from eventhub.errors import Cancelled
from eventhub.testing import MemoryReactor


def _twisted_defer() -> ModuleType:
    twisted_defer: ModuleType = pytest.importorskip("twisted.internet.defer")
    return twisted_defer


@pytest.fixture(params=["compat", "twisted"])
def defer(request: pytest.FixtureRequest) -> ModuleType:
    return compat_defer if request.param == "compat" else _twisted_defer()


def test_callbacks_and_errbacks_alternate(defer: ModuleType) -> None:
    trace: list[Any] = []
    d = defer.Deferred()

    def boom(value: int) -> int:
        trace.append(("cb", value))
        raise ValueError("boom")

    def handle(failure: Any) -> int:
        trace.append(("eb", failure.check(ValueError) is ValueError, failure.getErrorMessage()))
        return 7

    d.addCallback(lambda v: v + 1)
    d.addErrback(lambda f: trace.append("never"))
    d.addCallback(boom)
    d.addCallback(lambda v: trace.append("skipped"))
    d.addErrback(handle)

    def both(result: int) -> int:
        trace.append(("both", result))
        return result * 2

    d.addBoth(both)
    d.addCallbacks(lambda v: trace.append(("final", v)), lambda f: trace.append("no"))
    d.callback(1)
    assert trace == [("cb", 2), ("eb", True, "boom"), ("both", 7), ("final", 14)]
    assert d.result is None


def test_callback_args_and_already_called(defer: ModuleType) -> None:
    seen: list[Any] = []
    d = defer.succeed("x")
    d.addCallback(lambda v, a, k=None: seen.append((v, a, k)), 1, k=2)
    assert seen == [("x", 1, 2)]
    with pytest.raises(defer.AlreadyCalledError):
        d.callback("again")


def test_a_deferred_returned_by_a_callback_pauses_the_chain(defer: ModuleType) -> None:
    inner = defer.Deferred()
    outer = defer.Deferred()
    seen: list[Any] = []
    outer.addCallback(lambda _: inner)
    outer.addCallback(seen.append)
    outer.callback(None)
    assert seen == []
    inner.callback("from inner")
    assert seen == ["from inner"]
    assert inner.result is None  # handed over to outer


def test_an_already_fired_inner_deferred_continues_at_once(defer: ModuleType) -> None:
    seen: list[Any] = []
    d = defer.succeed(1)
    d.addCallback(lambda v: defer.succeed(v + 1))
    d.addCallback(lambda v: defer.fail(KeyError(v)))
    d.addErrback(lambda f: seen.append(f.value.args))
    assert seen == [(2,)]


def test_a_long_chain_of_already_fired_deferreds_does_not_recurse(defer: ModuleType) -> None:
    d = defer.succeed(0)
    for _ in range(5000):
        d.addCallback(lambda v: defer.succeed(v + 1))
    assert d.result == 5000


def test_deeply_nested_waiting_deferreds_continue_without_recursion(defer: ModuleType) -> None:
    innermost = defer.Deferred()
    d = innermost
    for _ in range(5000):  # each waits on the one before: far deeper than the recursion limit
        outer = defer.succeed(None)
        outer.addCallback(lambda _, inner=d: inner)
        d = outer
    innermost.callback("through 5000 levels")
    assert d.result == "through 5000 levels"


def test_a_chained_deferred_gives_its_result_away(defer: ModuleType) -> None:
    inner = defer.Deferred()
    outer = defer.succeed(None)
    outer.addCallback(lambda _: inner)
    after: list[Any] = []
    inner.callback("value")
    inner.addCallback(after.append)  # added after the hand-over: sees None, as in Twisted
    assert outer.result == "value" and after == [None]


def test_a_paused_waiting_deferred_resumes_on_unpause(defer: ModuleType) -> None:
    inner = defer.Deferred()
    outer = defer.succeed(None)
    outer.addCallback(lambda _: inner)
    seen: list[Any] = []
    outer.addCallback(seen.append)
    outer.pause()
    inner.callback("late")
    assert seen == []
    outer.unpause()
    assert seen == ["late"]


def test_callbacks_added_from_inside_a_callback_run_in_order(defer: ModuleType) -> None:
    trace: list[str] = []
    d = defer.Deferred()

    def first(_: object) -> None:
        d.addCallback(lambda _: trace.append("added inside"))
        trace.append("first")

    d.addCallback(first)
    d.addCallback(lambda _: trace.append("second"))
    d.callback(None)
    assert trace == ["first", "second", "added inside"]


def test_chain_deferred(defer: ModuleType) -> None:
    a, b = defer.Deferred(), defer.Deferred()
    seen: list[Any] = []
    b.addCallback(seen.append)
    a.chainDeferred(b)
    a.callback(3)
    assert seen == [3]


def test_cancel_without_canceller_fails_with_cancelled_error_and_eats_a_late_callback(
    defer: ModuleType,
) -> None:
    d = defer.Deferred()
    seen: list[Any] = []
    d.addErrback(lambda f: seen.append(f.check(defer.CancelledError)))
    d.cancel()
    assert seen == [defer.CancelledError]
    d.callback("too late")  # ignored once, as Twisted does


def test_cancel_runs_the_canceller_which_may_fire_otherwise(defer: ModuleType) -> None:
    calls: list[Any] = []
    d = defer.Deferred(lambda d: calls.append("canceller"))
    d.addErrback(lambda f: calls.append(f.type))
    d.cancel()
    assert calls == ["canceller", defer.CancelledError]
    d2 = defer.Deferred(lambda d: d.callback("fallback"))
    d2.addCallback(calls.append)
    d2.cancel()
    assert calls[-1] == "fallback"
    with pytest.raises(defer.AlreadyCalledError):
        d2.callback("a canceller that fired leaves nothing to suppress")


def test_cancelling_a_waiting_deferred_cancels_the_inner_one(defer: ModuleType) -> None:
    cancelled: list[str] = []
    inner = defer.Deferred(lambda _: cancelled.append("inner"))
    outer = defer.succeed(None)
    outer.addCallback(lambda _: inner)
    outer.addErrback(lambda f: cancelled.append(f.type.__name__))
    outer.cancel()
    assert cancelled == ["inner", "CancelledError"]


def test_maybe_deferred(defer: ModuleType) -> None:
    assert defer.maybeDeferred(lambda: 5).result == 5
    raised = defer.maybeDeferred(lambda: 1 / 0)
    seen: list[Any] = []
    raised.addErrback(lambda f: seen.append(f.type))
    assert seen == [ZeroDivisionError]
    passed = defer.Deferred()
    assert defer.maybeDeferred(lambda: passed) is passed


def test_gather_results_in_order_and_with_a_failure(defer: ModuleType) -> None:
    a, b, c = defer.Deferred(), defer.Deferred(), defer.Deferred()
    seen: list[Any] = []
    defer.gatherResults([a, b, c]).addCallback(seen.append)
    c.callback("c")
    a.callback("a")
    b.callback("b")
    assert seen == [["a", "b", "c"]]

    x, y = defer.Deferred(), defer.Deferred()
    errors: list[Any] = []
    defer.gatherResults([x, y], consumeErrors=True).addErrback(errors.append)
    y.errback(KeyError("y"))
    x.callback("x")
    [failure] = errors
    assert failure.check(defer.FirstError)
    assert failure.value.index == 1
    assert failure.value.subFailure.check(KeyError)


def test_deferred_list(defer: ModuleType) -> None:
    a, b = defer.Deferred(), defer.Deferred()
    seen: list[Any] = []
    defer.DeferredList([a, b], consumeErrors=True).addCallback(seen.append)
    a.errback(ValueError("a"))
    b.callback("b")
    [[(ok_a, fail_a), (ok_b, value_b)]] = seen
    assert (ok_a, fail_a.type, ok_b, value_b) == (False, ValueError, True, "b")
    first: list[Any] = []
    c, d = defer.Deferred(), defer.Deferred()
    defer.DeferredList([c, d], fireOnOneCallback=True).addCallback(first.append)
    d.callback("d")
    assert first == [("d", 1)]
    assert defer.DeferredList([]).result == []


def test_inline_callbacks(defer: ModuleType) -> None:
    waiting = defer.Deferred()

    @defer.inlineCallbacks
    def work(x: int) -> Generator[Any, Any, int]:
        got: int = yield defer.succeed(x + 1)
        more: int = yield waiting
        try:
            yield defer.fail(KeyError("caught"))
        except KeyError as error:
            assert error.args == ("caught",)
        plain = yield "not a deferred"
        assert plain == "not a deferred"
        return got + more

    d = work(1)
    assert not d.called
    waiting.callback(10)
    assert d.result == 12


@pytest.mark.filterwarnings("ignore:twisted.internet.defer.returnValue was deprecated")
def test_inline_callbacks_return_value_and_errors(defer: ModuleType) -> None:
    @defer.inlineCallbacks
    def legacy() -> Generator[Any, Any, None]:
        yield defer.succeed(None)
        defer.returnValue("old style")

    @defer.inlineCallbacks
    def failing() -> Generator[Any, Any, None]:
        yield defer.succeed(None)
        raise LookupError("inside")

    assert legacy().result == "old style"
    errors: list[Any] = []
    failing().addErrback(errors.append)
    assert errors[0].check(LookupError)

    with pytest.raises(TypeError):
        defer.inlineCallbacks(lambda: 1)()


def test_cancelling_inline_callbacks_cancels_what_it_waits_for(defer: ModuleType) -> None:
    inner_cancelled: list[bool] = []
    inner = defer.Deferred(lambda _: inner_cancelled.append(True))
    caught: list[str] = []

    @defer.inlineCallbacks
    def work() -> Generator[Any, Any, None]:
        try:
            yield inner
        except defer.CancelledError:
            caught.append("cancelled")
            raise

    d = work()
    errors: list[Any] = []
    d.addErrback(errors.append)
    d.cancel()
    assert inner_cancelled == [True] and caught == ["cancelled"]
    assert errors[0].check(defer.CancelledError)


def test_unhandled_error_is_logged_once_when_collected(
    defer: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    def lose_one() -> None:
        d = defer.Deferred()
        d.addCallback(lambda _: 1 / 0)
        d.callback(None)

    if defer is compat_defer:
        with caplog.at_level(logging.ERROR, logger="eventhub.compat.twisted.defer"):
            lose_one()
            gc.collect()
        messages = [r.getMessage() for r in caplog.records]
        assert len(messages) == 1
        assert messages[0].startswith("Unhandled error in Deferred:")
        assert "ZeroDivisionError" in messages[0]
        return
    observed: list[dict[str, Any]] = []
    from twisted.logger import globalLogPublisher

    # Twisted annotates observers as ILogObserver; a plain callable is what its documentation passes.
    globalLogPublisher.addObserver(observed.append)  # type: ignore[arg-type]
    try:
        lose_one()
        gc.collect()
    finally:
        globalLogPublisher.removeObserver(observed.append)  # type: ignore[arg-type]
    [failure] = [e["log_failure"] for e in observed if "log_failure" in e]
    assert failure.check(ZeroDivisionError)


def test_handled_errors_are_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    def handle_both() -> None:
        compat_defer.fail(KeyError("k")).addErrback(lambda f: None)
        inner = compat_defer.fail(KeyError("passed on"))
        outer = compat_defer.succeed(None)
        outer.addCallback(lambda _: inner)
        outer.addErrback(lambda f: None)

    with caplog.at_level(logging.ERROR, logger="eventhub.compat.twisted.defer"):
        handle_both()
        gc.collect()
    assert caplog.records == []


def test_deferred_lock_and_semaphore(defer: ModuleType) -> None:
    lock = defer.DeferredLock()
    order: list[Any] = []
    first = defer.Deferred()
    lock.run(lambda: first).addCallback(lambda r: order.append(("first done", r)))
    lock.run(order.append, "second ran")
    assert lock.locked and order == []
    first.callback("one")
    assert order == ["second ran", ("first done", "one")] and not lock.locked  # released first
    assert lock.acquire().called
    queued = lock.acquire()
    queued.addErrback(lambda f: order.append(f.type))
    queued.cancel()  # a cancelled waiter is forgotten
    assert order[-1] is defer.CancelledError
    lock.release()
    assert not lock.locked

    semaphore = defer.DeferredSemaphore(2)
    running: list[int] = []
    gates = [defer.Deferred() for _ in range(3)]
    for i, gate in enumerate(gates):

        def start(i: int = i, gate: Any = gate) -> Any:
            running.append(i)
            return gate

        semaphore.run(start)
    assert running == [0, 1]
    gates[0].callback(None)
    assert running == [0, 1, 2]


def test_deferred_queue(defer: ModuleType) -> None:
    queue = defer.DeferredQueue(size=1, backlog=1)
    got: list[str] = []
    queue.get().addCallback(got.append)
    with pytest.raises(defer.QueueUnderflow):
        queue.get()
    queue.put("a")
    queue.put("b")
    with pytest.raises(defer.QueueOverflow):
        queue.put("c")
    queue.get().addCallback(got.append)
    assert got == ["a", "b"]


def test_a_lock_in_async_with(memory: MemoryReactor) -> None:
    lock = compat_defer.DeferredLock()
    inside: list[bool] = []

    async def hold() -> None:
        async with lock:
            inside.append(lock.locked)

    task = memory.spawn(hold())
    memory.run_ready()
    assert task.done() and inside == [True] and not lock.locked


# -- Failure -------------------------------------------------------------------


def test_failure_captures_the_current_exception_and_prints_it() -> None:
    empty: dict[str, int] = {}
    try:
        empty["missing"]
    except KeyError:
        failure = Failure()
    assert failure.type is KeyError and failure.getErrorMessage() == "'missing'"
    import io

    out = io.StringIO()
    failure.printTraceback(out)
    assert out.getvalue().startswith("Traceback (most recent call last):")
    assert "KeyError: 'missing'" in out.getvalue()
    failure.cleanFailure()
    assert failure.tb is None and "KeyError" in failure.getTraceback()
    with pytest.raises(NoCurrentExceptionError):
        Failure()


# -- coroutines on eventhub's tasks ----------------------------------------------


@pytest.fixture
def memory() -> Iterator[MemoryReactor]:
    reactor = MemoryReactor()
    undo = use_reactor(TwistedReactor(lambda: reactor))
    yield reactor
    undo()


def test_await_a_deferred_in_a_task(memory: MemoryReactor) -> None:
    d: compat_defer.Deferred[str] = compat_defer.Deferred()
    failing: compat_defer.Deferred[str] = compat_defer.Deferred()

    async def main() -> tuple[str, str]:
        value = await d
        try:
            await failing
        except KeyError as error:
            return value, str(error)
        return value, "no error"

    task = memory.spawn(main())
    memory.run_ready()
    d.callback("hello")
    memory.run_ready()
    failing.errback(KeyError("bad"))
    memory.run_ready()
    assert task.result() == ("hello", "'bad'")


def test_cancelling_the_task_cancels_the_deferred(memory: MemoryReactor) -> None:
    cancelled: list[bool] = []
    d: compat_defer.Deferred[None] = compat_defer.Deferred(lambda _: cancelled.append(True))

    async def main() -> None:
        await d

    task = memory.spawn(main())
    memory.run_ready()
    task.cancel()
    memory.run_ready()
    assert cancelled == [True] and task.cancelled()
    with pytest.raises(Cancelled):
        task.result()


def test_from_coroutine_and_ensure_deferred_run_on_the_reactor(memory: MemoryReactor) -> None:
    async def add(a: int, b: int) -> int:
        await memory.sleep(1)
        return a + b

    async def broken() -> None:
        raise ValueError("in coroutine")

    seen: list[Any] = []
    compat_defer.Deferred.fromCoroutine(add(1, 2)).addCallback(seen.append)
    compat_defer.ensureDeferred(broken()).addErrback(lambda f: seen.append(f.type))
    already = compat_defer.succeed(0)
    assert compat_defer.ensureDeferred(already) is already
    memory.advance(1)
    assert seen == [ValueError, 3]


def test_cancelling_from_coroutine_cancels_the_task(memory: MemoryReactor) -> None:
    async def forever() -> None:
        await memory.sleep(100)

    d = compat_defer.Deferred.fromCoroutine(forever())
    errors: list[Any] = []
    d.addErrback(errors.append)
    memory.run_ready()
    d.cancel()
    memory.run_ready()
    assert errors[0].check(compat_defer.CancelledError)
    assert memory.tasks == frozenset()
    assert memory.clock.pending() == []


def test_a_coroutine_that_swallows_its_cancellation_does_not_fire_twice(memory: MemoryReactor) -> None:
    async def stubborn() -> str:
        try:
            await memory.sleep(100)
        except Cancelled:
            return "ignored the cancel"
        return "slept"

    d = compat_defer.Deferred.fromCoroutine(stubborn())
    errors: list[Any] = []
    d.addErrback(errors.append)
    memory.run_ready()
    d.cancel()
    memory.run_ready()
    assert errors[0].check(compat_defer.CancelledError) and memory.tasks == frozenset()


def test_from_future_of_a_thread_result(memory: MemoryReactor) -> None:
    seen: list[Any] = []
    compat_defer.Deferred.fromFuture(memory.defer_to_thread(lambda: "from a thread")).addCallback(seen.append)
    memory.run_ready()
    assert seen == ["from a thread"]


def test_add_timeout() -> None:
    from eventhub.compat.twisted.internet.task import Clock

    clock = Clock()
    d: compat_defer.Deferred[None] = compat_defer.Deferred()
    d.addTimeout(5, clock)
    errors: list[Any] = []
    d.addErrback(errors.append)
    clock.advance(5)
    assert errors[0].check(compat_defer.TimeoutError)
    fine: compat_defer.Deferred[str] = compat_defer.Deferred()
    fine.addTimeout(5, clock)
    fine.callback("ok")
    assert fine.result == "ok" and clock.getDelayedCalls() == []
