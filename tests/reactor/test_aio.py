"""The asyncio backends: asyncio awaitables beside eventhub's, cancellation both ways, backend listing."""

from __future__ import annotations

import array
import asyncio
import threading

import pytest

from eventhub.errors import Cancelled, UsageError
from eventhub.protocol import Protocol, Transport
from eventhub.reactor import Reactor, available_backends, backend_availability
from eventhub.reactor._aio import AsyncioCancelled, AsyncioReactor, AsyncioTask
from eventhub.reactor._pollers import ASYNCIO_BACKENDS, make_poller

from ._util import connect, factory_for, recv_all, run
from .test_tcp import serve_then


@pytest.fixture(params=[b for b in ASYNCIO_BACKENDS if b in available_backends()])
def reactor_backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


def test_reactor_of_an_asyncio_backend_is_the_asyncio_reactor(reactor: Reactor, reactor_backend: str) -> None:
    assert isinstance(reactor, AsyncioReactor) and reactor.backend == reactor_backend


def test_availability_names_every_backend_and_auto_never_picks_asyncio() -> None:
    known = backend_availability()
    assert known["asyncio"] is None and "uvloop" in known
    assert "asyncio" in available_backends()
    assert make_poller("auto").name not in ASYNCIO_BACKENDS
    with pytest.raises(UsageError, match="asyncio loop"):
        make_poller("asyncio")


def test_one_coroutine_awaits_asyncio_and_eventhub_awaitables(reactor: Reactor) -> None:
    got: list[object] = []

    async def main() -> None:
        await asyncio.sleep(0.001)
        got.append(await reactor.sleep(0.001, "eventhub sleep"))
        got.append(await reactor.defer_to_thread(threading.current_thread))
        queue: asyncio.Queue[str] = asyncio.Queue()
        reactor.call_later(0.001, queue.put_nowait, "queued")
        got.append(await queue.get())
        got.append(reactor.current_task().name)
        reactor.stop()

    task = reactor.spawn(main(), name="mixed")
    assert isinstance(task, AsyncioTask) and isinstance(task, asyncio.Task)
    run(reactor)
    assert got[0] == "eventhub sleep" and got[1] is not threading.current_thread()
    assert got[2:] == ["queued", "mixed"]


@pytest.mark.parametrize("awaiting", ["eventhub", "asyncio"])
def test_cancelling_a_task_reaches_the_coroutine_at_either_kind_of_await(
    reactor: Reactor, awaiting: str
) -> None:
    seen: list[type[BaseException]] = []

    async def sleeper() -> None:
        try:
            if awaiting == "eventhub":
                await reactor.sleep(3600)
            else:
                await asyncio.sleep(3600)
        except BaseException as exc:
            seen.append(type(exc))
            raise

    async def main() -> None:
        task = reactor.spawn(sleeper())
        await reactor.sleep(0.001)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert task.cancelled()
        reactor.stop()

    reactor.spawn(main())
    run(reactor)
    # At an eventhub await the exception is both kinds; at an asyncio one, asyncio's.
    if awaiting == "eventhub":
        assert seen == [AsyncioCancelled] and issubclass(seen[0], Cancelled)
    else:
        assert seen == [asyncio.CancelledError]


@pytest.mark.parametrize("awaiting", ["eventhub", "asyncio"])
def test_timeout_cancels_either_kind_of_await(reactor: Reactor, awaiting: str) -> None:
    got: list[str] = []

    async def main() -> None:
        with pytest.raises(TimeoutError):
            async with reactor.timeout(0.01) as t:
                if awaiting == "eventhub":
                    await reactor.sleep(3600)
                else:
                    await asyncio.sleep(3600)
        got.append(f"expired={t.expired}")
        async with reactor.timeout(3600):
            await asyncio.sleep(0)
        reactor.stop()

    reactor.spawn(main())
    run(reactor)
    assert got == ["expired=True"]


def test_a_memoryview_of_wide_items_is_written_whole(reactor: Reactor) -> None:
    wide = array.array("i", range(1000))

    class WideWriter(Protocol):
        def connection_made(self, transport: Transport) -> None:
            transport.write(memoryview(wide))
            transport.write(memoryview(b"a-b-c-")[::2])
            transport.lose_connection()

    port = reactor.listen_tcp(0, factory_for(WideWriter)).get_host().port

    def client() -> bytes:
        with connect(port) as s:
            return recv_all(s)

    assert serve_then(reactor, client) == wide.tobytes() + b"abc"


def test_embedded_in_a_running_application_it_adopts_the_loop(reactor_backend: str) -> None:
    async def application() -> list[str]:
        got: list[str] = []
        reactor = Reactor(backend=reactor_backend)
        assert isinstance(reactor, AsyncioReactor) and reactor.loop is asyncio.get_running_loop()
        with pytest.raises(UsageError, match=r"await reactor\.serve"):
            reactor.run()
        reactor.add_system_event_trigger("after", "shutdown", got.append, "shut down")
        reactor.call_later(0.001, reactor.stop)
        await reactor.serve()
        return got

    loop = asyncio.new_event_loop()
    try:
        assert loop.run_until_complete(application()) == ["shut down"]
    finally:
        loop.close()
