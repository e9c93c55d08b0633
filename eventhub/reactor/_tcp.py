"""TCP: the connection (the transport a protocol writes to) and the helpers its listener and connector share.

The listening port is ``_listener.Listener``, the outgoing attempt
``_connector.Connector`` (both importable from here too, as before); UNIX
stream sockets (``_unix.py``) use all three.

The write path follows asyncio's ``_SelectorSocketTransport``: ``write()``
tries ``send`` at once when nothing is buffered (the common case: no buffer,
no poller change, no allocation), and only what the kernel refused is copied
into a ``bytearray``; the descriptor is then watched for writability until the
buffer drains. Deleting the sent prefix of a ``bytearray`` is O(1) amortized in
CPython (it moves a start offset), so a 60 MB write drains without quadratic
copying. The protocol is told ``pause_writing`` when the buffer passes the
high-water mark and ``resume_writing`` when it falls to the low one.

Errors: ``EAGAIN``/``EINTR`` mean "later"; any other ``OSError`` on a
connection (``EPIPE``, ``ECONNRESET``...) closes that connection with the error
as its reason. An exception from protocol code closes that connection only.
Either way the socket is closed at once and ``connection_lost`` is scheduled
on the ready queue, never called from inside another callback.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import importlib
import logging
import os
import socket
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from eventhub.errors import PLUGIN_ERRORS, UsageError, reraise_user_interrupt
from eventhub.protocol import Address, Producer, Protocol, Transport, UNIXAddress, address_of
from eventhub.reactor._output import FlowControl, write_buffer_limits

if TYPE_CHECKING:
    import ssl
    from collections.abc import Iterable

    from eventhub.reactor._connector import Connector
    from eventhub.reactor._listener import Listener
    from eventhub.reactor._loop import Reactor
    from eventhub.reactor._timers import TimerHandle
    from eventhub.reactor._tls import TLSLayer

__all__ = ["Connection", "Connector", "Listener"]

log = logging.getLogger("eventhub.reactor")


_LATER = (BlockingIOError, InterruptedError)
_LINGER_RESET = struct.pack("ii", 1, 0)


class _State(enum.Enum):
    """Where a connection is on its way from open to closed: its sending side and its close.

    ::

        OPEN --write_eof()--> EOF_PENDING --flushed--> HALF_CLOSED
          |                       |                         |
          +----lose_connection()--+-------------------------+
          v
        DISCONNECTING --flushed--> LINGERING --peer's EOF or linger_timeout--> CLOSED

    Any state goes to CLOSED at once on an error, ``abort_connection`` or the
    reactor closing. Only OPEN takes writes. Reading is the other half and is
    not in this machine: the peer's EOF can come in OPEN (the protocol may keep
    writing), EOF_PENDING or HALF_CLOSED (both halves are then done) or before
    DISCONNECTING (no lingering: the peer has nothing more to send).
    """

    OPEN = "open"
    EOF_PENDING = "eof pending"  # write_eof() with data buffered: flushing, then shutdown(SHUT_WR)
    HALF_CLOSED = "half-closed"  # our EOF sent; still reading until the peer's
    DISCONNECTING = "disconnecting"  # lose_connection(): not reading, flushing before the graceful close
    LINGERING = "lingering"  # flushed, FIN sent: discarding input until the peer's EOF (see _linger)
    CLOSED = "closed"  # the socket is closed; connection_lost is scheduled or done


# Module-level names for the hot path (a global load, not an attribute of the class).
_OPEN = _State.OPEN
_CLOSED = _State.CLOSED
# What is_closing() answers True for: lose_connection() was called, or the connection is gone.
_CLOSING_STATES = frozenset({_State.DISCONNECTING, _State.LINGERING, _State.CLOSED})

# Moved to their own modules, still importable from here (PEP 562: imported on
# first use, since both import this module).
_MOVED = {"Listener": "_listener", "Connector": "_connector"}


def __getattr__(name: str) -> Any:
    module = _MOVED.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"eventhub.reactor.{module}"), name)


class Connection(FlowControl):
    """One TCP connection: the transport its protocol writes to (``eventhub.protocol.Transport``)."""

    # FlowControl holds the slots it uses (protocol, producer, water marks, peer).
    __slots__ = (
        "_buffer",
        "_connector",
        "_fd",
        "_host",
        "_linger_timer",
        "_output",
        "_peer_eof",
        "_reactor",
        "_reading",
        "_rview",
        "_sock",
        "_state",
    )

    _protocol: Protocol  # set at once here, never None (FlowControl allows the asyncio adapter's None)
    _peer: Address

    def __init__(
        self,
        reactor: Reactor,
        sock: socket.socket,
        protocol: Protocol,
        peer: Address,
        connector: Connector | None = None,
    ) -> None:
        self._reactor: Reactor = reactor
        self._sock = sock
        self._fd = sock.fileno()
        self._protocol = protocol
        self._rview = reactor._recv_view
        self._output = reactor.output_bound
        self._peer = peer
        self._host: Address | None = None
        self._connector = connector
        # b"" while empty (no allocation for idle connections), a bytearray while not.
        self._buffer: bytes | bytearray = b""
        self._state = _OPEN
        self._peer_eof = False  # the peer sent EOF: nothing more to read
        self._reading = False  # the reactor calls us when readable (_on_readable, or _discard_input)
        self._protocol_paused = False
        self._high, self._low = write_buffer_limits()
        self._producer: Producer | None = None
        self._streaming = False
        self._linger_timer: TimerHandle | None = None  # the timeout of LINGERING

    def __repr__(self) -> str:
        return f"<Connection fd={self._fd} {self._state.value} peer={self._peer}>"

    def _start(self) -> None:
        """Watch for reads and call ``connection_made`` (the fd may already be watched)."""
        self._reactor._connections.add(self)
        self._reactor.add_reader(self._fd, self._on_readable)
        self._reading = True
        try:
            self._protocol.make_connection(self)
        except PLUGIN_ERRORS as exc:
            reraise_user_interrupt(exc)
            self._protocol_failed(exc, "connection_made")

    # -- reading (the hot path) -----------------------------------------------
    #
    # One recv_into() per readable event, into the reactor's 256 KiB buffer, then
    # a copy of what arrived. Not recv(256 KiB): CPython would malloc 256 KiB per
    # call (above glibc's mmap threshold: an mmap/munmap pair, ~9 us) only to
    # shrink it to the 64 bytes that came; that alone made an echo server 4x
    # slower than a bare loop. The buffer is the reactor's, so reactors on
    # different threads never share one.

    def _on_readable(self) -> None:
        view = self._rview
        try:
            n = self._sock.recv_into(view)
        except _LATER:
            return
        except OSError as exc:
            self._force_close(exc)
            return
        if n:
            data = view[:n].tobytes()
            try:
                self._protocol.data_received(data)
            except PLUGIN_ERRORS as exc:
                reraise_user_interrupt(exc)
                self._protocol_failed(exc, "data_received")
        else:
            self._read_eof()

    def _read_eof(self) -> None:
        self._peer_eof = True
        self._stop_reading()
        if self._state is not _OPEN:  # write_eof() came first: both halves are done now
            self.lose_connection()
            return
        try:
            keep_open = self._protocol.eof_received()
        except PLUGIN_ERRORS as exc:
            reraise_user_interrupt(exc)
            self._protocol_failed(exc, "eof_received")
            return
        if not keep_open:
            self.lose_connection()

    def _stop_reading(self) -> None:
        if self._reading:
            self._reading = False
            self._reactor.remove_reader(self._fd)

    def pause_reading(self) -> None:
        """Stop delivering ``data_received`` until ``resume_reading()``."""
        if self._state not in _CLOSING_STATES:  # a closing connection reads only to find the peer's EOF
            self._stop_reading()

    def resume_reading(self) -> None:
        if not self._reading and self._state not in _CLOSING_STATES and not self._peer_eof:
            self._reading = True
            self._reactor.add_reader(self._fd, self._on_readable)

    def call_soon(self, fn: Callable[..., object], /, *args: Any) -> None:
        self._reactor.call_soon(fn, *args)

    # -- writing --------------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Send ``data`` now if the kernel takes it, else buffer the rest in order."""
        if self._state is not _OPEN:
            return  # after close or write_eof: dropped quietly
        if type(data) is not bytes and type(data) is not bytearray:
            data = _byte_view(data)  # so that len() below counts bytes, not items
        if self._buffer:
            self._buffer += data  # a bytearray whenever non-empty
            output = self._output
            output.buffered += len(data)
            if output.buffered > output.limit:
                output.over()
            if len(self._buffer) > self._high:
                self._pause_protocol()
            return
        try:
            n = self._sock.send(data)
        except _LATER:
            n = 0
        except OSError as exc:
            self._force_close(exc)
            return
        if n != len(data):
            self._buffer_rest(data, n)

    def write_sequence(self, data: Iterable[bytes | bytearray | memoryview]) -> None:
        """Write every item, in order, with one send."""
        self.write(b"".join(data))

    def _buffer_rest(self, data: bytes | bytearray | memoryview, sent: int) -> None:
        with memoryview(data) as view:  # data is bytes-like, or a view of format "B"
            self._buffer = bytearray(view[sent:])
        output = self._output
        output.buffered += len(self._buffer)
        if output.buffered > output.limit:
            output.over()
        self._reactor.add_writer(self._fd, self._on_writable)
        if len(self._buffer) > self._high:
            self._pause_protocol()

    def _on_writable(self) -> None:
        buf = self._buffer
        try:
            n = self._sock.send(buf)
        except _LATER:
            return
        except OSError as exc:
            self._force_close(exc)
            return
        del buf[:n]  # type: ignore[union-attr]  # only watched while it is a bytearray
        self._output.buffered -= n
        if self._protocol_paused and len(buf) <= self._low:
            # May write more, or close: with nothing buffered, lose_connection
            # lingers at once, and _drained below then finds it lingering.
            self._resume_protocol()
        if self._buffer or self._state is _CLOSED:
            return
        self._buffer = b""  # release the drained bytearray
        self._reactor.remove_writer(self._fd)
        self._drained()

    def _drained(self) -> None:
        """The buffer just emptied: finish a pending close or EOF, or pull more."""
        state = self._state
        if state is _State.DISCONNECTING:
            self._linger()
        elif state is _State.EOF_PENDING:
            self._shutdown_write()
        elif state is not _State.LINGERING and self._producer is not None and not self._streaming:
            self._reactor.call_soon(self._pull)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        """High-water mark (default 64 KiB) and low-water mark (default ``high // 4``)."""
        self._high, self._low = high, low = write_buffer_limits(high, low)
        self._apply_write_buffer_limits(high, low)

    def get_write_buffer_size(self) -> int:
        return len(self._buffer)

    # -- producers (register_producer and the pulling: FlowControl) -----------

    def _takes_writes(self) -> bool:
        return self._state is _OPEN

    def _is_closed(self) -> bool:
        return self._state is _CLOSED

    # -- closing --------------------------------------------------------------

    def write_eof(self) -> None:
        """Flush the buffer, then shut down the sending half."""
        if self._state is not _OPEN:
            return
        if self._buffer:
            self._state = _State.EOF_PENDING
        else:
            self._shutdown_write()

    def _shutdown_write(self) -> None:
        self._state = _State.HALF_CLOSED
        try:
            self._sock.shutdown(socket.SHUT_WR)
        except OSError as exc:
            self._force_close(exc)
            return
        if self._peer_eof:
            self.lose_connection()

    def lose_connection(self) -> None:
        """Stop reading, flush, close gracefully (see ``_linger``); ``connection_lost(None)`` follows."""
        if self._state in _CLOSING_STATES:
            return
        self._state = _State.DISCONNECTING
        self._stop_reading()
        if not self._buffer:
            self._linger()

    def close_for_shutdown(self) -> None:
        close_for_shutdown(self, self._protocol)

    # Why linger: close() on a socket whose receive queue is not empty makes the
    # kernel send RST instead of FIN, and RST throws away whatever of ours is
    # still in the kernel's send queue: a client that sent more than we read
    # would lose the tail of our last reply. So a graceful close sends FIN
    # (shutdown SHUT_WR), reads and discards until the peer's FIN, and only then
    # closes; a peer that never closes gets ``Reactor.linger_timeout`` seconds.

    def _linger(self) -> None:
        """DISCONNECTING and flushed: half-close, wait for the peer's EOF (LINGERING), then close."""
        if self._peer_eof:
            self._force_close(None)
            return
        try:
            self._sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._force_close(None)  # not connected any more: nothing left to protect
            return
        self._state = _State.LINGERING
        reactor = self._reactor
        self._linger_timer = reactor.call_later(reactor.linger_timeout, self._force_close, None)
        self._reading = True
        reactor.add_reader(self._fd, self._discard_input)
        self._discard_input()

    def _discard_input(self) -> None:
        view = self._rview
        for _ in range(16):  # bounded: a fast sender must not hold the loop
            try:
                if not self._sock.recv_into(view):
                    break  # EOF
            except _LATER:
                return  # more may come: keep waiting for EOF
            except OSError:
                break  # reset: done just the same
        else:
            return
        self._force_close(None)

    def abort_connection(self, reason: BaseException | None = None) -> None:
        """Close now, discarding the buffer; the peer gets a reset (RST), ``connection_lost`` ``reason``."""
        if self._state is _CLOSED:
            return
        with contextlib.suppress(OSError):  # already dead: closing is all that is left
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        self._force_close(reason)

    def is_closing(self) -> bool:
        return self._state in _CLOSING_STATES

    def _force_close(self, reason: BaseException | None) -> None:
        """Close the socket now; ``connection_lost(reason)`` runs on the next pass."""
        if self._state is _CLOSED:
            return
        self._state = _CLOSED
        reactor = self._reactor
        if self._linger_timer is not None:
            self._linger_timer.cancel()
            self._linger_timer = None
        self._stop_reading()
        self._output.buffered -= len(self._buffer)
        self._buffer = b""
        reactor.remove_writer(self._fd)  # even if the buffer just drained: still watched
        if self._host is None:  # get_host() keeps working in connection_lost
            with contextlib.suppress(OSError):
                self.get_host()
        self._sock.close()
        reactor._connections.discard(self)
        reactor.call_soon(self._connection_lost, reason)

    def _connection_lost(self, reason: BaseException | None) -> None:
        producer, self._producer = self._producer, None
        try:
            if producer is not None:
                producer.stop_producing()
            self._protocol.connection_lost(reason)
        except PLUGIN_ERRORS as failure:
            reraise_user_interrupt(failure)
            log.exception("%s.connection_lost raised", type(self._protocol).__name__)
        if self._connector is not None:
            self._connector._connection_lost(reason)

    # -- addresses, TLS -------------------------------------------------------

    def get_peer(self) -> Address:
        return self._peer

    def get_extra(self, name: str, default: Any = None) -> Any:
        """``socket``, ``peername`` or ``sockname``; ``default`` for anything else."""
        if name == "socket":
            return self._sock
        if name in ("peername", "sockname"):
            return self._peer if name == "peername" else self.get_host()
        return default

    def start_tls(
        self,
        context: ssl.SSLContext,
        server_side: bool = False,
        server_hostname: str | None = None,
        handshake_timeout: float | None = 30.0,
    ) -> TLSLayer:
        """STARTTLS: what was written so far goes out in clear, then TLS (see ``_tls.py``).

        Returns the TLS transport, also set as the protocol's ``transport``:
        write through it from now on. Writes made before the handshake completes
        are sent once it has; a failed handshake closes the connection.
        """
        from eventhub.reactor._tls import TLSLayer

        layer = TLSLayer(
            self._reactor,
            self._protocol,
            context,
            server_side=server_side,
            server_hostname=server_hostname,
            handshake_timeout=handshake_timeout,
            app_connected=True,
        )
        self._protocol.transport = layer
        self._protocol = layer
        layer.connection_made(self)
        return layer

    def get_host(self) -> Address:
        if self._host is None:
            self._host = address_of(self._sock, self._sock.getsockname())
        return self._host


class _Layer(Protocol):
    """A protocol that is itself a transport for one above it (``tls.TLSLayer``)."""

    def lose_connection(self) -> None:
        raise NotImplementedError


def _byte_view(data: object) -> bytes | memoryview:
    """``data`` (any buffer) as one whose ``len()`` is its size in bytes.

    ``len()`` of a memoryview counts items: 1,000 ``int32`` are 4,000 bytes,
    and comparing what ``send`` took with the item count would drop the rest.
    """
    try:
        view = memoryview(data)  # type: ignore[arg-type]  # not a buffer: the TypeError below
    except TypeError:
        raise TypeError(f"write() takes bytes, bytearray or memoryview, not {type(data).__name__}") from None
    if view.c_contiguous:
        return view.cast("B")
    return view.tobytes()  # a strided view: send() needs contiguous bytes


def check_port(port: object, *, listening: bool) -> int:
    """The port as an int, or a ``UsageError`` naming the bad value (getaddrinfo would wrap 70000)."""
    low = 0 if listening else 1
    if isinstance(port, bool) or not isinstance(port, int) or not low <= port <= 65535:
        raise UsageError(f"TCP port must be an integer from {low} to 65535, got {port!r}")
    return port


def _resolve_passive(interface: str, port: int) -> tuple[socket.AddressFamily, Any]:
    host = interface or "0.0.0.0"  # "" means all IPv4 interfaces, as in Twisted
    # An ASCII host goes as bytes: getaddrinfo encodes a str with the "idna"
    # codec, whose first use imports encodings.idna and stringprep (~1 ms of start-up).
    name: str | bytes = host.encode("ascii") if host.isascii() else host
    infos = socket.getaddrinfo(name, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)
    family, _, _, _, sockaddr = infos[0]
    return family, sockaddr


def close_for_shutdown(transport: Transport, protocol: Protocol | None) -> None:
    """The reactor is stopping: close as the protocol's own layer would (TLS: close_notify first)."""
    if isinstance(protocol, _Layer):
        protocol.lose_connection()
    else:
        transport.lose_connection()


def listening_socket(
    family: int, sockaddr: tuple[Any, ...], backlog: int, *, socket_buffer: int = 0, reuse_port: bool = False
) -> socket.socket:
    """A TCP socket bound to ``sockaddr`` and listening (``OSError`` if it cannot be).

    The one place listening sockets are made: by a ``Listener``, and by the
    supervisor of ``eventhub run --workers N`` for the sockets its workers share
    (``reuse_port``: one per worker slot, the kernel spreading connections).
    """
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if os.name == "posix":  # rebind at once after a restart (TIME_WAIT)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6 and sockaddr[0] == "::":
            _take_ipv4_too(sock)
        if socket_buffer > 0:
            # Set on the listening socket, before listen(): accepted sockets
            # inherit both (no syscall per connection), and the receive
            # window is negotiated from the right size.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, socket_buffer)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, socket_buffer)
        sock.bind(sockaddr)
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock


def _take_ipv4_too(sock: socket.socket) -> None:
    """Make a socket bound to "::" (every interface) accept IPv4 connections as well.

    Whether it does by default is the system's choice (IPV6_V6ONLY is 1 on
    Windows and under Linux's net.ipv6.bindv6only=1), and "all interfaces"
    should not depend on it. A system without dual-stack sockets (OpenBSD)
    refuses the option: there, "::" means IPv6 only, and "0.0.0.0" is IPv4.
    """
    try:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    except (AttributeError, OSError) as exc:
        log.debug("no dual-stack sockets here (%s): listening on :: takes IPv6 only", exc)


def _where(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _peer_of(sock: socket.socket, sockaddr: Any) -> Address:
    if sock.family == getattr(socket, "AF_UNIX", None):  # a UNIX socket (_unix.py): with credentials
        return UNIXAddress.of_peer(sock)
    return Address.from_sockaddr(sockaddr, sock.family)


def _no_delay(sock: socket.socket) -> None:
    if sock.family != getattr(socket, "AF_UNIX", None):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower() if exc.errno == errno.EADDRINUSE else exc.strerror
    return str(exc)
