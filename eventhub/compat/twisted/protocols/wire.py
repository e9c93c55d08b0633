"""``twisted.protocols.wire``: the tiny standard services (RFC 862, 863, 867, 865)."""

from __future__ import annotations

import time

from eventhub.compat.twisted.internet.protocol import Protocol

__all__ = ["QOTD", "Daytime", "Discard", "Echo"]


class Echo(Protocol):
    """Send back what arrives (RFC 862)."""

    def dataReceived(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)


class Discard(Protocol):
    """Read and drop everything (RFC 863)."""

    def dataReceived(self, data: bytes) -> None:
        pass


class Daytime(Protocol):
    """Send the local time as text, then close (RFC 867)."""

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.transport.write(time.asctime(time.gmtime(time.time())).encode("ascii") + b"\r\n")
        self.transport.loseConnection()


class QOTD(Protocol):
    """Send a quote, then close (RFC 865)."""

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.transport.write(self.getQuote())
        self.transport.loseConnection()

    def getQuote(self) -> bytes:
        return b"An apple a day keeps the doctor away.\r\n"
