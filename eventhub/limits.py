"""Per-peer limits network services share: connections per address, idle connections.

A stranger must not be able to lock everyone else out of a service for free
(100 idle connections fill a chat room; 400 exhaust a 256-descriptor limit).
``AddressLimit`` counts a service's open connections per peer address and
refuses past ``limit``. Loopback peers are exempt by default, so that local
load tests and benchmarks (5,000 connections from 127.0.0.1) keep working;
services make the exemption a setting.

``IdleSweep`` closes connections that did nothing for ``timeout`` seconds,
without a timer or a clock read per message: a protocol stores 0 in its
``idle`` counter when it receives, and a sweep every ``timeout / IDLE_TICKS``
seconds increments every counter and hands those past ``IDLE_TICKS`` to
``on_idle``. Receiving is not the only activity: a client that reads slowly
but steadily is busy too, so the sweep also asks each connection for its
``progress()``, a number that grows when the peer accepted bytes from our send
buffer, and counts any growth as activity. A connection is thus closed after
between ``timeout`` and ``timeout * (1 + 1 / IDLE_TICKS)`` seconds without
receiving, and up to one more tick after the peer's last read (the sweep sees
progress only when it next looks).
"""

from __future__ import annotations

import socket
from collections import Counter
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

# Re-exported: a service's log lines a client can trigger at will are bounded too.
from eventhub._logging import RateLimitedLog

if TYPE_CHECKING:
    from eventhub.protocol import Address
    from eventhub.reactor import ReactorAPI, TimerAPI

__all__ = ["IDLE_TICKS", "AddressLimit", "IdleSweep", "IdleWatched", "RateLimitedLog", "is_loopback"]

IDLE_TICKS = 4


def is_loopback(host: str) -> bool:
    """``127.0.0.0/8`` or ``::1`` (the reactor gives IPv4-mapped addresses as IPv4 already)."""
    return host.startswith("127.") or host == "::1"


_AF_UNIX: int = getattr(socket, "AF_UNIX", -1)


class AddressLimit:
    """At most ``limit`` open connections per peer address (0: no limit).

    ``admit(peer)`` when a connection arrives (False: refuse it), ``release(peer)``
    when an admitted one ends. Exempt peers are neither counted nor refused.
    """

    __slots__ = ("_open", "exempt_loopback", "limit", "refused")

    def __init__(self, limit: int, *, exempt_loopback: bool = True) -> None:
        self.limit = limit
        self.exempt_loopback = exempt_loopback
        self.refused = 0
        self._open: Counter[str] = Counter()

    def _counts(self, peer: Address) -> bool:
        # A UNIX socket's peers are on this host too (and all share one "address").
        local = is_loopback(peer.host) or peer.family == _AF_UNIX
        return bool(self.limit) and not (self.exempt_loopback and local)

    def admit(self, peer: Address) -> bool:
        host = peer.host
        if not self._counts(peer):
            return True
        if self._open[host] >= self.limit:
            self.refused += 1
            return False
        self._open[host] += 1
        return True

    def release(self, peer: Address) -> None:
        host = peer.host
        if not self._counts(peer) or not self._open[host]:
            return
        self._open[host] -= 1
        if not self._open[host]:
            del self._open[host]

    def open_from(self, host: str) -> int:
        """How many counted connections ``host`` has open."""
        return self._open[host]


class IdleWatched(Protocol):
    """What ``IdleSweep`` needs of a connection's protocol."""

    idle: int  # sweeps since the last activity: set it to 0 on receiving
    last_progress: int  # the sweep's own note of progress() (start it at progress())

    def progress(self) -> int:
        """A number that grows whenever the peer accepted bytes we sent (it may fall on writes)."""
        ...


W = TypeVar("W", bound=IdleWatched)


class IdleSweep(Generic[W]):
    """One timer for all of a service's connections: ``on_idle(w)`` for those idle ``timeout`` seconds."""

    def __init__(
        self,
        reactor: ReactorAPI,
        timeout: float,
        watched: Callable[[], Iterable[W]],
        on_idle: Callable[[W], None],
    ) -> None:
        self.reactor = reactor
        self.timeout = timeout
        self._watched = watched
        self._on_idle = on_idle
        self._timer: TimerAPI | None = None

    def start(self) -> None:
        if self.timeout > 0 and self._timer is None:
            self._schedule()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _schedule(self) -> None:
        self._timer = self.reactor.call_later(self.timeout / IDLE_TICKS, self._sweep)

    def _sweep(self) -> None:
        idle = []
        for watched in self._watched():
            progress = watched.progress()
            if progress > watched.last_progress:
                watched.idle = 0  # the peer took some of what we sent: it is reading
            else:
                watched.idle += 1
            watched.last_progress = progress
            if watched.idle > IDLE_TICKS:
                idle.append(watched)
        for watched in idle:
            self._on_idle(watched)
        self._schedule()
