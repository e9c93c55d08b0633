"""A hub embedded in a running asyncio application: its loop, its signals; shut down by the host."""

from __future__ import annotations

import asyncio
import subprocess

import pytest
from support import PluginVenv

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
            # Hub.reactor is typed as the built-in Reactor; with backend="asyncio" it is an AsyncioReactor.
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


EMBEDDER = """\
import asyncio
import logging
import re
import socket
import sys

import eventhub
from eventhub.config import load


class Port(logging.Handler):
    def __init__(self):
        super().__init__()
        self.port = asyncio.get_running_loop().create_future()

    def emit(self, record):
        found = re.search(r"listening on 127\\.0\\.0\\.1:(\\d+)", record.getMessage())
        if found and not self.port.done():
            self.port.set_result(int(found.group(1)))


async def main():
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    port = Port()
    logging.getLogger("eventhub").addHandler(port)
    config = load(overrides=["echo.port=0"])
    async with eventhub.Hub(autoload=True, backend="asyncio", config=config, only=["echo"]) as hub:
        serving = asyncio.create_task(hub.serve())
        number = await asyncio.wait_for(port.port, 20)
        reader, writer = await asyncio.open_connection("127.0.0.1", number)
        writer.write(b"embedded echo")
        print((await reader.readexactly(13)).decode(), flush=True)
        writer.close()
        await writer.wait_closed()
    await asyncio.wait_for(serving, 20)
    print("host shut it down", flush=True)


asyncio.run(main())
"""


def test_the_echo_plugin_embedded_in_an_asyncio_application(echo_venv: PluginVenv) -> None:
    result = subprocess.run(
        [str(echo_venv.python), "-c", EMBEDDER],
        capture_output=True,
        text=True,
        timeout=60,
        env=echo_venv.env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["embedded echo", "host shut it down"]
    assert "Traceback" not in result.stderr
