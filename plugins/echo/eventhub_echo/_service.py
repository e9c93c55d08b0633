"""The echo protocol (the seed's ``Echo``) and its factory: backpressure, idle timeout, connection cap.

Hot path: ``data_received`` is one call to the transport's bound ``write``
(looked up once per connection), which sends at once when nothing is
buffered, and one counter. No per-message allocation, no timestamp, no timer.

Events: with a hub, the factory emits ``echo.connection.made`` (payload
``peer``, ``host``, ``port``) and ``echo.connection.lost`` (the same, plus
``bytes_received`` and ``error``: ``None`` for a clean close)
when some handler subscribes to them; otherwise no payload is even built.

Backpressure: when the transport's write buffer toward a peer passes the
high-water mark (the peer is not reading), the reactor calls ``pause_writing``
and the protocol stops *reading* from that peer; the kernel's buffers fill up
and TCP flow control then stops the peer from sending. Below the low-water mark
``resume_writing`` resumes reading. Server memory per connection is thus bounded
by the high-water mark plus one read (the reactor's ``RECV_BUFFER_SIZE``,
256 KiB), whatever the peer sends.

Idle timeout without a per-message cost: instead of resetting a timer (or
reading the clock) on every message, ``data_received`` stores 0 in the
protocol's ``idle`` counter, and a sweep every ``idle_timeout / IDLE_TICKS``
seconds increments every counter and closes the connections whose counter has
passed ``IDLE_TICKS``. A connection is therefore closed after between
``idle_timeout`` and ``idle_timeout * (1 + 1 / IDLE_TICKS)`` seconds without
receiving data or draining its write buffer. With ``idle_timeout = 0`` the plain
protocol is used and there is no sweep at all.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from eventhub.protocol import Address, Protocol, ServerFactory, Transport
from eventhub_echo._settings import EchoSettings

if TYPE_CHECKING:
    from eventhub import Hub
    from eventhub.reactor import ReactorAPI, TimerAPI

log = logging.getLogger("eventhub.echo")

IDLE_TICKS = 4

SERVICE = "echo"
MADE, LOST = "echo.connection.made", "echo.connection.lost"


def _peer(address: Address) -> dict[str, Any]:
    return {"peer": str(address), "host": address.host, "port": address.port}


class EchoProtocol(Protocol):
    """Writes back whatever it receives, and stops reading while the peer is not reading."""

    factory: EchoFactory

    def connection_made(self, transport: Transport) -> None:
        self.transport = transport
        self._write: Callable[[bytes], Any] = transport.write
        self.idle = 0
        self.received = 0
        self.factory.connection_made(self, transport)

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        self._write(data)

    def pause_writing(self) -> None:
        assert self.transport is not None
        self.transport.pause_reading()

    def resume_writing(self) -> None:
        assert self.transport is not None
        self.transport.resume_reading()

    def connection_lost(self, reason: BaseException | None) -> None:
        self.factory.connection_lost(self, reason)


class IdleEchoProtocol(EchoProtocol):
    """``EchoProtocol`` that marks itself active for the idle sweep (see the module docstring)."""

    def data_received(self, data: bytes) -> None:
        self.idle = 0
        self.received += len(data)
        self._write(data)

    def resume_writing(self) -> None:
        self.idle = 0  # the peer read what we sent: it is not idle
        super().resume_writing()


class EchoFactory(ServerFactory):
    """Builds the echo protocols of one listener and keeps track of them."""

    def __init__(self, settings: EchoSettings, reactor: ReactorAPI, hub: Hub | None = None) -> None:
        self.settings = settings
        self.reactor = reactor
        self.hub = hub
        self.protocol = IdleEchoProtocol if settings.idle_timeout > 0 else EchoProtocol
        self.connections: set[EchoProtocol] = set()
        self.refused = 0  # connections closed at once because of max_connections
        self._full = False
        self._sweeper: TimerAPI | None = None

    # -- connection cap -------------------------------------------------------

    def build_protocol(self, addr: Address) -> Protocol | None:
        limit = self.settings.max_connections
        if limit and len(self.connections) >= limit:
            self._refuse(addr, limit)
            return None  # the reactor closes the connection at once
        return super().build_protocol(addr)

    def _refuse(self, addr: Address, limit: int) -> None:
        self.refused += 1
        if not self._full:  # once per episode of being full, not once per connection
            self._full = True
            log.warning("max_connections (%d) reached: closing new connections until one ends", limit)
        log.debug("closed the connection from %s: max_connections (%d) reached", addr, limit)

    # -- per connection -------------------------------------------------------

    def connection_made(self, protocol: EchoProtocol, transport: Transport) -> None:
        settings = self.settings
        # low=None: the transport picks its own default (high // 4).
        transport.set_write_buffer_limits(settings.write_buffer_high, settings.write_buffer_low)
        self.connections.add(protocol)
        hub = self.hub
        if hub is not None and hub.wants(MADE):
            hub.emit(MADE, _peer(transport.get_peer()), source=SERVICE)

    def connection_lost(self, protocol: EchoProtocol, reason: BaseException | None = None) -> None:
        self.connections.discard(protocol)
        hub = self.hub
        if hub is not None and protocol.transport is not None and hub.wants(LOST):
            transport = protocol.transport
            payload = _peer(transport.get_peer())
            payload["bytes_received"] = protocol.received
            payload["error"] = None if reason is None else f"{type(reason).__name__}: {reason}"
            hub.emit(LOST, payload, source=SERVICE)
        if self._full and len(self.connections) < self.settings.max_connections:
            self._full = False
            log.info("below max_connections again (%d refused so far)", self.refused)

    # -- idle sweep -----------------------------------------------------------

    def start_factory(self) -> None:
        if self.settings.idle_timeout > 0:
            self._schedule_sweep()

    def stop_factory(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None

    def _schedule_sweep(self) -> None:
        self._sweeper = self.reactor.call_later(self.settings.idle_timeout / IDLE_TICKS, self._sweep)

    def _sweep(self) -> None:
        idle = []
        for protocol in self.connections:
            protocol.idle += 1
            if protocol.idle > IDLE_TICKS:
                idle.append(protocol)
        for protocol in idle:
            self._close_idle(protocol)
        self._schedule_sweep()

    def _close_idle(self, protocol: EchoProtocol) -> None:
        transport = protocol.transport
        if transport is None or transport.is_closing():
            return
        log.debug(
            "closing the connection from %s: idle for %ss",
            transport.get_peer(),
            self.settings.idle_timeout,
        )
        if transport.get_write_buffer_size():
            transport.abort_connection()  # the peer is not reading: flushing could wait forever
        else:
            transport.lose_connection()
