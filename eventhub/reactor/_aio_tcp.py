"""TCP on an asyncio loop: the loop's own transports, each wrapped once in eventhub's ``Transport``.

``AsyncioConnection`` is both the asyncio protocol the loop calls and the
eventhub transport the user's ``Protocol`` writes to: one object per
connection, every call one attribute lookup away from the loop's transport
(asyncio's or uvloop's, both written in C or close to it).

Where asyncio's transport and eventhub's differ, the adapter supplies
eventhub's meaning:

- ``lose_connection`` is graceful as on the built-in backends: flush, send
  EOF, read and discard until the peer's EOF (at most ``linger_timeout``),
  then close, so that a peer still sending cannot make the kernel reset the
  connection and drop the flushed tail. To learn when the buffer has drained,
  the adapter sets the loop transport's water marks to 0 while closing (or
  while a pull producer is registered): ``resume_writing`` then means "empty".
- ``abort_connection`` sends a reset (``SO_LINGER`` 0), as the built-in one does.
- protocol exceptions close that connection only, logged once, with the
  exception as the reason given to ``connection_lost``.
- ``eof_received`` returning false closes gracefully (``lose_connection``).
- the server-wide output bound (``_output.py``): the loop's buffer is not
  ours to watch byte by byte, so each connection counts what it had buffered
  when it last looked (after a write, at the loop's pause/resume) and the
  bound re-counts them all before it sheds (``AsyncioReactor._recount_output``):
  a drained buffer never gets a connection closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, cast

from eventhub.errors import PLUGIN_ERRORS, UsageError, reraise_user_interrupt
from eventhub.protocol import Address, ClientFactory, Factory, Producer, Protocol, address_of
from eventhub.reactor._connector import _CONNECTED, _CONNECTING, ConnectorBase
from eventhub.reactor._listener import open_listening_socket
from eventhub.reactor._output import FlowControl, write_buffer_limits
from eventhub.reactor._tcp import _LINGER_RESET, _byte_view, _peer_of, check_port, close_for_shutdown
from eventhub.reactor._tls import HANDSHAKE_TIMEOUT, TLSLayer

if TYPE_CHECKING:
    from eventhub.reactor._aio import AsyncioReactor, AsyncioTimer

__all__ = ["AsyncioConnection", "AsyncioConnector", "AsyncioListener"]

log = logging.getLogger("eventhub.reactor")

_OPEN, _CLOSING, _CLOSED = 0, 1, 2


class AsyncioConnection(FlowControl, asyncio.BufferedProtocol):
    """One TCP connection: asyncio's protocol below, eventhub's ``Transport`` above.

    A buffered protocol, read into the reactor's one buffer as the built-in
    reactor is (see ``_tcp.py``): for a plain ``Protocol`` the loop calls
    ``recv(256 KiB)``, a malloc of 256 KiB per read that costs an mmap/munmap
    pair or not depending on glibc's history in the process (measured: 7 or
    33 us per echo round trip on asyncio's loop, from one run to the next).
    """

    def __init__(
        self,
        reactor: AsyncioReactor,
        build: Callable[[Address], Protocol | None],
        connector: AsyncioConnector | None = None,
    ) -> None:
        self._reactor: AsyncioReactor = reactor
        self._build = build
        self._connector = connector
        self._protocol: Protocol | None = None
        self._transport: asyncio.Transport | None = None
        self._peer: Address | None = None
        self._host: Address | None = None
        self._state = _OPEN
        self._wclosed = False
        self._peer_eof = False
        self._read_paused = False
        self._protocol_paused = False
        self._high, self._low = write_buffer_limits()
        self._producer: Producer | None = None
        self._streaming = False
        self._drain_watch = False  # loop water marks at 0: resume_writing means "buffer empty"
        self._lingering: AsyncioTimer | None = None
        self._reason: BaseException | None = None
        self._held: list[bytes] = []  # read while paused: delivered on resume_reading
        self._output = reactor.output_bound
        self._counted = 0  # of the bound's total: what the loop had buffered when last looked

    def __repr__(self) -> str:
        state = ("open", "closing", "closed")[self._state]
        return f"<AsyncioConnection {state} peer={self._peer}>"

    # -- asyncio's protocol side ------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        self._transport = transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        peername = transport.get_extra_info("peername")
        # A UNIX peer (_aio_unix.py) carries its credentials, as on the built-in backends.
        if sock is None:
            self._peer = Address.from_sockaddr(peername, socket.AF_INET)
        else:
            self._peer = _peer_of(sock, peername)
        try:
            protocol = self._build(self._peer)
        except PLUGIN_ERRORS as exc:
            reraise_user_interrupt(exc)
            log.exception("build_protocol raised; closing the connection from %s", self._peer)
            self._protocol = None
            self._reason = exc
            transport.abort()
            return
        if protocol is None:
            self._reason = ConnectionAbortedError("build_protocol returned None")
            transport.abort()
            return
        self._protocol = protocol
        self._reactor._connections.add(self)
        if self._connector is not None:
            self._connector.transport = self
        transport.set_write_buffer_limits(self._high, self._low)
        try:
            protocol.transport = self
            protocol.connection_made(self)
        except PLUGIN_ERRORS as exc:
            reraise_user_interrupt(exc)
            self._protocol_failed(exc, "connection_made")

    def get_buffer(self, sizehint: int) -> memoryview:
        # The loop reads into it and calls buffer_updated at once: one buffer serves all.
        return self._reactor._recv_view

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(self._reactor._recv_view[:nbytes].tobytes())

    def data_received(self, data: bytes) -> None:
        if self._state != _OPEN:
            return  # closing: read only to find the peer's EOF
        if self._read_paused:  # uvloop starts reading after connection_made, paused or not
            self._held.append(data)
            self._transport.pause_reading()  # type: ignore[union-attr]
            return
        try:
            self._protocol.data_received(data)  # type: ignore[union-attr]
        except PLUGIN_ERRORS as exc:
            reraise_user_interrupt(exc)
            self._protocol_failed(exc, "data_received")

    def eof_received(self) -> bool:
        self._peer_eof = True
        if self._state == _CLOSING:
            self._close_now()
            return True
        if self._wclosed:  # both halves are done now
            self.lose_connection()
            return True
        try:
            keep_open = self._protocol.eof_received()  # type: ignore[union-attr]
        except PLUGIN_ERRORS as exc:
            reraise_user_interrupt(exc)
            self._protocol_failed(exc, "eof_received")
            return True
        if not keep_open:
            self.lose_connection()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        # asyncio closes the socket right after this returns: the protocol hears
        # of it on the next pass, its descriptor released, as on the built-in backends.
        self._reactor._loop.call_soon(self._connection_lost, exc)

    def _connection_lost(self, exc: Exception | None) -> None:
        self._state = _CLOSED
        self._wclosed = True
        self._count(0)
        if self._lingering is not None:
            self._lingering.cancel()
            self._lingering = None
        self._reactor._connections.discard(self)
        self._reactor._changed()
        protocol = self._protocol
        if protocol is None:  # build_protocol refused it: the protocol never existed
            if self._connector is not None:
                self._connector._report_failed(self._reason or exc or ConnectionAbortedError("closed"))
            return
        reason = self._reason if self._reason is not None else exc
        producer, self._producer = self._producer, None
        try:
            if producer is not None:
                producer.stop_producing()
            protocol.connection_lost(reason)
        except PLUGIN_ERRORS as failure:
            reraise_user_interrupt(failure)
            log.exception("%s.connection_lost raised", type(protocol).__name__)
        if self._connector is not None:
            self._connector._connection_lost(reason)

    def pause_writing(self) -> None:
        # With the loop's marks at 0 (closing, pull producer) this comes as soon
        # as anything is buffered: the protocol's own mark decides (write() too).
        size = self.get_write_buffer_size()
        self._count(size)
        if not self._drain_watch or size > self._high:
            self._pause_protocol()

    def resume_writing(self) -> None:
        self._count(self.get_write_buffer_size())
        if self._drain_watch:
            self._drained()
            return
        if self._protocol_paused:
            self._resume_protocol()

    # -- eventhub's transport side ----------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        transport = self._transport
        if self._wclosed or transport is None or transport.is_closing():
            return  # after close or write_eof (ours or the loop's): dropped quietly
        if type(data) is not bytes and type(data) is not bytearray:
            data = _byte_view(data)
        transport.write(data)
        size = transport.get_write_buffer_size()
        if size or self._counted:  # the direct-send path (nothing buffered before or now) skips this
            self._count(size)
            if self._drain_watch and not self._protocol_paused and size > self._high:
                self._pause_protocol()

    def _count(self, size: int) -> None:
        """Tell the server-wide bound that this connection has ``size`` bytes buffered now."""
        output = self._output
        output.buffered += size - self._counted
        self._counted = size
        if output.buffered > output.limit:
            output.over()

    def write_sequence(self, data: Iterable[bytes | bytearray | memoryview]) -> None:
        self.write(b"".join(data))

    def write_eof(self) -> None:
        if self._wclosed:
            return
        self._wclosed = True
        transport = self._transport
        assert transport is not None
        if transport.can_write_eof():
            transport.write_eof()
        if self._peer_eof:
            self.lose_connection()

    def lose_connection(self) -> None:
        """Flush, send EOF, wait for the peer's (at most ``linger_timeout``), close."""
        if self._state != _OPEN:
            return
        self._state = _CLOSING
        self._wclosed = True
        transport = self._transport
        assert transport is not None
        if self._read_paused:
            transport.resume_reading()  # to see the peer's EOF
        if transport.get_write_buffer_size():
            self._watch_drain()
        else:
            self._linger()

    def close_for_shutdown(self) -> None:
        close_for_shutdown(self, self._protocol)

    def _watch_drain(self) -> None:
        if not self._drain_watch:
            self._drain_watch = True
            self._transport.set_write_buffer_limits(0, 0)  # type: ignore[union-attr]

    def _drained(self) -> None:
        """The loop's buffer just emptied (water marks at 0)."""
        if self._protocol_paused:
            self._resume_protocol()
        if self._state == _CLOSING:
            self._linger()
        elif self._producer is not None and not self._streaming:
            self._reactor.call_soon(self._pull)

    def _linger(self) -> None:
        if self._lingering is not None or self._state == _CLOSED:
            return
        transport = self._transport
        assert transport is not None
        if self._peer_eof or not transport.can_write_eof():
            self._close_now()
            return
        try:
            transport.write_eof()
        except (OSError, RuntimeError):
            self._close_now()
            return
        reactor = self._reactor
        self._lingering = reactor.call_later(reactor.linger_timeout, self._close_now)

    def _close_now(self) -> None:
        if self._lingering is not None:
            self._lingering.cancel()
            self._lingering = None
        if self._transport is not None:
            self._transport.close()

    def abort_connection(self, reason: BaseException | None = None) -> None:
        if self._state == _CLOSED or self._transport is None:
            return
        sock = self._transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        self._force_close(reason)

    def get_extra(self, name: str, default: Any = None) -> Any:
        """asyncio's ``get_extra_info`` under eventhub's name (``socket``, ``peername``, ``sockname``)."""
        if self._transport is None:
            return default
        return self._transport.get_extra_info(name, default)

    def call_soon(self, fn: Callable[..., object], /, *args: Any) -> None:
        """Call ``fn(*args)`` on the loop after what is queued already."""
        self._reactor.call_soon(fn, *args)

    def start_tls(
        self,
        context: ssl.SSLContext,
        server_side: bool = False,
        server_hostname: str | None = None,
        handshake_timeout: float | None = HANDSHAKE_TIMEOUT,
    ) -> TLSLayer:
        """STARTTLS: what was written so far goes out in clear, then TLS (see ``_tls.py``).

        Returns the TLS transport, also set as the protocol's ``transport``:
        write through it from now on.
        """
        protocol = self._protocol
        assert protocol is not None
        layer = TLSLayer(
            self._reactor,
            protocol,
            context,
            server_side=server_side,
            server_hostname=server_hostname,
            handshake_timeout=handshake_timeout,
            app_connected=True,
        )
        protocol.transport = layer
        self._protocol = layer
        layer.connection_made(self)
        return layer

    def _force_close(self, reason: BaseException | None) -> None:
        if self._state == _CLOSED:
            return
        if self._host is None:
            with contextlib.suppress(OSError, UsageError):
                self.get_host()
        self._state = _CLOSED
        self._wclosed = True
        if reason is not None and self._reason is None:
            self._reason = reason
        if self._lingering is not None:
            self._lingering.cancel()
            self._lingering = None
        self._count(0)  # aborted: the loop discards its buffer
        self._transport.abort()  # type: ignore[union-attr]  # connection_lost follows from the loop

    def is_closing(self) -> bool:
        return self._state != _OPEN

    def pause_reading(self) -> None:
        self._read_paused = True
        if self._state == _OPEN and self._transport is not None:
            self._transport.pause_reading()  # idempotent, and uvloop's reads start after connection_made

    def resume_reading(self) -> None:
        self._read_paused = False
        if self._state == _OPEN and self._transport is not None:
            self._transport.resume_reading()
            if self._held:
                self._reactor.call_soon(self._deliver_held)

    def _deliver_held(self) -> None:
        held, self._held = self._held, []
        for data in held:
            self.data_received(data)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._high, self._low = high, low = write_buffer_limits(high, low)
        if self._transport is not None and not self._drain_watch:
            self._transport.set_write_buffer_limits(high, low)
        self._apply_write_buffer_limits(high, low)

    def get_write_buffer_size(self) -> int:
        return 0 if self._transport is None else self._transport.get_write_buffer_size()

    def get_peer(self) -> Address:
        assert self._peer is not None
        return self._peer

    def get_host(self) -> Address:
        if self._host is None:
            assert self._transport is not None
            sock = self._transport.get_extra_info("socket")
            sockname = self._transport.get_extra_info("sockname")
            if sockname is None or sock is None:
                raise UsageError(f"{self!r} has no local address")
            self._host = address_of(sock, sockname)
        return self._host

    # -- flow control and producers ---------------------------------------------

    # register_producer and the pulling: FlowControl

    def _takes_writes(self) -> bool:
        return self._state == _OPEN and not self._wclosed

    def _is_closed(self) -> bool:
        return self._state == _CLOSED

    def _pulling(self) -> None:
        self._watch_drain()  # the loop says when its buffer empties: then pull again


class AsyncioListener:
    """A listening port served by the loop's ``create_server`` on a socket bound here (errors at once)."""

    def __init__(
        self,
        reactor: AsyncioReactor,
        port: int,
        factory: Factory,
        backlog: int,
        interface: str,
        socket_buffer: int = 0,
    ):
        self._init(reactor, factory)
        port = check_port(port, listening=True)
        sock, family = open_listening_socket(reactor.shared_sockets, interface, port, backlog, socket_buffer)
        self._adopt(sock, Address.from_sockaddr(sock.getsockname(), family), backlog)

    def _init(self, reactor: AsyncioReactor, factory: Factory) -> None:
        self._reactor = reactor
        self._factory = factory
        self._host: Address | None = None
        self._server: asyncio.AbstractServer | None = None
        self._starting: asyncio.Task[Any] | None = None
        self._sock: socket.socket | None = None

    def _adopt(self, sock: socket.socket, host: Address, backlog: int) -> None:
        """Serve the listening ``sock`` (bound here, so errors came at once) on the loop."""
        self._sock = sock
        self._host = host
        self._starting = self._reactor._loop.create_task(self._serve(sock, backlog))
        self._reactor._listeners.add(self)
        self._factory.do_start()

    def __repr__(self) -> str:
        return f"<AsyncioListener {self._host} {type(self._factory).__name__}>"

    async def _serve(self, sock: socket.socket, backlog: int) -> None:
        self._server = await self._reactor._loop.create_server(self._connection, sock=sock, backlog=backlog)
        self._starting = None

    def _connection(self) -> AsyncioConnection:
        return AsyncioConnection(self._reactor, self._build)

    def _build(self, peer: Address) -> Protocol | None:
        return self._factory.build_protocol(peer)

    def get_host(self) -> Address:
        if self._host is None:
            raise UsageError(f"{self!r} is not listening")
        return self._host

    def stop_listening(self) -> None:
        """Close the port (connections already accepted stay open). Idempotent."""
        if self._sock is None:
            return
        sock, self._sock = self._sock, None
        close_served(self._server, self._starting, sock)
        self._starting = None
        self._reactor._listeners.discard(self)
        self._factory.do_stop()


def close_served(
    served: asyncio.AbstractServer | asyncio.BaseTransport | None,
    starting: asyncio.Task[Any] | None,
    sock: socket.socket,
) -> None:
    """Close what the loop serves ``sock`` with; before it has it (``starting``): cancel, close ``sock``."""
    if served is not None:
        served.close()
        return
    if starting is not None:
        starting.cancel()
    sock.close()


class AsyncioConnector(ConnectorBase):
    """An outgoing connection attempt through the loop's ``create_connection``; Twisted-style outcome."""

    _reactor: AsyncioReactor
    transport: AsyncioConnection | None

    def __init__(
        self, reactor: AsyncioReactor, host: str, port: int, factory: ClientFactory, timeout: float | None
    ) -> None:
        super().__init__(reactor, host, port, factory, timeout)
        self._attempt: asyncio.Task[Any] | None = None

    def _start_attempt(self) -> None:
        self._attempt = self._reactor._loop.create_task(self._connect())

    async def _connect(self) -> None:
        try:
            if self.timeout is None:
                await self._try_each()
            else:
                await asyncio.wait_for(self._try_each(), self.timeout)
        except asyncio.CancelledError:
            raise
        except asyncio.TimeoutError:
            self._fail(self._timeout_error())
        except OSError as exc:
            self._fail(exc)
        finally:
            self._attempt = None

    async def _try_each(self) -> None:
        """Each resolved address in turn (names resolved on the reactor's threads); the last error."""
        try:
            infos = socket.getaddrinfo(
                self.host, self.port, 0, socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST | socket.AI_NUMERICSERV
            )
        except (socket.gaierror, UnicodeError):
            infos = await self._reactor.defer_to_thread(
                socket.getaddrinfo, self.host, self.port, 0, socket.SOCK_STREAM
            )
        error: OSError = OSError(f"{self.host!r} resolved to no address")
        loop = self._reactor._loop
        for family, _, proto, _, sockaddr in infos:
            try:
                await loop.create_connection(
                    self._connection,
                    str(sockaddr[0]),
                    int(sockaddr[1]),
                    family=family,
                    proto=proto,
                )
            except OSError as exc:
                error = exc
            else:
                return
        raise error

    def _connection(self) -> AsyncioConnection:
        return AsyncioConnection(self._reactor, self._build, connector=self)

    def _build(self, peer: Address) -> Protocol | None:
        self._end_attempt(close=False)
        protocol = self.factory.build_protocol(peer)
        if protocol is not None:
            self._state = _CONNECTED  # the connection sets ``transport`` next
        return protocol

    def stop_connecting(self) -> None:
        """Cancel the attempt in progress; the factory hears ``ConnectionAbortedError``."""
        if self._state != _CONNECTING:
            return
        if self._attempt is not None:
            self._attempt.cancel()
            self._attempt = None
        super().stop_connecting()
