"""UDP: one datagram socket, its ``DatagramProtocol``, and the transport between them.

    class Echo(DatagramProtocol):
        def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
            self.transport.write(data, addr)

    port = reactor.listen_udp(9000, Echo())

Datagrams are not a stream: nothing is buffered. ``write`` hands one datagram
to the kernel or drops it. A full socket buffer (``EAGAIN``) or a kernel out
of buffers (``ENOBUFS``) drops that datagram and counts it (``dropped``), as
a router would; the sender's protocol decides whether to retry. Any other
send error (``EMSGSIZE``, ``ECONNREFUSED`` from an ICMP port-unreachable on a
connected socket...) reaches ``error_received`` and the port keeps serving.
Errors met while reading reach ``error_received`` the same way: an ICMP
error never closes the port, and never escapes into the loop.

Reading is bounded per readable event (``READ_BURST`` datagrams), each read
into the reactor's shared buffer and copied out at its size, so a flood on one
port cannot starve the others nor allocate 64 KiB per datagram.
"""

from __future__ import annotations

import errno
import logging
import socket
import struct
from typing import TYPE_CHECKING, Any

from eventhub.errors import PLUGIN_ERRORS, ServiceError, UsageError, call_plugin, reraise_user_interrupt
from eventhub.protocol import Address, DatagramProtocol
from eventhub.reactor._pollers import DescriptorLimitError
from eventhub.reactor._tcp import _reason, _resolve_passive, _where, check_port

if TYPE_CHECKING:
    from eventhub.reactor._aio import AsyncioReactor
    from eventhub.reactor._loop import Reactor

__all__ = ["READ_BURST", "UDPPort"]

log = logging.getLogger("eventhub.reactor")

#: Datagrams read per readable event, at most.
READ_BURST = 64
_DROP = frozenset({errno.EAGAIN, errno.EWOULDBLOCK, errno.ENOBUFS})


class UDPPort:
    """A bound datagram socket serving one ``DatagramProtocol`` (its ``transport``)."""

    __slots__ = ("_connected", "_fd", "_host", "_protocol", "_reactor", "_sock", "dropped")

    def __init__(
        self, reactor: Reactor | AsyncioReactor, protocol: DatagramProtocol, sock: socket.socket
    ) -> None:
        """Serve ``protocol`` on ``sock`` (bound, any datagram family); ``listen_udp`` makes the socket."""
        self._reactor = reactor
        self._protocol = protocol
        self._sock: socket.socket | None = sock
        self._fd = sock.fileno()
        self._host: Address | None = None
        try:  # an adopted socket may be connected already (a socketpair, say)
            self._connected: Any = sock.getpeername()
        except OSError:
            self._connected = None
        #: Datagrams dropped because the kernel had no room for them (EAGAIN, ENOBUFS).
        self.dropped = 0

    def __repr__(self) -> str:
        state = "open" if self._sock is not None else "closed"
        return f"<UDPPort {self._host} {state} {type(self._protocol).__name__}>"

    def start(self) -> None:
        """Start reading and call the protocol's ``connection_made`` (``listen_udp`` does this)."""
        sock = self._sock
        assert sock is not None
        sock.setblocking(False)
        self._reactor.add_reader(self._fd, self._on_readable)
        self._host = _address(sock, sock.getsockname())
        self._serving()

    def _serving(self) -> None:
        """Reading has started: count the port as a listener and tell its protocol."""
        self._reactor._listeners.add(self)
        try:
            self._protocol.transport = self
            self._protocol.connection_made(self)
        except PLUGIN_ERRORS as failure:
            reraise_user_interrupt(failure)
            log.exception("%s.connection_made raised", type(self._protocol).__name__)

    # -- reading --------------------------------------------------------------

    def _on_readable(self) -> None:
        view = self._reactor._recv_view
        protocol = self._protocol
        for _ in range(READ_BURST):
            sock = self._sock
            if sock is None:
                return  # a callback closed the port
            try:
                n, addr = sock.recvfrom_into(view)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # ECONNREFUSED (ICMP) on a connected socket, say
                self._error(exc)
                continue
            try:
                protocol.datagram_received(view[:n].tobytes(), addr)
            except PLUGIN_ERRORS as failure:
                self._datagram_failed(failure, addr)

    def _datagram_failed(self, failure: BaseException, addr: Any) -> None:
        reraise_user_interrupt(failure)
        log.exception(
            "%s.datagram_received raised (datagram from %s dropped; still serving)",
            type(self._protocol).__name__,
            _shown(addr),
        )

    def _error(self, exc: OSError) -> None:
        call_plugin(log, self._protocol, "error_received", exc)

    # -- writing --------------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview, addr: Any = None) -> None:
        """Send one datagram to ``addr`` (``(host, port)`` or an ``Address``; none once connected)."""
        sock = self._sock
        if sock is None:
            return
        try:
            if addr is None:
                if self._connected is None:
                    raise UsageError("write() on an unconnected UDP port needs addr")
                sock.send(data)
            else:
                if isinstance(addr, Address):
                    addr = (addr.host, addr.port)
                sock.sendto(data, addr)
        except OSError as exc:
            if exc.errno in _DROP:
                self.dropped += 1
            else:
                self._error(exc)

    def connect(self, addr: Any) -> None:
        """Talk to ``addr`` only: ``write(data)`` goes there, datagrams from elsewhere are not read.

        Resolved at once: pass an IP literal. ICMP errors for ``addr`` then
        reach ``error_received`` (``ConnectionRefusedError``: nobody listens there).
        """
        sock = self._require_open()
        if isinstance(addr, Address):
            addr = (addr.host, addr.port)
        sock.connect(addr)
        self._connected = addr

    def join_group(self, group: str, interface: str = "") -> None:
        """Join the multicast ``group`` on ``interface`` (an address of it; "" lets the system pick)."""
        self._membership(group, interface, join=True)

    def leave_group(self, group: str, interface: str = "") -> None:
        """Leave the multicast ``group`` joined with ``join_group``."""
        self._membership(group, interface, join=False)

    def _membership(self, group: str, interface: str, join: bool) -> None:
        sock = self._require_open()
        if sock.family == socket.AF_INET6:
            index = socket.if_nametoindex(interface) if interface else 0
            option = socket.IPV6_JOIN_GROUP if join else socket.IPV6_LEAVE_GROUP
            request = socket.inet_pton(socket.AF_INET6, group) + struct.pack("@I", index)
            sock.setsockopt(socket.IPPROTO_IPV6, option, request)
            return
        option = socket.IP_ADD_MEMBERSHIP if join else socket.IP_DROP_MEMBERSHIP
        request = socket.inet_aton(group) + socket.inet_aton(interface or "0.0.0.0")
        sock.setsockopt(socket.IPPROTO_IP, option, request)

    def set_ttl(self, ttl: int) -> None:
        """Hops a multicast datagram sent from here may travel (1: this network only)."""
        sock = self._require_open()
        if sock.family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, ttl)
        else:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, ttl)

    def get_ttl(self) -> int:
        sock = self._require_open()
        if sock.family == socket.AF_INET6:
            return sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS)
        return sock.getsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL)

    def set_loopback(self, enabled: bool) -> None:
        """Whether multicast datagrams sent from here also reach listeners on this host."""
        sock = self._require_open()
        if sock.family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, int(enabled))
        else:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, int(enabled))

    def set_outgoing_interface(self, interface: str) -> None:
        """The interface (by its IPv4 address) multicast datagrams leave from."""
        sock = self._require_open()
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(interface))

    def _require_open(self) -> socket.socket:
        if self._sock is None:
            raise UsageError(f"{self!r} is closed")
        return self._sock

    # -- the listener side ----------------------------------------------------

    def get_host(self) -> Address:
        """The address bound (the real port when 0 was asked)."""
        if self._host is None:
            raise UsageError(f"{self!r} is not listening")
        return self._host

    def is_closing(self) -> bool:
        return self._sock is None

    def stop_listening(self) -> None:
        """Close the socket; ``connection_lost(None)`` follows on the next pass. Idempotent."""
        sock, self._sock = self._sock, None
        if sock is None:
            return
        self._stop_reading(sock)
        self._reactor._listeners.discard(self)
        self._reactor.call_soon(self._lost)

    def _stop_reading(self, sock: socket.socket) -> None:
        """Stop reading ``sock`` and close it."""
        self._reactor.remove_reader(self._fd)
        sock.close()

    lose_connection = stop_listening

    def _lost(self) -> None:
        call_plugin(log, self._protocol, "connection_lost", None)


def listen_udp(
    reactor: Reactor | AsyncioReactor,
    port: int,
    protocol: DatagramProtocol,
    interface: str,
    reuse_address: bool,
    port_type: type[UDPPort] = UDPPort,
) -> UDPPort:
    """Bind ``interface:port``, serve ``protocol`` there on a ``port_type``; ``ServiceError`` if it cannot."""
    check_port(port, listening=True)
    where = _where(interface or "0.0.0.0", port)
    try:
        family, sockaddr = _resolve_passive(interface, port)
    except (OSError, UnicodeError) as exc:
        raise ServiceError(f"cannot listen on udp {where}: {_reason(exc)}") from None
    shared = reactor.shared_sockets
    if shared is not None and not reuse_address:  # a worker: the supervisor's socket for this slot
        try:
            sock = shared.listening_socket(family, sockaddr, 0, 0, "udp")
        except OSError as exc:
            raise ServiceError(f"cannot listen on udp {where}: {_reason(exc)}") from None
    else:
        sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        if reuse_address:  # several listeners of one multicast group on one host
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if shared is None or reuse_address:
            sock.bind(sockaddr)
        udp = port_type(reactor, protocol, sock)
        udp.start()
    except (OSError, DescriptorLimitError) as exc:
        sock.close()
        raise ServiceError(f"cannot listen on udp {where}: {_reason(exc)}") from None
    return udp


def _address(sock: socket.socket, sockaddr: Any) -> Address:
    if isinstance(sockaddr, tuple):
        return Address.from_sockaddr(sockaddr, sock.family)
    return Address(str(sockaddr), 0, sock.family)


def _shown(addr: Any) -> str:
    if isinstance(addr, tuple) and len(addr) >= 2:
        return _where(str(addr[0]), int(addr[1]))
    return repr(addr)
