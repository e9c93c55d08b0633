"""Protocols, factories and the transport interface (Twisted's shapes, asyncio's rules).

A *protocol* is the user's code for one connection; a *transport* is the
reactor's side of it (``eventhub.reactor._tcp.Connection``), seen through the
``Transport`` interface below; a *factory* builds one protocol per connection.

    class Echo(Protocol):
        def data_received(self, data: bytes) -> None:
            self.transport.write(data)

    factory = ServerFactory()
    factory.protocol = Echo
    reactor.listen_tcp(8000, factory)

Every callback runs on the reactor's thread. An exception raised by any
protocol callback closes that connection only: it becomes the reason given to
``connection_lost`` and is logged once (logger ``eventhub.reactor``).
"""

from __future__ import annotations

import socket
import struct
from typing import TYPE_CHECKING, Any, runtime_checkable
from typing import Protocol as _Interface

from eventhub._frozen import Frozen

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

__all__ = [
    "Address",
    "ClientFactory",
    "Connector",
    "DatagramProtocol",
    "DatagramTransport",
    "Factory",
    "Producer",
    "Protocol",
    "ServerFactory",
    "Transport",
    "UNIXAddress",
]


class Address(Frozen):
    """One end of a TCP connection: ``host`` (an IP literal), ``port``, ``family``.

    ``family`` is ``socket.AF_INET`` or ``socket.AF_INET6``. ``str()`` gives
    ``host:port`` (``[host]:port`` for IPv6), the form every log line uses.
    """

    __slots__ = ("family", "host", "port")
    __match_args__ = ("host", "port", "family")

    host: str
    port: int
    family: int

    def __init__(self, host: str, port: int, family: int = socket.AF_INET) -> None:
        _set(self, "host", host)  # once per accepted connection: no keyword dict
        _set(self, "port", port)
        _set(self, "family", family)

    @classmethod
    def from_sockaddr(cls, sockaddr: Any, family: int | None = None) -> Address:
        """Build from what ``socket.accept()``/``getpeername()`` return.

        An IPv4-mapped IPv6 address (``::ffff:192.0.2.7``, how a dual-stack
        socket listening on ``::`` sees an IPv4 peer) becomes the IPv4 address
        it stands for: every allow/deny list, log line and per-address count
        then sees one address per peer, whatever socket it came through.
        """
        host, port = sockaddr[0], sockaddr[1]
        if family is None:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
        if host[:7].lower() == "::ffff:":  # cheap test first: this runs once per connection
            mapped = _ipv4_mapped(host)
            if mapped is not None:
                return cls(mapped, port, socket.AF_INET)
        return cls(host, port, family)

    def __str__(self) -> str:
        if self.family == socket.AF_INET6:
            return f"[{self.host}]:{self.port}"
        return f"{self.host}:{self.port}"


class UNIXAddress(Address):
    """One end of a UNIX socket connection: ``path`` (``host`` too), and the peer's credentials.

    ``port`` is 0 and ``family`` ``socket.AF_UNIX``. A path starting with NUL
    is a Linux abstract name, shown as ``@name``. ``pid``, ``uid`` and ``gid``
    are the peer process's, from ``SO_PEERCRED`` (``None`` where the system
    does not say, and for the local end).
    """

    __slots__ = ("gid", "pid", "uid")
    __match_args__ = ("host", "port", "family", "pid", "uid", "gid")

    pid: int | None
    uid: int | None
    gid: int | None

    def __init__(
        self,
        host: str,
        port: int = 0,
        family: int = getattr(socket, "AF_UNIX", 1),
        pid: int | None = None,
        uid: int | None = None,
        gid: int | None = None,
    ) -> None:
        super().__init__(host, port, family)
        self._init(pid=pid, uid=uid, gid=gid)

    @property
    def path(self) -> str:
        return self.host

    @classmethod
    def of_peer(cls, sock: socket.socket) -> UNIXAddress:
        """The peer of a connected UNIX socket, with its credentials where the system gives them."""
        try:
            path = _unix_path(sock.getpeername())
        except OSError:
            path = ""
        peercred = getattr(socket, "SO_PEERCRED", None)
        if peercred is None:
            return cls(path)
        try:
            pid, uid, gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, peercred, 12))
        except OSError:
            return cls(path)
        return cls(path, pid=pid, uid=uid, gid=gid)

    def __str__(self) -> str:
        if self.host.startswith("\0"):
            return "@" + self.host[1:]
        return self.host or "<unnamed>"


_set = object.__setattr__


def _unix_path(sockaddr: Any) -> str:
    return sockaddr.decode("utf-8", "surrogateescape") if isinstance(sockaddr, bytes) else str(sockaddr)


def address_of(sock: socket.socket, sockaddr: Any) -> Address:
    """The ``Address`` (or ``UNIXAddress``, for a UNIX socket) of ``sockaddr`` on ``sock``."""
    if sock.family == getattr(socket, "AF_UNIX", None):
        return UNIXAddress(_unix_path(sockaddr))
    return Address.from_sockaddr(sockaddr, sock.family)


def _ipv4_mapped(host: str) -> str | None:
    """``"192.0.2.7"`` for ``"::ffff:192.0.2.7"`` (or ``"::ffff:c000:207"``); None if not mapped."""
    import ipaddress  # only for a mapped peer: ~1 ms of every start-up otherwise

    try:
        mapped = ipaddress.IPv6Address(host).ipv4_mapped
    except ValueError:
        return None
    return None if mapped is None else str(mapped)


@runtime_checkable
class Producer(_Interface):
    """A source of data written to a transport (Twisted's IPushProducer/IPullProducer).

    A *streaming* (push) producer writes whenever it likes; the transport calls
    ``pause_producing`` when its write buffer passes the high-water mark and
    ``resume_producing`` when it drains below the low one. A non-streaming
    (pull) producer writes only when asked: ``resume_producing`` is called each
    time the write buffer empties. ``stop_producing`` is called when the
    connection closes while the producer is registered.
    """

    def pause_producing(self) -> None: ...

    def resume_producing(self) -> None: ...

    def stop_producing(self) -> None: ...


@runtime_checkable
class Transport(_Interface):
    """What a protocol may do with its connection (implemented by the reactor's Connection)."""

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Send ``data``, buffering what the kernel does not take; dropped after close."""

    def write_sequence(self, data: Iterable[bytes | bytearray | memoryview]) -> None:
        """Send each item, in order, as one write."""

    def write_eof(self) -> None:
        """Flush the buffer, then shut down the sending half (the peer reads EOF)."""

    def lose_connection(self) -> None:
        """Stop reading, flush the write buffer, then close; ``connection_lost(None)`` follows.

        The close is graceful: EOF is sent, and input is read and discarded
        until the peer's EOF (a few seconds at most), so that a peer still
        sending cannot provoke a reset that would discard the flushed tail.
        """

    def abort_connection(self) -> None:
        """Close at once, discarding buffered data; the peer gets a reset (RST)."""

    def is_closing(self) -> bool:
        """True once the connection is closing or closed."""

    def get_peer(self) -> Address:
        """The remote address."""

    def get_host(self) -> Address:
        """The local address."""

    def get_extra(self, name: str, default: Any = None) -> Any:
        """Details of the connection by name (asyncio's ``get_extra_info``), else ``default``.

        Every connection: ``socket``, ``peername``, ``sockname``. TLS adds
        ``peercert``, ``peercert_binary``, ``cipher``, ``alpn_protocol``,
        ``version``, ``server_hostname``, ``ssl_object``.
        """

    def pause_reading(self) -> None:
        """Stop calling ``data_received`` until ``resume_reading``."""

    def call_soon(self, fn: Callable[..., object], /, *args: Any) -> None:
        """Call ``fn(*args)`` on the connection's loop, after what is queued already.

        For a protocol that bounds its work per callback and goes on later,
        letting the loop serve the other connections in between.
        """

    def resume_reading(self) -> None:
        """Undo ``pause_reading``."""

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        """Set the water marks (default high 64 KiB, low high // 4)."""

    def get_write_buffer_size(self) -> int:
        """Bytes written but not yet accepted by the kernel."""

    def register_producer(self, producer: Producer, streaming: bool) -> None:
        """Attach a producer (see ``Producer``); one at a time."""

    def unregister_producer(self) -> None:
        """Detach the producer."""


class Protocol:
    """The user's code for one connection. Subclass it and override what you need.

    Callback order (asyncio's notation)::

        connection_made -> data_received* -> eof_received? -> connection_lost

    ``connection_made`` is called exactly once first and ``connection_lost``
    exactly once last (also when ``connection_made`` raised). ``data_received``
    may be called any number of times, with chunks of any size (a message may
    arrive split, or several at once: frame it, see ``eventhub.protocols``).
    ``eof_received`` is called at most once, when the peer shut down its
    sending half; return a true value to keep the connection open for writing
    (half-close), anything else closes it after flushing. ``pause_writing`` /
    ``resume_writing`` may come at any time between the first and last call,
    always in pairs, when the write buffer crosses its water marks.

    ``reason`` in ``connection_lost`` is ``None`` for a clean close (either
    side closed normally), else the exception that ended the connection (a
    ``ConnectionResetError``, or the exception one of these callbacks raised).
    """

    factory: Any = None
    transport: Transport | None = None

    def make_connection(self, transport: Transport) -> None:
        """Set ``self.transport``, then call ``connection_made`` (what every transport calls).

        As Twisted's ``makeConnection``: an override of ``connection_made``
        that forgets ``super()`` still finds ``self.transport`` set. The
        reactor's connections, the network-hook observer and the test fakes
        all start a protocol through here.
        """
        self.transport = transport
        self.connection_made(transport)

    def connection_made(self, transport: Transport) -> None:
        """The connection is up. ``self.transport`` is already set when this is called."""
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        """Bytes arrived (never empty)."""

    def eof_received(self) -> bool | None:
        """The peer will send no more. Return true to keep the connection half-open."""
        return None

    def connection_lost(self, reason: BaseException | None) -> None:
        """The connection is closed; ``reason`` is ``None`` when it closed cleanly."""

    def pause_writing(self) -> None:
        """The write buffer went above the high-water mark: stop writing for now."""

    def resume_writing(self) -> None:
        """The write buffer drained below the low-water mark: writing may resume."""


class Connector(_Interface):
    """What ``Reactor.connect_tcp`` returns, as seen by client factories."""

    def stop_connecting(self) -> None: ...

    def disconnect(self) -> None: ...

    def connect(self) -> None: ...

    def get_destination(self) -> Address: ...


class Factory:
    """Builds one protocol per connection (Twisted style).

    Set ``protocol`` (on the class or the instance) to a ``Protocol`` subclass::

        factory = ServerFactory()
        factory.protocol = Echo

    Override ``build_protocol`` for anything fancier; returning ``None`` from
    it closes the new connection at once. ``start_factory`` runs when the first
    listener or connector starts using this factory, ``stop_factory`` when the
    last one stops.
    """

    protocol: type[Protocol] | None = None
    _uses: int = 0

    def build_protocol(self, addr: Address) -> Protocol | None:
        """Build the protocol for a connection with ``addr`` (the peer)."""
        cls = self.protocol
        if cls is None:
            name = type(self).__name__
            raise TypeError(f"{name}.protocol is not set; set it to a Protocol subclass")
        proto = cls()
        proto.factory = self
        return proto

    def start_factory(self) -> None:
        """Called before the first listener/connector using this factory starts."""

    def stop_factory(self) -> None:
        """Called after the last listener/connector using this factory stopped."""

    def do_start(self) -> None:
        """Count one more user; call ``start_factory`` for the first. (Used by the reactor.)"""
        if not self._uses:
            self.start_factory()
        self._uses += 1

    def do_stop(self) -> None:
        """Count one user fewer; call ``stop_factory`` after the last. (Used by the reactor.)"""
        if self._uses <= 0:
            return
        self._uses -= 1
        if not self._uses:
            self.stop_factory()


class ServerFactory(Factory):
    """A factory for listening ports (``Reactor.listen_tcp``)."""


class ClientFactory(Factory):
    """A factory for outgoing connections (``Reactor.connect_tcp``)."""

    def start_connecting(self, connector: Connector) -> None:
        """A connection attempt is starting."""

    def client_connection_failed(self, connector: Connector, reason: BaseException) -> None:
        """The attempt failed: refused, timed out, unresolvable (``reason`` says which)."""

    def client_connection_lost(self, connector: Connector, reason: BaseException | None) -> None:
        """An established connection ended (after its protocol's ``connection_lost``)."""


@runtime_checkable
class DatagramTransport(_Interface):
    """What a ``DatagramProtocol`` may do with its port (``eventhub.reactor._udp.UDPPort``)."""

    def write(self, data: bytes | bytearray | memoryview, addr: Any = None) -> None:
        """Send one datagram to ``addr`` (or to the connected address); dropped if the kernel has no room."""

    def connect(self, addr: Any) -> None:
        """Exchange datagrams with ``addr`` only (an IP literal and port)."""

    def join_group(self, group: str, interface: str = "") -> None:
        """Join a multicast group."""

    def leave_group(self, group: str, interface: str = "") -> None:
        """Leave a multicast group."""

    def set_ttl(self, ttl: int) -> None:
        """Hops a multicast datagram sent from here may travel."""

    def get_host(self) -> Address:
        """The local address."""

    def stop_listening(self) -> None:
        """Close the port; ``connection_lost(None)`` follows."""

    def is_closing(self) -> bool:
        """True once closed."""


class DatagramProtocol:
    """The user's code for one UDP port. Subclass it and override what you need.

    Callback order::

        connection_made -> (datagram_received | error_received)* -> connection_lost

    ``connection_made`` comes when the port is bound (``self.transport`` is
    set), ``connection_lost(None)`` after it is closed. ``addr`` is what
    ``recvfrom`` gives: ``(host, port)`` for IPv4, ``(host, port, flow, scope)``
    for IPv6; pass it back to ``transport.write(data, addr)`` to answer.
    ``error_received`` gets an ``OSError`` the port met (an ICMP
    port-unreachable on a connected port arrives as ``ConnectionRefusedError``);
    the port keeps serving. An exception from these callbacks is logged, and the
    port keeps serving too: one bad datagram must not stop the others.
    """

    transport: DatagramTransport | None = None

    def connection_made(self, transport: DatagramTransport) -> None:
        """The port is bound. ``self.transport`` is already set."""
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        """One datagram (possibly empty) arrived from ``addr``."""

    def error_received(self, exc: OSError) -> None:
        """A send or receive failed with ``exc``; the port is still open."""

    def connection_lost(self, reason: BaseException | None) -> None:
        """The port is closed."""
