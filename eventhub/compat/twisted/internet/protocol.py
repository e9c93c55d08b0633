"""Twisted's ``twisted.internet.protocol`` names, bridged to ``eventhub.protocol``.

The classes users subclass (``Protocol``, ``Factory``, ``ServerFactory``,
``ClientFactory``) are plain Twisted-shaped classes with Twisted's camelCase names;
they do not inherit from eventhub's. The bridge lives at the boundary: the
reactor talks to a ``ProtocolBridge`` (an ``eventhub.protocol.Protocol``) that
forwards each snake_case callback to the Twisted-style protocol it wraps, and
to a ``ServerFactoryBridge`` / ``ClientFactoryBridge`` that forwards to the
Twisted-style factory. One bridge object per connection, no mixins.

Reasons given to ``connectionLost`` / ``clientConnectionFailed`` /
``clientConnectionLost`` are ``Failure`` objects, as in Twisted: a clean close
is ``Failure(ConnectionDone())``, anything else wraps the exception eventhub
reports (``ConnectionResetError``, ``TimeoutError``, ``ConnectionRefusedError``...).
"""

from __future__ import annotations

import logging
import random
from typing import Any

from eventhub import protocol as _eh
from eventhub.compat.twisted.internet.address import IPv4Address, UNIXAddress, from_eventhub
from eventhub.compat.twisted.internet.defer import Deferred, fail, succeed
from eventhub.compat.twisted.internet.error import ConnectionDone
from eventhub.compat.twisted.python.failure import Failure
from eventhub.protocol import Address, Connector

log = logging.getLogger("eventhub.compat.twisted")

__all__ = [
    "ClientFactory",
    "ConnectionDone",
    "DatagramProtocol",
    "Factory",
    "Failure",
    "Protocol",
    "ReconnectingClientFactory",
    "ServerFactory",
    "TwistedTransport",
    "connectionDone",
]


connectionDone = Failure(ConnectionDone())


def _failure(reason: BaseException | None) -> Failure:
    return Failure(reason if reason is not None else ConnectionDone())


class _ProducerBridge:
    """A Twisted-style producer (camelCase) seen as an ``eventhub.protocol.Producer``."""

    __slots__ = ("_producer",)

    def __init__(self, producer: Any) -> None:
        self._producer = producer

    def pause_producing(self) -> None:
        self._producer.pauseProducing()

    def resume_producing(self) -> None:
        self._producer.resumeProducing()

    def stop_producing(self) -> None:
        self._producer.stopProducing()


class TwistedTransport:
    """``self.transport`` of a Twisted-style protocol: Twisted's names over an eventhub transport."""

    __slots__ = ("eventhub_transport",)

    def __init__(self, transport: _eh.Transport) -> None:
        self.eventhub_transport = transport

    def write(self, data: bytes) -> None:
        self.eventhub_transport.write(data)

    def writeSequence(self, data: list[bytes]) -> None:
        self.eventhub_transport.write_sequence(data)

    def loseConnection(self) -> None:
        self.eventhub_transport.lose_connection()

    def abortConnection(self) -> None:
        self.eventhub_transport.abort_connection()

    def getPeer(self) -> IPv4Address | UNIXAddress:
        return from_eventhub(self.eventhub_transport.get_peer())

    def getHost(self) -> IPv4Address | UNIXAddress:
        return from_eventhub(self.eventhub_transport.get_host())

    def pauseProducing(self) -> None:
        """Stop reading from the peer (a transport is its protocol's producer)."""
        self.eventhub_transport.pause_reading()

    def resumeProducing(self) -> None:
        self.eventhub_transport.resume_reading()

    def stopProducing(self) -> None:
        self.eventhub_transport.lose_connection()

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        self.eventhub_transport.register_producer(_ProducerBridge(producer), streaming)

    def unregisterProducer(self) -> None:
        self.eventhub_transport.unregister_producer()

    @property
    def disconnecting(self) -> bool:
        return self.eventhub_transport.is_closing()

    @property
    def connected(self) -> bool:
        return not self.eventhub_transport.is_closing()


class Protocol:
    """Subclass and override ``connectionMade``, ``dataReceived``, ``connectionLost``."""

    factory: Any = None
    transport: TwistedTransport | None = None
    connected: int = 0

    def makeConnection(self, transport: TwistedTransport) -> None:
        self.connected = 1
        self.transport = transport
        self.connectionMade()

    def connectionMade(self) -> None:
        """The connection is up; ``self.transport`` is set."""

    def dataReceived(self, data: bytes) -> None:
        """Bytes arrived, in chunks of any size."""

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """The connection is closed; ``reason.check(ConnectionDone)`` for a clean close."""


class ProtocolBridge(_eh.Protocol):
    """The eventhub protocol the reactor drives; forwards to a Twisted-style protocol.

    EOF: a protocol with ``readConnectionLost`` (Twisted's IHalfCloseableProtocol)
    gets it and the connection stays half-open; otherwise the connection closes,
    as Twisted does.
    """

    def __init__(self, wrapped: Protocol) -> None:
        self.wrapped = wrapped

    def connection_made(self, transport: _eh.Transport) -> None:
        self.transport = transport
        self.wrapped.makeConnection(TwistedTransport(transport))

    def data_received(self, data: bytes) -> None:
        self.wrapped.dataReceived(data)

    def eof_received(self) -> bool | None:
        half_close = getattr(self.wrapped, "readConnectionLost", None)
        if half_close is None:
            return None
        half_close()
        return True

    def connection_lost(self, reason: BaseException | None) -> None:
        self.wrapped.connected = 0
        self.wrapped.connectionLost(_failure(reason))


class Factory:
    """Builds one protocol per connection: set ``protocol`` or override ``buildProtocol``."""

    protocol: type[Protocol] | None = None
    numPorts = 0

    @classmethod
    def forProtocol(cls, protocol: type[Protocol], *args: Any, **kw: Any) -> Factory:
        factory = cls(*args, **kw)
        factory.protocol = protocol
        return factory

    def buildProtocol(self, addr: Address) -> Protocol | None:
        if self.protocol is None:
            raise TypeError(f"{type(self).__name__}.protocol is not set; set it to a Protocol class")
        proto = self.protocol()
        proto.factory = self
        return proto

    def doStart(self) -> None:
        if not self.numPorts:
            self.startFactory()
        self.numPorts += 1

    def doStop(self) -> None:
        if self.numPorts <= 0:
            return
        self.numPorts -= 1
        if not self.numPorts:
            self.stopFactory()

    def startFactory(self) -> None:
        """Before the first port or connection attempt using this factory starts."""

    def stopFactory(self) -> None:
        """After the last one stopped."""


class ServerFactory(Factory):
    """A factory for ``reactor.listenTCP``."""


class ClientFactory(Factory):
    """A factory for ``reactor.connectTCP``; hears how each attempt ends."""

    def startedConnecting(self, connector: TwistedConnector) -> None:
        """An attempt is starting."""

    def clientConnectionFailed(self, connector: TwistedConnector, reason: Failure) -> None:
        """The attempt failed (refused, timed out...); ``connector.connect()`` retries."""

    def clientConnectionLost(self, connector: TwistedConnector, reason: Failure) -> None:
        """An established connection ended."""


class ReconnectingClientFactory(ClientFactory):
    """A client factory that connects again, with exponential backoff, whenever a connection fails
    or is lost, until ``stopTrying()``. Call ``resetDelay()`` once a connection works (in
    ``buildProtocol``, typically), as in Twisted.

    The delay grows by ``factor`` from ``initialDelay`` up to ``maxDelay``, with
    normally distributed ``jitter``; ``maxRetries`` (if set) bounds the attempts.
    ``clock`` is the compat reactor unless set (a ``task.Clock`` in tests).
    """

    maxDelay: float = 3600
    initialDelay: float = 1.0
    factor: float = 2.7182818284590451
    jitter: float = 0.11962656472
    delay: float = initialDelay
    retries: int = 0
    maxRetries: int | None = None
    _callID: Any = None
    connector: TwistedConnector | None = None
    clock: Any = None
    continueTrying: int = 1

    def clientConnectionFailed(self, connector: TwistedConnector, reason: Failure) -> None:
        if self.continueTrying:
            self.connector = connector
            self.retry()

    def clientConnectionLost(self, connector: TwistedConnector, reason: Failure) -> None:
        if self.continueTrying:
            self.connector = connector
            self.retry()

    def retry(self, connector: TwistedConnector | None = None) -> None:
        """Schedule the next attempt after the (grown) delay."""
        if not self.continueTrying:
            return
        if connector is None:
            if self.connector is None:
                raise ValueError("no connector to retry")
            connector = self.connector
        self.retries += 1
        if self.maxRetries is not None and self.retries > self.maxRetries:
            return
        self.delay = min(self.delay * self.factor, self.maxDelay)
        if self.jitter:
            self.delay = random.normalvariate(self.delay, self.delay * self.jitter)

        def reconnector() -> None:
            self._callID = None
            connector.connect()

        if self.clock is None:
            from eventhub.compat.twisted.internet import _global

            self.clock = _global.get()
        self._callID = self.clock.callLater(self.delay, reconnector)

    def stopTrying(self) -> None:
        """Stop reconnecting: cancel a scheduled attempt, stop one in progress."""
        if self._callID is not None:
            self._callID.cancel()
            self._callID = None
        self.continueTrying = 0
        if self.connector is not None:
            self.connector.stopConnecting()  # does nothing unless an attempt is in progress

    def resetDelay(self) -> None:
        """Back to ``initialDelay`` and zero retries (call it when a connection works)."""
        self.delay = self.initialDelay
        self.retries = 0
        self._callID = None
        self.continueTrying = 1


class TwistedConnector:
    """What ``reactor.connectTCP`` returns and client factories are given, Twisted's names."""

    __slots__ = ("eventhub_connector",)

    def __init__(self, connector: Connector) -> None:
        self.eventhub_connector = connector

    def connect(self) -> None:
        self.eventhub_connector.connect()

    def disconnect(self) -> None:
        self.eventhub_connector.disconnect()

    def stopConnecting(self) -> None:
        self.eventhub_connector.stop_connecting()

    def getDestination(self) -> IPv4Address | UNIXAddress:
        return from_eventhub(self.eventhub_connector.get_destination())


class _FactoryBridge:
    """What both bridges share: building the bridged protocol, forwarding start/stop.

    The Twisted-style factory keeps the one count of its users (``numPorts``,
    Twisted's public name): the bridge forwards every ``do_start`` / ``do_stop``
    instead of counting them itself, as ``eventhub.protocol.Factory`` would.
    """

    wrapped: Factory

    def build_protocol(self, addr: Address) -> _eh.Protocol | None:
        proto = self.wrapped.buildProtocol(addr)
        return None if proto is None else ProtocolBridge(proto)

    def do_start(self) -> None:
        self.wrapped.doStart()

    def do_stop(self) -> None:
        self.wrapped.doStop()


class ServerFactoryBridge(_FactoryBridge, _eh.ServerFactory):
    """The eventhub factory ``listenTCP`` gives the reactor for a Twisted-style factory."""

    def __init__(self, wrapped: Factory) -> None:
        self.wrapped = wrapped


class ClientFactoryBridge(_FactoryBridge, _eh.ClientFactory):
    """The eventhub factory ``connectTCP`` gives the reactor for a Twisted-style factory."""

    def __init__(self, wrapped: ClientFactory) -> None:
        self.wrapped = wrapped
        self.client = wrapped
        self._connector: TwistedConnector | None = None

    def twisted_connector(self, connector: Connector) -> TwistedConnector:
        """The one ``TwistedConnector`` for ``connector`` (the same object every time)."""
        if self._connector is None or self._connector.eventhub_connector is not connector:
            self._connector = TwistedConnector(connector)
        return self._connector

    def start_connecting(self, connector: Connector) -> None:
        self.client.startedConnecting(self.twisted_connector(connector))

    def client_connection_failed(self, connector: Connector, reason: BaseException) -> None:
        self.client.clientConnectionFailed(self.twisted_connector(connector), Failure(reason))

    def client_connection_lost(self, connector: Connector, reason: BaseException | None) -> None:
        self.client.clientConnectionLost(self.twisted_connector(connector), _failure(reason))


# -- UDP -----------------------------------------------------------------------


class DatagramProtocol:
    """Twisted's UDP protocol: override ``datagramReceived(data, addr)``; ``reactor.listenUDP`` serves it.

    ``startProtocol()`` runs once the port is bound (``self.transport`` set),
    ``stopProtocol()`` once it is closed; ``connectionRefused()`` when a
    connected port's datagram met an ICMP port-unreachable.
    """

    transport: TwistedDatagramPort | None = None
    numPorts = 0
    noisy = False

    def makeConnection(self, transport: TwistedDatagramPort) -> None:
        self.transport = transport
        self.doStart()

    def doStart(self) -> None:
        if not self.numPorts:
            self.startProtocol()
        self.numPorts += 1

    def doStop(self) -> None:
        if self.numPorts <= 0:
            return
        self.numPorts -= 1
        self.transport = None
        if not self.numPorts:
            self.stopProtocol()

    def startProtocol(self) -> None:
        """The port is bound; ``self.transport`` is set."""

    def stopProtocol(self) -> None:
        """The port is closed."""

    def datagramReceived(self, data: bytes, addr: Any) -> None:
        """One datagram from ``addr`` (``(host, port)``)."""

    def connectionRefused(self) -> None:
        """A datagram sent on a connected port was refused (nobody listens there)."""


class TwistedDatagramPort:
    """What ``listenUDP`` returns and a ``DatagramProtocol``'s ``transport`` is: Twisted's names over
    an ``eventhub.protocol.DatagramTransport``."""

    __slots__ = ("eventhub_transport",)

    def __init__(self, transport: _eh.DatagramTransport) -> None:
        self.eventhub_transport = transport

    def write(self, data: bytes, addr: Any = None) -> None:
        """Send one datagram to ``addr`` (``(host, port)``), or to the connected address."""
        self.eventhub_transport.write(data, addr)

    def connect(self, host: str, port: int) -> None:
        """Talk to ``host:port`` only (an IP literal, as Twisted requires)."""
        self.eventhub_transport.connect((host, port))

    def getHost(self) -> IPv4Address | UNIXAddress:
        return from_eventhub(self.eventhub_transport.get_host(), "UDP")

    def stopListening(self) -> Deferred[None]:
        """Close the port (at once); ``stopProtocol`` follows on the next pass."""
        self.eventhub_transport.stop_listening()
        return succeed(None)

    loseConnection = stopListening

    def joinGroup(self, addr: str, interface: str = "") -> Deferred[int]:
        """Join the multicast group ``addr``; the Deferred has fired already (or failed)."""
        return self._group(self.eventhub_transport.join_group, addr, interface)

    def leaveGroup(self, addr: str, interface: str = "") -> Deferred[int]:
        return self._group(self.eventhub_transport.leave_group, addr, interface)

    @staticmethod
    def _group(method: Any, addr: str, interface: str) -> Deferred[int]:
        try:
            method(addr, interface)
        except OSError as error:
            return fail(error)
        return succeed(1)

    def setTTL(self, ttl: int) -> None:
        self.eventhub_transport.set_ttl(ttl)

    @property
    def disconnected(self) -> bool:
        return self.eventhub_transport.is_closing()


class DatagramProtocolBridge(_eh.DatagramProtocol):
    """The eventhub ``DatagramProtocol`` ``listenUDP`` gives the reactor for a Twisted-style one."""

    def __init__(self, wrapped: DatagramProtocol) -> None:
        self.wrapped = wrapped
        self.port: TwistedDatagramPort | None = None

    def adopt(self, transport: _eh.DatagramTransport) -> TwistedDatagramPort:
        """The one ``TwistedDatagramPort`` over ``transport``."""
        if self.port is None or self.port.eventhub_transport is not transport:
            self.port = TwistedDatagramPort(transport)
        return self.port

    def connection_made(self, transport: _eh.DatagramTransport) -> None:
        self.transport = transport
        self.wrapped.makeConnection(self.adopt(transport))

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.wrapped.datagramReceived(data, addr)

    def error_received(self, exc: OSError) -> None:
        if isinstance(exc, ConnectionRefusedError):
            self.wrapped.connectionRefused()
        else:
            log.warning("%s: UDP error: %s", type(self.wrapped).__name__, exc)

    def connection_lost(self, reason: BaseException | None) -> None:
        self.wrapped.doStop()
