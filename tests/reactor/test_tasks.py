"""Coroutines on the reactor (``spawn``, ``sleep``, ``timeout``, cancellation), on every backend."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import threading
from typing import Any

import pytest

from eventhub.errors import Cancelled, UsageError
from eventhub.reactor import Reactor
from eventhub.reactor._pollers import ASYNCIO_BACKENDS
from eventhub.reactor._tasks import Future, Task
from eventhub.testing import MemoryReactor

from ._util import run


def test_a_task_returns_its_value_to_whoever_awaits_it(reactor: Reactor) -> None:
    got: list[object] = []

    async def double(x: int) -> int:
        await reactor.sleep(0)
        return x * 2

    async def main() -> None:
        got.append(await reactor.spawn(double(21)))
        got.append(await reactor.defer_to_thread(sum, [1, 2, 3]))
        got.append(await reactor.sleep(0.001, "slept"))
        reactor.stop()

    task = reactor.spawn(main(), name="main")
    run(reactor)
    assert got == [42, 6, "slept"]
    assert task.done() and task.result() is None and task.name == "main"


def test_tasks_interleave_on_one_loop(reactor: Reactor) -> None:
    order: list[str] = []

    async def worker(name: str) -> None:
        for step in range(3):
            order.append(f"{name}{step}")
            await reactor.sleep(0)

    async def main() -> None:
        await reactor.spawn(worker("a"))
        reactor.stop()

    reactor.spawn(worker("b"))
    reactor.spawn(main())
    run(reactor)
    assert order[:2] == ["b0", "a0"] and order[2:4] == ["b1", "a1"]


def test_cancel_raises_cancelled_at_the_await_and_finally_runs(reactor: Reactor) -> None:
    seen: list[str] = []

    async def sleeper() -> None:
        try:
            await reactor.sleep(3600)
        except Cancelled:
            seen.append("cancelled")
            raise
        finally:
            await reactor.sleep(0)  # a finally block may still await
            seen.append("finally")

    async def main() -> None:
        task = reactor.spawn(sleeper())
        await reactor.sleep(0)
        assert task.cancel() is True
        with pytest.raises(Cancelled):
            await task
        assert task.cancelled() and not task.cancel()
        reactor.stop()

    reactor.spawn(main())
    run(reactor)
    assert seen == ["cancelled", "finally"]


def test_timeout_raises_timeout_error_and_frees_its_timer(reactor: Reactor) -> None:
    outcome: list[object] = []

    async def main() -> None:
        try:
            async with reactor.timeout(0.01) as scope:
                await reactor.sleep(3600)
        except TimeoutError as error:
            outcome.append((type(error).__name__, scope.expired))
        async with reactor.timeout(10) as quick:
            await reactor.sleep(0)
        outcome.append(quick.expired)
        async with reactor.timeout(None):
            await reactor.defer_to_thread(lambda: None)
        reactor.stop()

    reactor.spawn(main())
    run(reactor)  # the fixture fails the test if the 10 s timer were left pending
    assert outcome == [("TimeoutError", True), False]


def test_a_timeout_does_not_swallow_a_cancellation_from_elsewhere(reactor: Reactor) -> None:
    outcome: list[str] = []

    async def inner() -> None:
        async with reactor.timeout(0.01):
            try:
                await reactor.sleep(3600)
            finally:
                outcome.append("finally")

    async def main() -> None:
        task = reactor.spawn(inner())
        await reactor.sleep(0)
        task.cancel()
        with pytest.raises(Cancelled):
            await task
        reactor.stop()

    reactor.spawn(main())
    run(reactor)
    assert outcome == ["finally"]


def test_timeout_outside_a_task_is_a_usage_error(reactor: Reactor) -> None:
    async def outside() -> None:
        async with reactor.timeout(1):
            pass

    coro = outside()
    with pytest.raises(UsageError, match="not inside a task"):
        coro.send(None)
    coro.close()


def test_a_failure_nobody_retrieves_is_logged_once_with_the_task_name(
    reactor: Reactor, caplog: pytest.LogCaptureFixture
) -> None:
    async def boom() -> None:
        raise ValueError("nobody listens")

    async def main() -> None:
        reactor.spawn(boom(), name="lonely")
        awaited = reactor.spawn(boom(), name="awaited")
        with pytest.raises(ValueError):
            await awaited
        await reactor.sleep(0.001)
        reactor.stop()

    with caplog.at_level(logging.ERROR, "eventhub.tasks"):
        reactor.spawn(main())
        run(reactor)
        gc.collect()
    lines = [r.getMessage() for r in caplog.records if r.name == "eventhub.tasks"]
    assert len(lines) == 1 and "task 'lonely' failed" in lines[0] and "nobody listens" in lines[0]


def test_awaiting_an_asyncio_future_fails_at_once_naming_the_backend(reactor: Reactor) -> None:
    if reactor.backend in ASYNCIO_BACKENDS:
        pytest.skip("on the asyncio backends asyncio futures are awaitable (tests/reactor/test_aio.py)")
    got: list[str] = []

    async def main() -> None:
        loop = asyncio.new_event_loop()
        try:
            with pytest.raises(UsageError) as info:
                await loop.create_future()
            got.append(str(info.value))
        finally:
            loop.close()
        reactor.stop()

    reactor.spawn(main())
    run(reactor)
    assert "asyncio future" in got[0] and reactor.backend in got[0] and "asyncio backend" in got[0]


def test_a_bare_yield_is_a_pass_of_the_loop(reactor: Reactor) -> None:
    async def main() -> None:
        await asyncio.sleep(0)  # yields None: no asyncio loop is needed for that
        reactor.stop()

    reactor.spawn(main())
    run(reactor)


def test_spawn_takes_a_coroutine_not_a_function(reactor: Reactor) -> None:
    async def f() -> None:
        pass

    with pytest.raises(TypeError, match="call the async function"):
        reactor.spawn(f)  # type: ignore[arg-type]


def test_shutdown_cancels_running_tasks_and_waits_for_their_finally(reactor: Reactor) -> None:
    seen: list[str] = []

    async def service() -> None:
        try:
            await reactor.sleep(3600)
        finally:
            await reactor.sleep(0.01)  # cleanup that takes a little while
            seen.append("cleaned up")

    async def stopper() -> None:
        await reactor.sleep(0)
        reactor.stop()

    task = reactor.spawn(service())
    reactor.spawn(stopper())
    run(reactor)
    assert seen == ["cleaned up"] and task.cancelled()


def test_a_task_that_ignores_cancellation_is_abandoned_at_the_shutdown_timeout(
    reactor: Reactor, caplog: pytest.LogCaptureFixture
) -> None:
    reactor.shutdown_timeout = 0.01  # any time will do: what is waited for never comes

    async def stubborn() -> None:
        while True:
            with contextlib.suppress(Cancelled):
                await reactor.sleep(3600)

    async def stopper() -> None:
        await reactor.sleep(0)
        reactor.stop()

    reactor.spawn(stubborn(), name="stubborn")
    reactor.spawn(stopper())
    with caplog.at_level(logging.WARNING, "eventhub.reactor"):
        run(reactor)
    assert "still running" in caplog.text and "stubborn" in caplog.text


def test_call_from_thread_wakes_a_waiting_task(reactor: Reactor) -> None:
    future: Future[str] = Future()
    got: list[str] = []

    async def main() -> None:
        threading.Thread(target=reactor.call_from_thread, args=(future.set_result, "from a thread")).start()
        got.append(await future)
        reactor.stop()

    reactor.spawn(main())
    run(reactor)
    assert got == ["from a thread"]


def test_tasks_run_on_the_memory_reactor_in_fake_time() -> None:
    memory = MemoryReactor()
    seen: list[tuple[str, float]] = []

    async def ticker() -> None:
        for _ in range(3):
            await memory.sleep(10)
            seen.append(("tick", memory.seconds()))

    task: Task[Any] = memory.spawn(ticker())
    memory.advance(25)
    assert seen == [("tick", 10.0), ("tick", 20.0)] and not task.done()
    memory.advance(5)
    assert task.done() and len(seen) == 3


def test_future_callbacks_and_states() -> None:
    future: Future[int] = Future()
    calls: list[str] = []
    future.add_done_callback(lambda f: calls.append(f"first {f.result()}"))
    with pytest.raises(UsageError, match="not done"):
        future.result()
    future.set_result(7)
    future.add_done_callback(lambda f: calls.append("late"))
    assert calls == ["first 7", "late"] and future.exception() is None
    with pytest.raises(UsageError, match="already done"):
        future.set_result(8)
    cancelled: Future[int] = Future(canceller=lambda: calls.append("canceller"))
    assert cancelled.cancel() and cancelled.cancelled() and calls[-1] == "canceller"
    with pytest.raises(Cancelled):
        cancelled.result()


def test_a_before_shutdown_trigger_returning_a_future_lets_running_tasks_finish(reactor: Reactor) -> None:
    done: list[str] = []
    finished: Future[None] = Future()

    async def request() -> None:
        await reactor.sleep(0.05)  # still running when the stop comes
        done.append("request finished")
        finished.set_result(None)

    async def stopper() -> None:
        await reactor.sleep(0)
        reactor.stop()

    task = reactor.spawn(request())
    reactor.spawn(stopper())
    reactor.add_system_event_trigger("before", "shutdown", lambda: finished)
    run(reactor)
    assert done == ["request finished"] and not task.cancelled()


def test_the_grace_a_trigger_asks_for_is_bounded_by_the_shutdown_timeout(
    reactor: Reactor, caplog: pytest.LogCaptureFixture
) -> None:
    reactor.shutdown_timeout = 0.01  # any time will do: what is waited for never comes
    never: Future[None] = Future()

    async def stopper() -> None:
        await reactor.sleep(0)
        reactor.stop()

    reactor.spawn(stopper())
    reactor.add_system_event_trigger("before", "shutdown", lambda: never)
    with caplog.at_level(logging.WARNING, "eventhub.reactor"):
        run(reactor)
    assert "grace period" in caplog.text
    never.cancel()


def test_asking_for_the_running_asyncio_loop_fails_naming_the_asyncio_backend(reactor: Reactor) -> None:
    if reactor.backend in ASYNCIO_BACKENDS:
        pytest.skip("an asyncio loop runs there (tests/reactor/test_aio.py)")
    got: list[BaseException | None] = []

    async def main() -> None:
        asyncio.get_running_loop()

    async def watch() -> None:
        task = reactor.spawn(main())
        with contextlib.suppress(UsageError):
            await task
        got.append(task.exception())
        reactor.stop()

    reactor.spawn(watch())
    run(reactor)
    assert (
        isinstance(got[0], UsageError)
        and "--backend asyncio" in str(got[0])
        and reactor.backend in str(got[0])
    )
