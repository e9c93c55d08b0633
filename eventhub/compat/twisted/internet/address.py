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

__all__ = ["IPv4Address", "IPv6Address", "UNIXAddress", "from_eventhub"]


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


@dataclass(frozen=True)
class UNIXAddress:
    """``UNIXAddress(name='/run/app.sock')``: one end of a UNIX socket (``name`` is ``None`` if unbound)."""

    name: str | None


def from_eventhub(address: Address, kind: str = "TCP") -> IPv4Address | UNIXAddress:
    """The Twisted-style address of an eventhub ``Address`` (``kind``: ``"TCP"`` or ``"UDP"``).

    An eventhub ``UNIXAddress`` becomes a compat ``UNIXAddress`` (its path, or
    ``None`` for an unnamed client end).
    """
    if address.family == getattr(socket, "AF_UNIX", None):
        return UNIXAddress(address.host or None)
    if address.family == socket.AF_INET6:
        return IPv6Address(kind, address.host, address.port)
    return IPv4Address(kind, address.host, address.port)
