"""An outgoing TCP connection attempt (``Reactor.connect_tcp``): resolving, trying each address, reconnecting.

Once connected, the socket becomes a ``tcp.Connection``; ``unix.UNIXConnector``
is this connector on a path.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import socket
from typing import TYPE_CHECKING, Any

from eventhub.errors import PLUGIN_ERRORS, UsageError, call_plugin, reraise_user_interrupt
from eventhub.protocol import Address, ClientFactory, Transport
from eventhub.reactor._pollers import DescriptorLimitError
from eventhub.reactor._tcp import Connection, _no_delay, _peer_of, _where, check_port

if TYPE_CHECKING:
    from eventhub.reactor._aio import AsyncioReactor
    from eventhub.reactor._loop import Reactor
    from eventhub.reactor._timers import TimerHandle

__all__ = ["Connector", "ConnectorBase"]

log = logging.getLogger("eventhub.reactor")

_CONNECT_PENDING = frozenset({0, errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EALREADY})
_DISCONNECTED, _CONNECTING, _CONNECTED = 0, 1, 2


def _writable_now(sock: socket.socket) -> bool:
    """Ask the kernel, for this one socket, whether it is writable (or in error) right now."""
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(sock, select.POLLOUT)
        return bool(poller.poll(0))
    _, writable, failed = select.select([], [sock], [sock], 0)  # Windows: a failed connect is in "failed"
    return bool(writable or failed)


class ConnectorBase:
    """What every connector does the same, whatever makes the attempt (this poller's, the loop's).

    Twisted-style: failures (refused, timed out, unresolvable, cancelled) reach
    ``factory.client_connection_failed(connector, reason)``; once connected, the
    end of the connection reaches ``factory.client_connection_lost``. Calling
    ``connect()`` again from either starts a new attempt (reconnecting). A
    subclass starts the attempt (``_start_attempt``) and releases what it holds
    when the attempt ends (``_end_attempt``).
    """

    __slots__ = ("_reactor", "_state", "factory", "host", "port", "timeout", "transport")

    _reactor: Reactor | AsyncioReactor
    transport: Transport | None

    def __init__(
        self,
        reactor: Reactor | AsyncioReactor,
        host: str,
        port: int,
        factory: ClientFactory,
        timeout: float | None,
    ) -> None:
        self._reactor = reactor
        self.host = host
        self.port = check_port(port, listening=False)
        self.factory = factory
        self.timeout = timeout
        self._state = _DISCONNECTED
        self.transport = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {_where(self.host, self.port)} {self._state_name()}>"

    def _state_name(self) -> str:
        return ("disconnected", "connecting", "connected")[self._state]

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
        self._start_attempt()

    def _start_attempt(self) -> None:
        raise NotImplementedError

    def _end_attempt(self, close: bool) -> None:
        """The attempt is over: connected (``close`` false) or failed (what it held released)."""
        self._state = _DISCONNECTED
        self._reactor._connectors.discard(self)

    def _timeout_error(self) -> TimeoutError:
        return TimeoutError(f"connecting to {_where(self.host, self.port)} timed out after {self.timeout}s")

    def _fail(self, reason: BaseException) -> None:
        if self._state != _CONNECTING:
            return
        self._end_attempt(close=True)
        self._reactor.call_soon(self._report_failed, reason)

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


class Connector(ConnectorBase):
    """An outgoing TCP connection attempt (``Reactor.connect_tcp``) through the poller."""

    __slots__ = ("_addresses", "_sock", "_timer")

    _reactor: Reactor
    transport: Connection | None

    def __init__(
        self, reactor: Reactor, host: str, port: int, factory: ClientFactory, timeout: float | None
    ) -> None:
        super().__init__(reactor, host, port, factory, timeout)
        self._sock: socket.socket | None = None
        self._timer: TimerHandle | None = None
        # The resolved addresses not tried yet, the next one last (popped).
        self._addresses: list[tuple[int, int, int, Any]] = []

    def _start_attempt(self) -> None:
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
        self._end_attempt(close=False)
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
        self._fail(self._timeout_error())

    def _end_attempt(self, close: bool) -> None:
        self._addresses = []
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        sock, self._sock = self._sock, None
        if sock is not None and close:
            self._reactor.remove_writer(sock.fileno())
            sock.close()
        super()._end_attempt(close)
