"""Streams: protocol code written as coroutines, on the reactor's transports.

    async def handle(stream: Stream) -> None:
        while line := await stream.readline():
            stream.write(line)
            await stream.drain()

    reactor.serve_tcp(handle, 8000)
    stream = await reactor.open_tcp_stream("127.0.0.1", 8000)

A ``Stream`` is a ``Protocol`` seen from a coroutine. Flow control runs end to
end: bytes not yet read pile up to ``limit`` and then reading from the socket
pauses until the coroutine reads them; ``drain()`` waits while the
transport's write buffer is above its high-water mark.
"""

from __future__ import annotations

import logging
import typing
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from eventhub._logging import RateLimitedLog
from eventhub.errors import IncompleteReadError, UsageError
from eventhub.protocol import Address, ClientFactory, Connector, Protocol, ServerFactory, Transport
from eventhub.reactor._tasks import Future, TaskAPI

if TYPE_CHECKING:
    import ssl  # imported by the TLS transport when a connection uses it


class _Spawns(typing.Protocol):
    def spawn(self, coro: Coroutine[Any, Any, Any], name: str | None = None) -> TaskAPI[Any]: ...


class _Connects(typing.Protocol):
    def connect_tcp(
        self, host: str, port: int, factory: ClientFactory, timeout: float | None = 30
    ) -> Connector: ...

    def connect_tls(
        self,
        host: str,
        port: int,
        factory: ClientFactory,
        context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float = 30,
        handshake_timeout: float | None = 30.0,
    ) -> Connector: ...


__all__ = ["DEFAULT_LIMIT", "Stream", "StreamHandler", "StreamServerFactory", "open_stream"]

log = logging.getLogger("eventhub.streams")

#: Bytes a stream buffers unread before it pauses reading (and the longest line ``readline`` takes).
DEFAULT_LIMIT = 64 * 1024

StreamHandler = Callable[["Stream"], Coroutine[Any, Any, object]]


class Stream(Protocol):
    """A connection read and written from a coroutine: ``read``, ``readline``, ``write``, ``drain``."""

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        self.limit = limit
        self._buffer = bytearray()
        self._eof = False
        self._error: BaseException | None = None
        self._paused = False
        self._read_waiter: Future[None] | None = None
        self._drain_waiter: Future[None] | None = None
        self._writing_paused = False
        self._closed: Future[None] = Future()
        self.made: Future[Stream] = Future()

    # -- the protocol side (called by the transport) -------------------------

    def connection_made(self, transport: Transport) -> None:
        self.transport = transport
        if self.made.done():  # whoever opened it gave up meanwhile (cancelled, timed out)
            transport.abort_connection()
            return
        self.made.set_result(self)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) >= self.limit and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake_reader()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake_reader()
        return True  # half-close: the coroutine may still write, then close()

    def connection_lost(self, reason: BaseException | None) -> None:
        self._eof = True
        if reason is not None:
            self._error = reason
        self._wake_reader()
        self._wake_drainer()
        if not self._closed.done():
            self._closed.set_result(None)

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        self._wake_drainer()

    def _wake_reader(self) -> None:
        waiter, self._read_waiter = self._read_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _wake_drainer(self) -> None:
        waiter, self._drain_waiter = self._drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- the coroutine side ---------------------------------------------------

    @property
    def peer(self) -> Address:
        return self._transport().get_peer()

    @property
    def host(self) -> Address:
        return self._transport().get_host()

    def _transport(self) -> Transport:
        if self.transport is None:
            raise UsageError("the stream is not connected")
        return self.transport

    def at_eof(self) -> bool:
        """True when the buffer is empty and the peer sent EOF (or the connection ended)."""
        return self._eof and not self._buffer

    async def _wait_for_data(self) -> None:
        if self._read_waiter is not None:
            raise UsageError("another coroutine is already reading from this stream")
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        self._read_waiter = Future()
        await self._read_waiter

    def _take(self, n: int) -> bytes:
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        if self._paused and len(self._buffer) < self.limit and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return data

    def _raise_if_failed(self) -> None:
        if self._error is not None and not self._buffer:
            raise self._error

    async def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (``-1``: everything until EOF); ``b""`` at EOF."""
        if n == 0:
            return b""
        if n < 0:
            while not self._eof:
                await self._wait_for_data()
            self._raise_if_failed()
            return self._take(len(self._buffer))
        while not self._buffer and not self._eof:
            await self._wait_for_data()
        self._raise_if_failed()
        return self._take(n)

    async def readexactly(self, n: int) -> bytes:
        """Exactly ``n`` bytes; ``IncompleteReadError`` (with ``partial``) if EOF comes first."""
        if n < 0:
            raise ValueError("readexactly() takes n >= 0")
        while len(self._buffer) < n and not self._eof:
            await self._wait_for_data()
        if len(self._buffer) < n:
            self._raise_if_failed()
            raise IncompleteReadError(self._take(len(self._buffer)), n)
        return self._take(n)

    async def readline(self) -> bytes:
        """The next line, ``\\n`` included; the unterminated rest at EOF; ``b""`` at EOF.

        A line longer than ``limit`` raises ``ValueError`` (the bytes stay buffered).
        """
        start = 0
        while True:
            end = self._buffer.find(b"\n", start)
            if end >= self.limit:
                raise ValueError(f"line longer than the stream's limit ({self.limit} bytes)")
            if end >= 0:
                return self._take(end + 1)
            if len(self._buffer) > self.limit:
                raise ValueError(f"line longer than the stream's limit ({self.limit} bytes)")
            if self._eof:
                self._raise_if_failed()
                return self._take(len(self._buffer))
            start = len(self._buffer)
            await self._wait_for_data()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Send ``data`` (buffered by the transport; ``await drain()`` to respect its water marks)."""
        self._transport().write(data)

    def write_eof(self) -> None:
        self._transport().write_eof()

    async def drain(self) -> None:
        """Wait until the transport's write buffer is below its high-water mark."""
        if self._error is not None:
            raise self._error
        if self._closed.done():
            raise ConnectionResetError("the connection is closed")
        while self._writing_paused and not self._closed.done():
            if self._drain_waiter is None:
                self._drain_waiter = Future()
            await self._drain_waiter

    def close(self) -> None:
        """Flush what was written, then close (``wait_closed()`` waits for it)."""
        if self.transport is not None:
            self.transport.lose_connection()

    def abort(self) -> None:
        """Close at once, discarding what is buffered (the peer gets a reset)."""
        if self.transport is not None:
            self.transport.abort_connection()

    def is_closing(self) -> bool:
        return self.transport is None or self.transport.is_closing()

    async def wait_closed(self) -> None:
        """Wait until the connection is closed."""
        await self._closed


class StreamServerFactory(ServerFactory):
    """Serves ``handler(stream)`` as a task per connection; the stream closes when it returns."""

    def __init__(self, runner: _Spawns, handler: StreamHandler, limit: int = DEFAULT_LIMIT) -> None:
        self._runner = runner
        self._handler = handler
        self._limit = limit
        self._failures = RateLimitedLog(log)  # a client may make the handler fail on purpose

    def build_protocol(self, addr: Address) -> Protocol:
        stream = Stream(self._limit)
        stream.factory = self
        stream.made.add_done_callback(lambda _: self._start(stream))
        return stream

    def _start(self, stream: Stream) -> None:
        name = f"{getattr(self._handler, '__qualname__', 'handler')}({stream.peer})"
        task = self._runner.spawn(self._handler(stream), name=name)
        task.add_done_callback(lambda done: self._finished(stream, done))

    def _finished(self, stream: Stream, task: TaskAPI[Any]) -> None:
        if not task.cancelled() and (error := task.exception()) is not None:
            name = getattr(task, "name", task)
            # A client may make a handler fail on purpose: one line per kind of failure per interval.
            cause = (name.partition("(")[0] if isinstance(name, str) else name, type(error))
            self._failures.log(
                logging.ERROR,
                "%s failed: %s: %s",
                name,
                type(error).__name__,
                error,
                exc_info=error,
                cause=cause,
            )
            stream.abort()
        else:
            stream.close()


class _StreamClientFactory(ClientFactory):
    def __init__(self, stream: Stream) -> None:
        self.stream = stream

    def build_protocol(self, addr: Address) -> Protocol:
        return self.stream

    def client_connection_failed(self, connector: Connector, reason: BaseException) -> None:
        if not self.stream.made.done():
            self.stream.made.set_exception(reason)


async def open_stream(
    reactor: _Connects,
    host: str,
    port: int,
    timeout: float = 30,
    limit: int = DEFAULT_LIMIT,
    tls: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
) -> Stream:
    """Connect to ``host:port`` (TLS with ``tls``) and return the connected ``Stream``."""
    stream = Stream(limit)
    factory = _StreamClientFactory(stream)
    if tls is not None:
        connector = reactor.connect_tls(
            host, port, factory, tls, server_hostname=server_hostname, timeout=timeout
        )
    else:
        connector = reactor.connect_tcp(host, port, factory, timeout=timeout)
    try:
        return await stream.made
    except BaseException:
        connector.stop_connecting()
        raise
