"""Where ``twisted.internet.protocol`` lived before the compat layer became a package.

Kept importable; the code is in ``eventhub.compat.twisted.internet.protocol``.
"""

from __future__ import annotations

from eventhub.compat.twisted.internet.protocol import (
    ClientFactory,
    ClientFactoryBridge,
    ConnectionDone,
    Factory,
    Failure,
    Protocol,
    ProtocolBridge,
    ServerFactory,
    ServerFactoryBridge,
    TwistedConnector,
    TwistedTransport,
    connectionDone,
)

__all__ = [
    "ClientFactory",
    "ClientFactoryBridge",
    "ConnectionDone",
    "Factory",
    "Failure",
    "Protocol",
    "ProtocolBridge",
    "ServerFactory",
    "ServerFactoryBridge",
    "TwistedConnector",
    "TwistedTransport",
    "connectionDone",
]
