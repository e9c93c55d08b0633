"""A hub embedded in a running asyncio application: its loop, its signals; shut down by the host."""

from __future__ import annotations

import asyncio

import pytest

import eventhub
from eventhub.errors import UsageError
from eventhub.protocol import Protocol, ServerFactory
from eventhub.reactor import ReactorAPI


class Echo(Protocol):
    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)


class EchoService:
    """A plugin serving echo on a free port."""

    def __init__(self) -> None:
        self.port: asyncio.Future[int] | None = None

    @eventhub.hookimpl
    def eventhub_start_services(self, reactor: ReactorAPI) -> bool:
        factory = ServerFactory()
        factory.protocol = Echo
        port = reactor.listen_tcp(0, factory).get_host().port
        assert self.port is not None
        self.port.set_result(port)
        return True


def test_an_application_embeds_a_hub_talks_to_it_and_shuts_it_down() -> None:
    seen: list[str] = []

    async def application() -> None:
        service = EchoService()
        service.port = asyncio.get_running_loop().create_future()
        async with eventhub.Hub(backend="asyncio") as hub:
            hub.register(service, name="echo")
            hub.subscribe("eventhub.stopping", lambda event: seen.append(event.name))
            serving = asyncio.create_task(hub.serve())
            port = await asyncio.wait_for(service.port, 20)
            assert hub.reactor.loop is asyncio.get_running_loop()  # type: ignore[attr-defined]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"hello hub")
            seen.append((await reader.readexactly(9)).decode())
            writer.close()
            await writer.wait_closed()
        await asyncio.wait_for(serving, 20)  # aclose() stopped it
        seen.append("closed")

    asyncio.run(application())
    assert seen == ["hello hub", "eventhub.stopping", "closed"]


def test_serve_needs_an_asyncio_backend() -> None:
    async def application() -> None:
        async with eventhub.Hub(backend="epoll") as hub:
            await hub.serve()

    with pytest.raises(UsageError, match="asyncio"):
        asyncio.run(application())
