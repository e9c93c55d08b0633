"""``twisted.internet.error``: the exceptions Twisted code checks for.

eventhub reports connection errors as Python's own exceptions, so the names a
Twisted program checks with ``reason.check(...)`` are those same classes where
one fits: ``error.ConnectionRefusedError`` *is* the builtin
``ConnectionRefusedError``, ``error.TimeoutError`` the builtin ``TimeoutError``,
``error.ConnectionLost`` the builtin ``ConnectionResetError`` (an unclean close).
``ConnectionDone`` (a clean close) and the rest are Twisted-shaped classes.
"""

from __future__ import annotations

import builtins

from eventhub.errors import ServiceError

__all__ = [
    "AlreadyCalled",
    "AlreadyCancelled",
    "CannotListenError",
    "ConnectError",
    "ConnectionClosed",
    "ConnectionDone",
    "ConnectionLost",
    "ConnectionRefusedError",
    "DNSLookupError",
    "NotConnectingError",
    "ReactorAlreadyRunning",
    "ReactorNotRunning",
    "TimeoutError",
]

ConnectionClosed = builtins.ConnectionError
ConnectionRefusedError = builtins.ConnectionRefusedError
ConnectionLost = builtins.ConnectionResetError
TimeoutError = builtins.TimeoutError
ConnectError = builtins.OSError


class ConnectionDone(ConnectionClosed):
    """The connection was closed cleanly (Twisted's ``error.ConnectionDone``)."""

    def __init__(self, message: str = "Connection was closed cleanly.") -> None:
        super().__init__(message)


class CannotListenError(ServiceError):
    """``listenTCP`` / an endpoint's ``listen`` could not bind (an ``eventhub.errors.ServiceError``)."""

    def __init__(self, interface: str, port: int, socketError: BaseException | str) -> None:
        super().__init__(f"Couldn't listen on {interface or 'any'}:{port}: {socketError}.")
        self.interface = interface
        self.port = port
        self.socketError = socketError


class DNSLookupError(OSError):
    """A host name did not resolve."""


class AlreadyCalled(ValueError):
    """A ``DelayedCall`` that already ran was cancelled or reset."""


class AlreadyCancelled(ValueError):
    """A ``DelayedCall`` that was cancelled was cancelled or reset again."""


class NotConnectingError(RuntimeError):
    """``stopConnecting`` on a connector that is not connecting."""


class ReactorNotRunning(RuntimeError):
    """``reactor.stop()`` on a reactor that is not running."""


class ReactorAlreadyRunning(RuntimeError):
    """``reactor.run()`` on a reactor that is running."""
