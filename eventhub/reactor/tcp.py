"""TCP: the listening port, the connection (transport) and the outgoing connector.

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
import errno
import logging
import os
import select
import socket
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from eventhub._logging import RateLimitedLog
from eventhub.errors import PLUGIN_ERRORS, ServiceError, UsageError, call_plugin, reraise_user_interrupt
from eventhub.protocol import Address, ClientFactory, Factory, Producer, Protocol, UNIXAddress, address_of
from eventhub.reactor.pollers import DescriptorLimitError

if TYPE_CHECKING:
    import ssl
    from collections.abc import Iterable

    from eventhub.reactor._loop import Reactor
    from eventhub.reactor.timers import TimerHandle
    from eventhub.reactor.tls import TLSLayer

__all__ = ["Connection", "Connector", "Listener"]

log = logging.getLogger("eventhub.reactor")

HIGH_WATER = 64 * 1024
# Connections accepted per readable event of a listener: bounded so one busy
# port cannot monopolize a pass of the loop.
ACCEPT_BURST = 64
# Without a spare descriptor, accepting pauses this long after EMFILE.
ACCEPT_RETRY_DELAY = 0.5

_LATER = (BlockingIOError, InterruptedError)
_OUT_OF_DESCRIPTORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
# The peer gave up between SYN and accept(): nothing to do, accept the next one.
_ACCEPT_TRANSIENT = frozenset({errno.ECONNABORTED, errno.EPROTO, errno.EPERM, errno.EINTR, errno.ECONNRESET})
_CONNECT_PENDING = frozenset({0, errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EALREADY})
_LINGER_RESET = struct.pack("ii", 1, 0)

_OPEN, _CLOSING, _CLOSED = 0, 1, 2
_EOF_NONE, _EOF_PENDING, _EOF_SENT = 0, 1, 2


class Connection:
    """One TCP connection: the transport its protocol writes to (``eventhub.protocol.Transport``)."""

    __slots__ = (
        "_buffer",
        "_connector",
        "_eof",
        "_fd",
        "_high",
        "_host",
        "_lingering",
        "_low",
        "_output",
        "_peer",
        "_peer_eof",
        "_producer",
        "_protocol",
        "_protocol_paused",
        "_reactor",
        "_read_paused",
        "_reading",
        "_rview",
        "_sock",
        "_state",
        "_streaming",
        "_wclosed",
    )

    def __init__(
        self,
        reactor: Reactor,
        sock: socket.socket,
        protocol: Protocol,
        peer: Address,
        connector: Connector | None = None,
    ) -> None:
        self._reactor = reactor
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
        self._wclosed = False  # no more writes: closing, closed or EOF written
        self._eof = _EOF_NONE
        self._peer_eof = False
        self._reading = False
        self._read_paused = False
        self._protocol_paused = False
        self._high = HIGH_WATER
        self._low = HIGH_WATER // 4
        self._producer: Producer | None = None
        self._streaming = False
        self._lingering: TimerHandle | None = None  # the timeout of a graceful close

    def __repr__(self) -> str:
        state = ("open", "closing", "closed")[self._state]
        return f"<Connection fd={self._fd} {state} peer={self._peer}>"

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
        if self._eof != _EOF_NONE:  # both halves are done now
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
        self._read_paused = True
        if self._state == _OPEN:  # a closing connection reads only to find the peer's EOF
            self._stop_reading()

    def resume_reading(self) -> None:
        self._read_paused = False
        if not self._reading and self._state == _OPEN and not self._peer_eof:
            self._reading = True
            self._reactor.add_reader(self._fd, self._on_readable)

    def call_soon(self, fn: Callable[..., object], /, *args: Any) -> None:
        self._reactor.call_soon(fn, *args)

    # -- writing --------------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Send ``data`` now if the kernel takes it, else buffer the rest in order."""
        if self._wclosed:
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
        if self._buffer or self._state == _CLOSED:
            return
        self._buffer = b""  # release the drained bytearray
        self._reactor.remove_writer(self._fd)
        self._drained()

    def _drained(self) -> None:
        """The buffer just emptied: finish a pending close or EOF, or pull more."""
        if self._state == _CLOSING:
            self._linger()
        elif self._eof == _EOF_PENDING:
            self._shutdown_write()
        elif self._producer is not None and not self._streaming:
            self._reactor.call_soon(self._pull)

    def _pause_protocol(self) -> None:
        if self._protocol_paused:
            return
        self._protocol_paused = True
        try:
            self._protocol.pause_writing()
            if self._producer is not None and self._streaming:
                self._producer.pause_producing()
        except PLUGIN_ERRORS as exc:
            reraise_user_interrupt(exc)
            self._protocol_failed(exc, "pause_writing")

    def _resume_protocol(self) -> None:
        self._protocol_paused = False
        try:
            self._protocol.resume_writing()
            if self._producer is not None and self._streaming:
                self._producer.resume_producing()
        except PLUGIN_ERRORS as exc:
            reraise_user_interrupt(exc)
            self._protocol_failed(exc, "resume_writing")

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        """High-water mark (default 64 KiB) and low-water mark (default ``high // 4``)."""
        if high is None:
            high = HIGH_WATER if low is None else max(4 * low, HIGH_WATER)
        if low is None:
            low = high // 4
        if not 0 <= low <= high:
            raise ValueError(f"need 0 <= low <= high for write buffer limits, got {high=}, {low=}")
        self._high, self._low = high, low
        size = len(self._buffer)
        if size > high:
            self._pause_protocol()
        elif self._protocol_paused and size <= low:
            self._resume_protocol()

    def get_write_buffer_size(self) -> int:
        return len(self._buffer)

    # -- producers ------------------------------------------------------------

    def register_producer(self, producer: Producer, streaming: bool) -> None:
        """Attach ``producer``; see ``eventhub.protocol.Producer`` for when it is called."""
        if self._producer is not None:
            raise RuntimeError(f"{self!r} already has a producer: {self._producer!r}")
        if self._state == _CLOSED:
            producer.stop_producing()
            return
        self._producer, self._streaming = producer, streaming
        if streaming:
            if self._protocol_paused:
                producer.pause_producing()
        else:
            self._reactor.call_soon(self._pull)

    def unregister_producer(self) -> None:
        self._producer = None

    def _pull(self) -> None:
        """Ask a pull producer for more while it keeps the buffer empty."""
        producer = self._producer
        if producer is None or self._streaming or self._buffer or self._state != _OPEN:
            return
        try:
            producer.resume_producing()
        except PLUGIN_ERRORS as exc:
            reraise_user_interrupt(exc)
            self._protocol_failed(exc, "resume_producing")
            return
        if self._producer is producer and not self._buffer:
            self._reactor.call_soon(self._pull)

    # -- closing --------------------------------------------------------------

    def write_eof(self) -> None:
        """Flush the buffer, then shut down the sending half."""
        if self._wclosed:
            return
        self._wclosed = True
        if self._buffer:
            self._eof = _EOF_PENDING
        else:
            self._shutdown_write()

    def _shutdown_write(self) -> None:
        self._eof = _EOF_SENT
        try:
            self._sock.shutdown(socket.SHUT_WR)
        except OSError as exc:
            self._force_close(exc)
            return
        if self._peer_eof:
            self.lose_connection()

    def lose_connection(self) -> None:
        """Stop reading, flush, close gracefully (see ``_linger``); ``connection_lost(None)`` follows."""
        if self._state != _OPEN:
            return
        self._state = _CLOSING
        self._wclosed = True
        self._stop_reading()
        if not self._buffer:
            self._linger()

    def close_for_shutdown(self) -> None:
        """The reactor is stopping: close as the protocol's own layer would (TLS: close_notify first)."""
        layer = self._protocol
        if isinstance(layer, _Layer):
            layer.lose_connection()
        else:
            self.lose_connection()

    # Why linger: close() on a socket whose receive queue is not empty makes the
    # kernel send RST instead of FIN, and RST throws away whatever of ours is
    # still in the kernel's send queue: a client that sent more than we read
    # would lose the tail of our last reply. So a graceful close sends FIN
    # (shutdown SHUT_WR), reads and discards until the peer's FIN, and only then
    # closes; a peer that never closes gets ``Reactor.linger_timeout`` seconds.

    def _linger(self) -> None:
        """Everything is flushed: half-close, wait for the peer's EOF, then close. Idempotent."""
        if self._lingering is not None:
            return  # already lingering: one shutdown, one timer
        if self._peer_eof or self._state == _CLOSED:
            self._force_close(None)
            return
        try:
            self._sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._force_close(None)  # not connected any more: nothing left to protect
            return
        reactor = self._reactor
        self._lingering = reactor.call_later(reactor.linger_timeout, self._force_close, None)
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
        if self._state == _CLOSED:
            return
        with contextlib.suppress(OSError):  # already dead: closing is all that is left
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        self._force_close(reason)

    def is_closing(self) -> bool:
        return self._state != _OPEN

    def _protocol_failed(self, exc: BaseException, callback: str) -> None:
        """Protocol code raised: log it once, close this connection with it as the reason."""
        log.error(
            "%s.%s raised %s; closing the connection with %s",
            type(self._protocol).__name__,
            callback,
            type(exc).__name__,
            self._peer,
            exc_info=exc,
        )
        self._force_close(exc)

    def _force_close(self, reason: BaseException | None) -> None:
        """Close the socket now; ``connection_lost(reason)`` runs on the next pass."""
        if self._state == _CLOSED:
            return
        self._state = _CLOSED
        self._wclosed = True
        reactor = self._reactor
        if self._lingering is not None:
            self._lingering.cancel()
            self._lingering = None
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
        """STARTTLS: what was written so far goes out in clear, then TLS (see ``tls.py``).

        Returns the TLS transport, also set as the protocol's ``transport``:
        write through it from now on. Writes made before the handshake completes
        are sent once it has; a failed handshake closes the connection.
        """
        from eventhub.reactor.tls import TLSLayer

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
    infos = socket.getaddrinfo(host, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)
    family, _, _, _, sockaddr = infos[0]
    return family, sockaddr


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


def _open_spare() -> int | None:
    try:
        return os.open(os.devnull, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None


class Listener:
    """A listening TCP port. ``get_host()`` is where it listens; ``stop_listening()`` closes it.

    A spare descriptor is held open so that when the process runs out
    (``EMFILE``) the listener can still free one, accept the waiting
    connection and close it at once, rather than leave it in the backlog and be
    woken for it again and again (the loop would spin at 100% CPU).
    """

    __slots__ = (
        "_backlog",
        "_factory",
        "_fd",
        "_host",
        "_interface",
        "_paused",
        "_port",
        "_reactor",
        "_refusals",
        "_sock",
        "_socket_buffer",
        "_spare",
    )

    def __init__(
        self,
        reactor: Reactor,
        port: int,
        factory: Factory,
        backlog: int,
        interface: str,
        socket_buffer: int = 0,
    ) -> None:
        self._reactor = reactor
        self._socket_buffer = socket_buffer
        self._port = check_port(port, listening=True)
        self._factory = factory
        self._backlog = backlog
        self._interface = interface
        self._sock: socket.socket | None = None
        self._fd = -1
        self._host: Address | None = None
        self._spare: int | None = None
        self._paused = False
        self._refusals = RateLimitedLog(log)

    def __repr__(self) -> str:
        where = self._host or _where(self._interface or "0.0.0.0", self._port)
        return f"<Listener {where} {type(self._factory).__name__}>"

    def start_listening(self) -> None:
        """Bind, listen and start accepting; ``ServiceError`` (one line) if it cannot."""
        if self._sock is not None:
            raise UsageError(f"{self!r} is already listening")
        where = _where(self._interface or "0.0.0.0", self._port)
        try:
            family, sockaddr = _resolve_passive(self._interface, self._port)
        except (OSError, UnicodeError) as exc:
            raise ServiceError(f"cannot listen on {where}: {_reason(exc)}") from None
        shared = self._reactor.shared_sockets
        try:
            if shared is None:
                sock = listening_socket(family, sockaddr, self._backlog, socket_buffer=self._socket_buffer)
            else:  # a worker of `eventhub run --workers N`: the supervisor holds the socket
                sock = shared.listening_socket(family, sockaddr, self._backlog, self._socket_buffer)
        except OSError as exc:
            raise ServiceError(f"cannot listen on {where}: {_reason(exc)}") from None
        try:
            sock.setblocking(False)
            self._reactor.add_reader(sock.fileno(), self._on_readable)
        except (OSError, DescriptorLimitError) as exc:
            sock.close()
            raise ServiceError(f"cannot listen on {where}: {_reason(exc)}") from None
        self._sock, self._fd = sock, sock.fileno()
        self._host = Address.from_sockaddr(sock.getsockname(), family)
        self._spare = _open_spare()
        self._reactor._listeners.add(self)
        self._factory.do_start()
        log.debug("listening on %s (%s)", self._host, type(self._factory).__name__)

    def get_host(self) -> Address:
        """The address it listens on (the real port when asked for port 0)."""
        if self._host is None:
            raise UsageError(f"{self!r} is not listening")
        return self._host

    def stop_listening(self) -> None:
        """Close the port (connections already accepted stay open). Idempotent."""
        sock, self._sock = self._sock, None
        if sock is None:
            return
        if not self._paused:
            self._reactor.remove_reader(self._fd)
        sock.close()
        if self._spare is not None:
            os.close(self._spare)
            self._spare = None
        self._reactor._listeners.discard(self)
        log.debug("stopped listening on %s", self._host)
        self._factory.do_stop()

    # -- accepting ------------------------------------------------------------

    def _on_readable(self) -> None:
        sock = self._sock
        for _ in range(ACCEPT_BURST):
            if sock is None or self._sock is None:  # a connection_made stopped us
                return
            try:
                conn, addr = sock.accept()
            except _LATER:
                return
            except OSError as exc:
                if exc.errno in _OUT_OF_DESCRIPTORS:
                    if not self._shed_load(exc):
                        return
                elif exc.errno not in _ACCEPT_TRANSIENT:
                    log.error("accept() on %s failed: %s", self._host, exc)
                    return
                continue
            self._serve(conn, addr)

    def _shed_load(self, exc: OSError) -> bool:
        """Out of descriptors: accept-and-close one waiting connection. False: stop for now."""
        assert self._sock is not None
        if self._spare is None:
            self._spare = _open_spare()
        if self._spare is None:
            log.error("%s: %s; not accepting for %.1fs", self._host, exc.strerror, ACCEPT_RETRY_DELAY)
            self._pause_accepting()
            return False
        os.close(self._spare)
        self._spare = None
        try:
            conn, addr = self._sock.accept()
        except OSError:
            self._spare = _open_spare()
            return False  # nothing waiting after all (or still no descriptor)
        conn.close()  # before re-opening the spare: it needs this descriptor back
        self._spare = _open_spare()
        self._refusals.log(
            logging.WARNING, "%s: %s; refused the connection from %s", self._host, exc.strerror, _addr(addr)
        )
        return True

    def _pause_accepting(self) -> None:
        self._paused = True
        self._reactor.remove_reader(self._fd)
        self._reactor.call_later(ACCEPT_RETRY_DELAY, self._resume_accepting)

    def _resume_accepting(self) -> None:
        self._paused = False
        if self._sock is not None:
            self._reactor.add_reader(self._fd, self._on_readable)

    def _serve(self, sock: socket.socket, addr: Any) -> None:
        peer = _peer_of(sock, addr)
        fd = sock.fileno()
        try:
            sock.setblocking(False)
            _no_delay(sock)
            self._reactor.add_reader(fd, _not_ready)  # checks the backend can watch fd
        except DescriptorLimitError as exc:
            self._refusals.log(
                logging.ERROR, "refused the connection from %s on %s: %s", peer, self._host, exc
            )
            sock.close()
            return
        except OSError as exc:  # the peer is already gone
            log.debug("connection from %s on %s failed at once: %s", peer, self._host, exc)
            sock.close()
            return
        protocol = self._build(peer)
        if protocol is None:
            self._reactor.remove_reader(fd)
            sock.close()
            return
        Connection(self._reactor, sock, protocol, peer)._start()

    def _build(self, peer: Address) -> Protocol | None:
        try:
            return self._factory.build_protocol(peer)
        except PLUGIN_ERRORS as failure:
            reraise_user_interrupt(failure)
            log.exception(
                "%s.build_protocol raised; closing the connection from %s",
                type(self._factory).__name__,
                peer,
            )
            return None


def _peer_of(sock: socket.socket, sockaddr: Any) -> Address:
    if sock.family == getattr(socket, "AF_UNIX", None):  # a UNIX socket (unix.py): with credentials
        return UNIXAddress.of_peer(sock)
    return Address.from_sockaddr(sockaddr, sock.family)


def _no_delay(sock: socket.socket) -> None:
    if sock.family != getattr(socket, "AF_UNIX", None):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _not_ready() -> None:
    """Placeholder reader between accept() and the Connection taking over."""


def _addr(addr: Any) -> str:
    try:
        return str(Address.from_sockaddr(addr))  # ::ffff:a.b.c.d shown as a.b.c.d, as everywhere
    except (TypeError, IndexError):
        return repr(addr)


def _writable_now(sock: socket.socket) -> bool:
    """Ask the kernel, for this one socket, whether it is writable (or in error) right now."""
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(sock, select.POLLOUT)
        return bool(poller.poll(0))
    _, writable, failed = select.select([], [sock], [sock], 0)  # Windows: a failed connect is in "failed"
    return bool(writable or failed)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower() if exc.errno == errno.EADDRINUSE else exc.strerror
    return str(exc)


_DISCONNECTED, _CONNECTING, _CONNECTED = 0, 1, 2


class Connector:
    """An outgoing TCP connection attempt (``Reactor.connect_tcp``), Twisted-style.

    Failures (refused, timed out, unresolvable, cancelled) reach
    ``factory.client_connection_failed(connector, reason)``; once connected, the
    end of the connection reaches ``factory.client_connection_lost``. Calling
    ``connect()`` again from either starts a new attempt (reconnecting).
    """

    __slots__ = (
        "_addresses",
        "_reactor",
        "_sock",
        "_state",
        "_timer",
        "factory",
        "host",
        "port",
        "timeout",
        "transport",
    )

    def __init__(
        self, reactor: Reactor, host: str, port: int, factory: ClientFactory, timeout: float | None
    ) -> None:
        self._reactor = reactor
        self.host = host
        self.port = check_port(port, listening=False)
        self.factory = factory
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._timer: TimerHandle | None = None
        # The resolved addresses not tried yet, the next one last (popped).
        self._addresses: list[tuple[int, int, int, Any]] = []
        self._state = _DISCONNECTED
        self.transport: Connection | None = None

    def __repr__(self) -> str:
        state = ("disconnected", "connecting", "connected")[self._state]
        return f"<Connector {_where(self.host, self.port)} {state}>"

    def get_destination(self) -> Address:
        return Address(self.host, self.port, socket.AF_INET6 if ":" in self.host else socket.AF_INET)

    def connect(self) -> None:
        """Start an attempt (non-blocking; names are resolved on the thread pool)."""
        if self._state != _DISCONNECTED:
            raise UsageError(f"{self!r}: connect() while already connecting or connected")
        self._state = _CONNECTING
        self._reactor._connectors.add(self)
        self.factory.do_start()
        call_plugin(log, self.factory, "start_connecting", self)
        if self.timeout is not None:
            self._timer = self._reactor.call_later(self.timeout, self._timed_out)
        self._resolve()

    def _resolve(self) -> None:
        """Resolve the destination, then ``_resolved(infos)`` (``unix.UNIXConnector`` has a path)."""
        try:  # a numeric address needs no resolver
            infos = socket.getaddrinfo(
                self.host,
                self.port,
                0,
                socket.SOCK_STREAM,
                0,
                socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
            )
        except (socket.gaierror, UnicodeError):
            self._reactor.defer_to_thread(
                socket.getaddrinfo, self.host, self.port, 0, socket.SOCK_STREAM
            ).add_callbacks(self._resolved, self._fail)
        except OSError as exc:  # EMFILE importing the idna codec, say: fail, do not raise
            self._fail(exc)
        else:
            self._resolved(infos)

    # A name may resolve to several addresses ("localhost": ::1, then
    # 127.0.0.1), and a server may listen on only one of them. Each is tried in
    # the resolver's order, one at a time, until one connects; the attempt
    # fails with the last one's error. The timeout covers them all.

    def _resolved(self, infos: list[Any]) -> None:
        if self._state != _CONNECTING:
            return  # cancelled or timed out meanwhile
        self._addresses = [(family, type_, proto, sockaddr) for family, type_, proto, _, sockaddr in infos]
        self._addresses.reverse()
        self._try_next(OSError(f"{self.host!r} resolved to no address"))

    def _try_next(self, error: BaseException) -> None:
        """Start connecting to the next address; with none left, fail with ``error`` (the last)."""
        while self._addresses:
            family, type_, proto, sockaddr = self._addresses.pop()
            try:
                sock = socket.socket(family, type_, proto)
            except OSError as exc:  # EMFILE, or a family this host lacks
                error = exc
                continue
            try:
                sock.setblocking(False)
                err = sock.connect_ex(sockaddr)
                if err not in _CONNECT_PENDING:
                    raise OSError(err, os.strerror(err))  # ConnectionRefusedError, say
                self._reactor.add_writer(sock.fileno(), self._on_writable)
            except (OSError, DescriptorLimitError) as exc:
                sock.close()
                error = exc
                continue
            self._sock = sock
            return
        self._fail(error)

    def _address_failed(self, sock: socket.socket, error: BaseException) -> None:
        self._sock = None
        self._reactor.remove_writer(sock.fileno())
        sock.close()
        self._try_next(error)

    def _on_writable(self) -> None:
        sock = self._sock
        assert sock is not None
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self._address_failed(sock, OSError(err, os.strerror(err)))
            return
        try:
            peer = sock.getpeername()
        except OSError as exc:
            if not _writable_now(sock):
                # A stale event, meant for this descriptor's previous owner
                # (closed and reused within one pass): still connecting.
                return
            # Writable yet not connected: the attempt failed, its error already
            # consumed. Returning would leave the writer registered, and a
            # level-triggered poller would report it writable on every pass.
            self._address_failed(sock, exc)
            return
        self._reactor.remove_writer(sock.fileno())
        self._cleanup(close=False)
        self._connected(sock, _peer_of(sock, peer))

    def _connected(self, sock: socket.socket, peer: Address) -> None:
        try:
            _no_delay(sock)
            protocol = self.factory.build_protocol(peer)
        except PLUGIN_ERRORS as exc:
            reraise_user_interrupt(exc)
            log.exception("%s.build_protocol raised", type(self.factory).__name__)
            sock.close()
            self._report_failed(exc)
            return
        if protocol is None:
            sock.close()
            self._report_failed(ConnectionAbortedError("build_protocol returned None"))
            return
        self._state = _CONNECTED
        self.transport = Connection(self._reactor, sock, protocol, peer, connector=self)
        self.transport._start()

    def _timed_out(self) -> None:
        self._timer = None
        self._fail(
            TimeoutError(f"connecting to {_where(self.host, self.port)} timed out after {self.timeout}s")
        )

    def _fail(self, reason: BaseException) -> None:
        if self._state != _CONNECTING:
            return
        self._cleanup(close=True)
        self._reactor.call_soon(self._report_failed, reason)

    def _cleanup(self, close: bool) -> None:
        self._addresses = []
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        sock, self._sock = self._sock, None
        if sock is not None and close:
            self._reactor.remove_writer(sock.fileno())
            sock.close()
        self._state = _DISCONNECTED
        self._reactor._connectors.discard(self)

    def _report_failed(self, reason: BaseException) -> None:
        self._state = _DISCONNECTED
        call_plugin(log, self.factory, "client_connection_failed", self, reason)
        self.factory.do_stop()

    def _connection_lost(self, reason: BaseException | None) -> None:
        self._state = _DISCONNECTED
        self.transport = None
        call_plugin(log, self.factory, "client_connection_lost", self, reason)
        self.factory.do_stop()

    def stop_connecting(self) -> None:
        """Cancel the attempt in progress; the factory hears ``ConnectionAbortedError``."""
        self._fail(ConnectionAbortedError(f"connecting to {_where(self.host, self.port)} was cancelled"))

    def disconnect(self) -> None:
        """Cancel the attempt, or close the connection once made."""
        if self._state == _CONNECTING:
            self.stop_connecting()
        elif self.transport is not None:
            self.transport.lose_connection()
