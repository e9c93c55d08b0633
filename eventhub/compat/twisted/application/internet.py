"""``twisted.application.internet``: services that listen, connect or tick.

Each takes an optional ``reactor=`` (the compat reactor by default).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from eventhub.compat.twisted.application.service import Service
from eventhub.compat.twisted.internet import _global
from eventhub.compat.twisted.internet._reactor import ListeningPort, TwistedReactor
from eventhub.compat.twisted.internet.defer import Deferred
from eventhub.compat.twisted.internet.protocol import ClientFactory, Factory, TwistedConnector
from eventhub.compat.twisted.internet.task import LoopingCall
from eventhub.compat.twisted.python.failure import Failure

__all__ = ["StreamServerEndpointService", "TCPClient", "TCPServer", "TimerService"]

log = logging.getLogger("eventhub.compat.twisted.application")


def _reactor(reactor: TwistedReactor | None) -> TwistedReactor:
    return reactor if reactor is not None else _global.get()


class TCPServer(Service):
    """``listenTCP(port, factory, backlog, interface)`` while running (bound in privilegedStartService)."""

    _port: ListeningPort | None = None

    def __init__(
        self,
        port: int,
        factory: Factory,
        backlog: int = 50,
        interface: str = "",
        reactor: TwistedReactor | None = None,
    ) -> None:
        self.args = (port, factory, backlog, interface)
        self.reactor = reactor

    def privilegedStartService(self) -> None:
        if self._port is None:
            port, factory, backlog, interface = self.args
            self._port = _reactor(self.reactor).listenTCP(port, factory, backlog, interface)

    def startService(self) -> None:
        super().startService()
        self.privilegedStartService()

    def stopService(self) -> Deferred[None] | None:
        super().stopService()
        port, self._port = self._port, None
        return None if port is None else port.stopListening()

    def getHost(self) -> Any:
        """The bound address (eventhub's addition: Twisted keeps the port private)."""
        assert self._port is not None, "not listening"
        return self._port.getHost()


class TCPClient(Service):
    """``connectTCP(host, port, factory, timeout)`` while running; disconnects when stopped."""

    _connection: TwistedConnector | None = None

    def __init__(
        self,
        host: str,
        port: int,
        factory: ClientFactory,
        timeout: float = 30,
        reactor: TwistedReactor | None = None,
    ) -> None:
        self.args = (host, port, factory, timeout)
        self.reactor = reactor

    def startService(self) -> None:
        super().startService()
        host, port, factory, timeout = self.args
        self._connection = _reactor(self.reactor).connectTCP(host, port, factory, timeout)

    def stopService(self) -> None:
        super().stopService()
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.disconnect()


class TimerService(Service):
    """Call ``callable(*args, **kw)`` every ``step`` seconds while running (first call at start).

    A failure is logged and stops the timer, as in Twisted.
    """

    def __init__(self, step: float, callable: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self.step = step
        self.call = (callable, args, kwargs)
        self.clock: Any = None
        self._loop: LoopingCall | None = None
        self._loopFinished: Deferred[Any] | None = None

    def startService(self) -> None:
        super().startService()
        fn, args, kwargs = self.call
        self._loop = LoopingCall(fn, *args, **kwargs)
        if self.clock is not None:
            self._loop.clock = self.clock
        self._loopFinished = self._loop.start(self.step, now=True)
        self._loopFinished.addErrback(self._failed)

    def _failed(self, failure: Failure) -> None:
        log.error("TimerService %r: %s", self.name, failure.getErrorMessage(), exc_info=failure.value)

    def stopService(self) -> Deferred[Any] | None:
        super().stopService()
        loop, self._loop = self._loop, None
        if loop is not None and loop.running:
            loop.stop()
        return self._loopFinished


class StreamServerEndpointService(Service):
    """``endpoint.listen(factory)`` while running; a listening error is logged (and raised at once
    with ``_raiseSynchronously``)."""

    _raiseSynchronously = False
    _waitingForPort: Deferred[Any] | None = None
    _port: ListeningPort | None = None

    def __init__(self, endpoint: Any, factory: Factory) -> None:
        self.endpoint = endpoint
        self.factory = factory

    def privilegedStartService(self) -> None:
        if self._waitingForPort is not None:
            return
        errors: list[Failure] = []
        self._waitingForPort = self.endpoint.listen(self.factory)

        def listening(port: ListeningPort) -> ListeningPort:
            self._port = port
            return port

        def failed(failure: Failure) -> None:
            if self._raiseSynchronously:
                errors.append(failure)
            else:
                log.error("%r could not listen: %s", self.endpoint, failure.getErrorMessage())

        assert self._waitingForPort is not None
        self._waitingForPort.addCallbacks(listening, failed)
        if errors:
            errors[0].raiseException()

    def startService(self) -> None:
        super().startService()
        self.privilegedStartService()

    def stopService(self) -> Deferred[Any] | None:
        super().stopService()
        port, self._port = self._port, None
        self._waitingForPort = None
        return None if port is None else port.stopListening()

    def getHost(self) -> Any:
        """The bound address (eventhub's addition)."""
        assert self._port is not None, "not listening"
        return self._port.getHost()
