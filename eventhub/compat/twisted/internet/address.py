"""``twisted.internet.address``: ``IPv4Address`` / ``IPv6Address``, printed as Twisted prints them.

``getPeer()``, ``getHost()`` and ``getDestination()`` return these. Each also
compares equal to the ``eventhub.protocol.Address`` it was made from, so code
holding either keeps working.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

from eventhub.protocol import Address

__all__ = ["IPv4Address", "IPv6Address", "from_eventhub"]


@dataclass(frozen=True, eq=False)
class IPv4Address:
    """``IPv4Address(type='TCP', host='127.0.0.1', port=8000)``."""

    type: str
    host: str
    port: int

    def _key(self) -> tuple[Any, ...]:
        return (self.type, self.host, self.port)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Address):
            return self.eventhub_address() == other
        return isinstance(other, IPv4Address) and type(other) is type(self) and other._key() == self._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def eventhub_address(self) -> Address:
        return Address(self.host, self.port, socket.AF_INET)


@dataclass(frozen=True, eq=False)
class IPv6Address(IPv4Address):
    """``IPv6Address(type='TCP', host='::1', port=8000, flowInfo=0, scopeID=0)``."""

    flowInfo: int = 0
    scopeID: int | str = 0

    def _key(self) -> tuple[Any, ...]:
        return (self.type, self.host, self.port, self.flowInfo, self.scopeID)

    def eventhub_address(self) -> Address:
        return Address(self.host, self.port, socket.AF_INET6)


def from_eventhub(address: Address) -> IPv4Address:
    """The Twisted-style address of an eventhub ``Address`` (TCP)."""
    if address.family == socket.AF_INET6:
        return IPv6Address("TCP", address.host, address.port)
    return IPv4Address("TCP", address.host, address.port)
