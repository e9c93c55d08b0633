"""Streams (``serve_tcp``, ``open_tcp_stream``) over real loopback sockets, on every backend."""

from __future__ import annotations

import logging
import socket

import pytest

from eventhub.errors import IncompleteReadError
from eventhub.reactor import Reactor, Stream

from ._util import Background, run


def test_a_line_echo_server_and_client_written_as_coroutines(reactor: Reactor) -> None:
    got: list[bytes] = []

    async def upper(stream: Stream) -> None:
        while line := await stream.readline():
            stream.write(line.upper())
            await stream.drain()

    listener = reactor.serve_tcp(upper, 0)

    async def client() -> None:
        stream = await reactor.open_tcp_stream("127.0.0.1", listener.get_host().port)
        stream.write(b"hello\nwor")
        stream.write(b"ld\n")
        got.append(await stream.readline())
        got.append(await stream.readexactly(6))
        stream.close()
        await stream.wait_closed()
        listener.stop_listening()
        reactor.stop()

    reactor.spawn(client())
    run(reactor)
    assert got == [b"HELLO\n", b"WORLD\n"]


def test_read_readexactly_and_eof(reactor: Reactor) -> None:
    got: list[object] = []

    async def handler(stream: Stream) -> None:
        got.append(await stream.readexactly(3))
        got.append(await stream.read(2))
        got.append(await stream.read())  # everything until EOF
        got.append(stream.at_eof())
        with pytest.raises(IncompleteReadError) as info:
            await stream.readexactly(1)
        got.append(info.value.partial)
        stream.write(b"bye")

    listener = reactor.serve_tcp(handler, 0)
    port = listener.get_host().port

    def client() -> bytes:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"abcdefghij")
            sock.shutdown(socket.SHUT_WR)
            data = b""
            while chunk := sock.recv(100):
                data += chunk
            return data

    background = Background(client)

    async def wait() -> None:
        while len(got) < 5:
            await reactor.sleep(0.001)
        listener.stop_listening()
        reactor.stop()

    reactor.spawn(wait())
    run(reactor)
    assert background.result() == b"bye"
    assert got == [b"abc", b"de", b"fghij", True, b""]


def test_open_tcp_stream_raises_the_connection_error(reactor: Reactor) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: refused
        errors: list[BaseException] = []

        async def client() -> None:
            try:
                await reactor.open_tcp_stream("127.0.0.1", port)
            except OSError as error:
                errors.append(error)
            reactor.stop()

        reactor.spawn(client())
        run(reactor)
    assert isinstance(errors[0], ConnectionRefusedError)


def test_flow_control_end_to_end_bounds_memory_and_loses_nothing(reactor: Reactor) -> None:
    """A reader slower than the writer: the writer's drain() waits, the reader's buffer stays bounded."""
    total = 8 * 1024 * 1024
    chunk = bytes(range(256)) * 256  # 64 KiB
    seen: dict[str, int] = {"received": 0, "max_buffered": 0, "waited": 0}

    async def slow_reader(stream: Stream) -> None:
        while data := await stream.read(4096):
            seen["received"] += len(data)
            seen["max_buffered"] = max(seen["max_buffered"], len(stream._buffer))
            if seen["received"] % (256 * 1024) == 0:
                await reactor.sleep(0)

    listener = reactor.serve_tcp(slow_reader, 0, limit=16 * 1024)

    async def writer() -> None:
        stream = await reactor.open_tcp_stream("127.0.0.1", listener.get_host().port)
        transport = stream.transport
        assert transport is not None
        for _ in range(total // len(chunk)):
            stream.write(chunk)
            if transport.get_write_buffer_size() > 64 * 1024:
                seen["waited"] += 1
            await stream.drain()
            assert transport.get_write_buffer_size() <= 64 * 1024 + len(chunk)
        stream.close()
        await stream.wait_closed()
        while seen["received"] < total:
            await reactor.sleep(0.001)
        listener.stop_listening()
        reactor.stop()

    reactor.spawn(writer())
    run(reactor)
    assert seen["received"] == total
    assert seen["max_buffered"] < 16 * 1024 + 256 * 1024  # the limit plus one read of the reactor


def test_a_handler_that_raises_is_logged_and_its_connection_aborted(
    reactor: Reactor, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(stream: Stream) -> None:
        await stream.readline()
        raise RuntimeError("handler broke")

    listener = reactor.serve_tcp(broken, 0)
    port = listener.get_host().port

    def client() -> bytes:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"line\n")
            try:
                return sock.recv(10)
            except ConnectionResetError:
                return b"reset"

    background = Background(client)

    async def wait() -> None:
        while "handler broke" not in caplog.text:
            await reactor.sleep(0.001)
        listener.stop_listening()
        reactor.stop()

    with caplog.at_level(logging.ERROR, "eventhub.streams"):
        reactor.spawn(wait())
        run(reactor)
    assert background.result() in (b"", b"reset")
    assert "broken(127.0.0.1:" in caplog.text


def test_readline_refuses_a_line_longer_than_the_limit_even_in_one_chunk() -> None:
    from eventhub.testing import MemoryReactor, StringTransport

    memory = MemoryReactor()
    stream = Stream(limit=8)
    stream.connection_made(StringTransport())
    stream.data_received(b"0123456789\nshort\n")

    async def read() -> bytes:
        return await stream.readline()

    task = memory.spawn(read())
    memory.run_ready()
    with pytest.raises(ValueError, match="limit"):
        task.result()
