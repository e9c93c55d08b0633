"""UDP on an asyncio loop: the loop's ``create_datagram_endpoint`` reads, ``udp.UDPPort`` is the rest.

``AsyncioUDPPort`` is a ``UDPPort`` (same ``write``, ``dropped``, ``connect``,
multicast options, ``error_received``) whose reading is the loop's own
datagram transport (uvloop's is C) instead of a reader callback. Writes stay
``sendto`` on the socket, as the built-in port does: a datagram is handed to
the kernel or dropped and counted, never queued in the loop's transport (which
would buffer on ``EAGAIN`` and cannot be connected after it was made, as
``UDPPort.connect`` is).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from eventhub.errors import PLUGIN_ERRORS
from eventhub.reactor._aio_tcp import close_served
from eventhub.reactor._udp import UDPPort, _address

if TYPE_CHECKING:
    import socket

    from eventhub.protocol import DatagramProtocol
    from eventhub.reactor._aio import AsyncioReactor

__all__ = ["AsyncioUDPPort"]


class _Reader(asyncio.DatagramProtocol):
    """What the loop's datagram transport calls: each datagram and error passed to the port."""

    def __init__(self, port: AsyncioUDPPort) -> None:
        self._port = port

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self._port._datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        if isinstance(exc, OSError):
            self._port._error(exc)


class AsyncioUDPPort(UDPPort):
    """A ``UDPPort`` read by the loop's own datagram transport."""

    __slots__ = ("_loop", "_starting", "_transport")

    def __init__(self, reactor: AsyncioReactor, protocol: DatagramProtocol, sock: socket.socket) -> None:
        super().__init__(reactor, protocol, sock)
        self._loop = reactor._loop
        self._transport: asyncio.BaseTransport | None = None
        self._starting: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Hand the socket to the loop and call the protocol's ``connection_made``."""
        sock = self._sock
        assert sock is not None
        sock.setblocking(False)
        self._host = _address(sock, sock.getsockname())
        self._starting = self._loop.create_task(self._read(sock))
        self._serving()

    async def _read(self, sock: socket.socket) -> None:
        self._transport, _ = await self._loop.create_datagram_endpoint(lambda: _Reader(self), sock=sock)
        self._starting = None

    def _datagram(self, data: bytes, addr: Any) -> None:
        if self._sock is None:
            return  # closed: what the loop still had is dropped
        try:
            self._protocol.datagram_received(data, addr)
        except PLUGIN_ERRORS as failure:
            self._datagram_failed(failure, addr)

    def _stop_reading(self, sock: socket.socket) -> None:
        """The loop's transport closes the socket; before it exists, the socket is closed here."""
        transport, self._transport = self._transport, None
        close_served(transport, self._starting, sock)
        self._starting = None
