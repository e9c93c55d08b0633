"""``twisted.application.strports``: a listening service from an endpoint string."""

from __future__ import annotations

from typing import Any

from eventhub.compat.twisted.application.internet import StreamServerEndpointService
from eventhub.compat.twisted.internet import _global
from eventhub.compat.twisted.internet._reactor import ListeningPort, TwistedReactor
from eventhub.compat.twisted.internet.defer import Deferred
from eventhub.compat.twisted.internet.endpoints import serverFromString
from eventhub.compat.twisted.internet.protocol import Factory

__all__ = ["listen", "service"]


def service(
    description: str, factory: Factory, reactor: TwistedReactor | None = None
) -> StreamServerEndpointService:
    """A service listening on ``description`` (``"tcp:8080"``, ``"tcp6:8080:interface=\\:\\:1"``)."""
    chosen = reactor if reactor is not None else _global.get()
    svc = StreamServerEndpointService(serverFromString(chosen, description), factory)
    svc._raiseSynchronously = True
    return svc


def listen(description: str, factory: Factory) -> Deferred[ListeningPort]:
    """Listen on ``description`` now; the Deferred fires with the port."""
    endpoint: Any = serverFromString(_global.get(), description)
    result: Deferred[ListeningPort] = endpoint.listen(factory)
    return result
