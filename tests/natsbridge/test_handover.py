"""The bridge's batches across threads, without a server: a fake reactor thread and a fake connection.

Events cross from the "hub" (the test's threads) to the bridge's loop and back
in order, none is lost, and a burst costs a few wake-ups, not one per event.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import TYPE_CHECKING, Any

import pytest
from support import load_source_package

from eventhub import Event

pytest.importorskip("nats", reason="nats-py is in the test extra")
if TYPE_CHECKING:
    import eventhub_nats
    from eventhub_nats import _bridge
else:
    eventhub_nats = load_source_package("nats", "eventhub_nats")
    _bridge = eventhub_nats._bridge


class Done:
    """A finished task: what ``add_done_callback`` hands its callback."""

    def __init__(self, value: object) -> None:
        self.value = value

    def cancelled(self) -> bool:
        return False

    def result(self) -> object:
        return self.value

    def add_done_callback(self, callback: Callable[[Done], None]) -> None:
        callback(self)


class FakeReactor:
    """``call_from_thread`` onto a thread of its own; ``spawn`` runs a coroutine that never suspends."""

    def __init__(self) -> None:
        self.calls: queue.Queue[tuple[Callable[..., object], tuple[Any, ...]] | None] = queue.Queue()
        self.wakeups = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (call := self.calls.get()) is not None:
            call[0](*call[1])

    def call_from_thread(self, fn: Callable[..., object], /, *args: Any) -> None:
        self.wakeups += 1
        self.calls.put((fn, args))

    def spawn(self, coro: Coroutine[Any, Any, object], name: str | None = None) -> Done:
        try:
            coro.send(None)
        except StopIteration as stop:
            return Done(stop.value)
        raise AssertionError("the fake hub's publish_event never suspends")

    def stop(self) -> None:
        self.calls.put(None)
        self.thread.join(5)


class FakeHub:
    def __init__(self) -> None:
        self.bus = self
        self.got: list[int] = []
        self.release = threading.Event()
        self.release.set()

    def subscribe(self, pattern: str, handler: Callable[[Event], None]) -> FakeHub:
        return self  # its cancel() unsubscribes

    def cancel(self) -> None:
        pass

    async def publish_event(self, event: Event) -> tuple[object, ...]:
        self.release.wait(10)
        self.got.append(event.payload)
        return ()


class FakeConnection:
    is_connected = True

    def __init__(self) -> None:
        self.published: list[bytes] = []

    async def publish(self, subject: str, body: bytes, headers: dict[str, str]) -> None:
        self.published.append(body)

    async def close(self) -> None:
        pass


@pytest.fixture
def bridge() -> Iterator[tuple[_bridge.Bridge, FakeHub, FakeReactor]]:
    hub, reactor = FakeHub(), FakeReactor()
    settings = eventhub_nats.NatsSettings(publish=("order.>",), subscribe=("order.>",), buffer=100_000)
    bridge = _bridge.Bridge(settings, hub, reactor)  # type: ignore[arg-type]
    loop = bridge._loop
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def events() -> None:
        bridge._wake, bridge._done, bridge._room = asyncio.Event(), asyncio.Event(), asyncio.Event()
        bridge._room.set()

    asyncio.run_coroutine_threadsafe(events(), loop).result(5)
    yield bridge, hub, reactor
    hub.release.set()
    reactor.stop()
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 20
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def test_events_out_cross_in_order_with_a_few_wakeups(
    bridge: tuple[_bridge.Bridge, FakeHub, FakeReactor],
) -> None:
    b, _, _ = bridge
    nc = FakeConnection()
    sender = asyncio.run_coroutine_threadsafe(b._send(nc, None), b._loop)  # type: ignore[arg-type]
    scheduled = 0
    original = b._loop.call_soon_threadsafe

    def counting(*args: Any) -> Any:
        nonlocal scheduled
        scheduled += 1
        return original(*args)

    b._loop.call_soon_threadsafe = counting  # type: ignore[method-assign,assignment]
    count = 20_000
    for n in range(count):
        b._local_event(Event("order.paid", n))
        if n % 500 == 499:
            time.sleep(0.001)  # bursts, as the hub's loop emits them
    wait_until(lambda: len(nc.published) == count, "every event published")
    assert nc.published == [str(n).encode() for n in range(count)]
    assert scheduled < count / 10, scheduled
    assert not b._outgoing and not b._out_due
    sender.cancel()


def test_messages_in_cross_in_order_and_every_outcome_comes_back(
    bridge: tuple[_bridge.Bridge, FakeHub, FakeReactor],
) -> None:
    b, hub, reactor = bridge
    count = 5000

    async def hand_over_all() -> list[object]:
        outcomes: list[asyncio.Future[object]] = [b._loop.create_future() for _ in range(count)]
        for n, outcome in enumerate(outcomes):
            b._send_to_hub(Event("order.paid", n), outcome)
        return [await outcome for outcome in outcomes]

    outcomes = asyncio.run_coroutine_threadsafe(hand_over_all(), b._loop).result(20)
    assert outcomes == [()] * count
    assert hub.got == list(range(count))
    assert reactor.wakeups < count / 10, reactor.wakeups
    assert b.received == count and not b._incoming and not b._outcomes


def test_core_messages_wait_for_room_once_the_window_is_with_the_hub(
    bridge: tuple[_bridge.Bridge, FakeHub, FakeReactor],
) -> None:
    b, hub, _ = bridge
    hub.release.clear()  # the hub's handlers are stuck
    count = _bridge.CORE_WINDOW + 50
    _, headers = _bridge.encode(Event("order.paid", 0), "elsewhere")

    class Message:
        subject = "eventhub.order.paid"

        def __init__(self, n: int) -> None:
            self.data = str(n).encode()
            self.headers = headers

    async def deliver_all() -> None:
        for n in range(count):
            await b._core_message(Message(n))  # type: ignore[arg-type]

    delivered = asyncio.run_coroutine_threadsafe(deliver_all(), b._loop)
    wait_until(lambda: b.received == _bridge.CORE_WINDOW, "the window handed over")
    time.sleep(0.1)
    assert b.received == _bridge.CORE_WINDOW and not delivered.done()  # waits for room
    hub.release.set()
    delivered.result(20)
    wait_until(lambda: len(hub.got) == count and b._with_hub == 0, "every message delivered")
    assert hub.got == list(range(count))


def test_an_event_emitted_before_the_bridge_loop_runs_goes_out_without_waiting_for_the_next() -> None:
    hub, reactor = FakeHub(), FakeReactor()
    settings = eventhub_nats.NatsSettings(publish=("order.>",))
    b = _bridge.Bridge(settings, hub, reactor)  # type: ignore[arg-type]
    nc = FakeConnection()

    async def connect() -> FakeConnection:
        return nc

    b._connect = connect  # type: ignore[method-assign,assignment]
    b._local_event(Event("order.paid", 1))  # its wake-up is queued before the loop has a _wake
    b.start()
    try:
        wait_until(lambda: nc.published == [b"1"], "the early event published")
    finally:
        b.stop(timeout=1)
        reactor.stop()
