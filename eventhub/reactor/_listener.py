"""The listening TCP port (``Reactor.listen_tcp``): accepting, shedding load when out of descriptors.

Each accepted socket becomes a ``tcp.Connection``; ``unix.UNIXListener`` is
this listener on a path.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
from typing import TYPE_CHECKING, Any

from eventhub._logging import RateLimitedLog
from eventhub.errors import PLUGIN_ERRORS, ServiceError, UsageError, reraise_user_interrupt
from eventhub.protocol import Address, Factory, Protocol
from eventhub.reactor._pollers import DescriptorLimitError
from eventhub.reactor._tcp import (
    _LATER,
    Connection,
    _no_delay,
    _peer_of,
    _reason,
    _resolve_passive,
    _where,
    check_port,
    listening_socket,
)

if TYPE_CHECKING:
    from eventhub.reactor._loop import Reactor
    from eventhub.reactor._sharing import SharedSockets

__all__ = ["Listener", "open_listening_socket"]

log = logging.getLogger("eventhub.reactor")

# Connections accepted per readable event of a listener: bounded so one busy
# port cannot monopolize a pass of the loop.
ACCEPT_BURST = 64
# Without a spare descriptor, accepting pauses this long after EMFILE.
ACCEPT_RETRY_DELAY = 0.5

_OUT_OF_DESCRIPTORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
# The peer gave up between SYN and accept(): nothing to do, accept the next one.
_ACCEPT_TRANSIENT = frozenset({errno.ECONNABORTED, errno.EPROTO, errno.EPERM, errno.EINTR, errno.ECONNRESET})


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
        shared, interface, port = self._reactor.shared_sockets, self._interface, self._port
        sock, family = open_listening_socket(shared, interface, port, self._backlog, self._socket_buffer)
        try:
            self._reactor.add_reader(sock.fileno(), self._on_readable)
        except (OSError, DescriptorLimitError) as exc:
            sock.close()
            where = _where(self._interface or "0.0.0.0", self._port)
            raise ServiceError(f"cannot listen on {where}: {_reason(exc)}") from None
        self._listening(sock, Address.from_sockaddr(sock.getsockname(), family))

    def _listening(self, sock: socket.socket, host: Address) -> None:
        self._sock, self._fd = sock, sock.fileno()
        self._host = host
        self._spare = _open_spare()
        self._reactor._listeners.add(self)
        self._factory.do_start()
        log.debug("listening on %s (%s)", host, type(self._factory).__name__)

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


def open_listening_socket(
    shared: SharedSockets | None, interface: str, port: int, backlog: int, socket_buffer: int
) -> tuple[socket.socket, socket.AddressFamily]:
    """A non-blocking socket listening on ``interface:port``, and its family; ``ServiceError`` if not.

    ``shared``: in a worker of ``eventhub run --workers N``, where the
    supervisor's sockets come from. Every TCP listener, on every backend,
    opens its socket here.
    """
    where = _where(interface or "0.0.0.0", port)
    try:
        family, sockaddr = _resolve_passive(interface, port)
    except (OSError, UnicodeError) as exc:
        raise ServiceError(f"cannot listen on {where}: {_reason(exc)}") from None
    try:
        if shared is None:
            sock = listening_socket(family, sockaddr, backlog, socket_buffer=socket_buffer)
        else:
            sock = shared.listening_socket(family, sockaddr, backlog, socket_buffer)
        sock.setblocking(False)
    except OSError as exc:
        raise ServiceError(f"cannot listen on {where}: {_reason(exc)}") from None
    return sock, family


def _not_ready() -> None:
    """Placeholder reader between accept() and the Connection taking over."""


def _addr(addr: Any) -> str:
    try:
        return str(Address.from_sockaddr(addr))  # ::ffff:a.b.c.d shown as a.b.c.d, as everywhere
    except (TypeError, IndexError):
        return repr(addr)
