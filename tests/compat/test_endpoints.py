"""Endpoints (strings, listen/connect Deferreds on real sockets), addresses, interfaces, reconnecting."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from eventhub.compat.twisted import ListeningPort, TwistedReactor
from eventhub.compat.twisted.internet import endpoints, protocol, task
from eventhub.compat.twisted.internet.address import IPv4Address, IPv6Address
from eventhub.compat.twisted.internet.defer import Deferred
from eventhub.compat.twisted.internet.error import CannotListenError, ConnectionDone
from eventhub.compat.twisted.internet.interfaces import (
    IProtocolFactory,
    IPullProducer,
    IPushProducer,
    implementer,
)
from eventhub.compat.twisted.python.failure import Failure
from eventhub.compat.twisted_protocol import TwistedConnector
from eventhub.protocol import Address
from eventhub.reactor import Reactor
from eventhub.testing import MemoryReactor, run_until_stopped

from ._util import inet

# -- strings ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("description", "expected"),
    [
        ("tcp:80", ("tcp", ["80"], {})),
        ("TCP:80:interface=127.0.0.1:backlog=5", ("tcp", ["80"], {"interface": "127.0.0.1", "backlog": "5"})),
        ("tcp6:8080:interface=\\:\\:1", ("tcp6", ["8080"], {"interface": "::1"})),
        ("tcp:host=a\\=b:port=1", ("tcp", [], {"host": "a=b", "port": "1"})),
        ("tcp:x=1=2", ("tcp", [], {"x": "1=2"})),
    ],
)
def test_parse(description: str, expected: tuple[str, list[str], dict[str, str]]) -> None:
    assert endpoints.parse(description) == expected


def test_server_and_client_from_string() -> None:
    memory = MemoryReactor()
    compat = TwistedReactor(lambda: memory)
    factory = protocol.Factory.forProtocol(protocol.Protocol)
    for description in ("tcp:8080:interface=127.0.0.1:backlog=7", "tcp6:8081", "tcp:8082"):
        endpoints.serverFromString(compat, description).listen(factory)
    assert [(c.port, c.backlog, c.interface) for c in memory.tcp_servers] == [
        (8080, 7, "127.0.0.1"),
        (8081, 50, "::"),
        (8082, 50, ""),
    ]
    assert isinstance(endpoints.serverFromString(compat, "tcp6:1"), endpoints.TCP6ServerEndpoint)
    client_factory = protocol.ClientFactory()
    clients = ("tcp:host=localhost:port=80:timeout=5", "tcp:example.com:81", "tcp6:host=\\:\\:1:port=82")
    for description in clients:
        endpoints.clientFromString(compat, description).connect(client_factory)
    assert [(c.host, c.port, c.timeout) for c in memory.tcp_clients] == [
        ("localhost", 80, 5.0),
        ("example.com", 81, 30),
        ("::1", 82, 30),
    ]
    with pytest.raises(ValueError, match=r"Unknown endpoint type: 'udp'.*ssl, tcp, tcp6, tls, unix"):
        endpoints.serverFromString(compat, "udp:9000")
    with pytest.raises(ValueError, match="bad client endpoint description"):
        endpoints.clientFromString(compat, "tcp:host=only")


# -- real sockets ------------------------------------------------------------------------


class Greeter(protocol.Protocol):
    def connectionMade(self) -> None:
        assert self.transport is not None
        peer = self.transport.getPeer()
        self.transport.write(repr(peer).encode() + b"\n")
        self.transport.loseConnection()


class Reader(protocol.Protocol):
    def __init__(self) -> None:
        self.received = b""
        self.reasons: list[Failure] = []

    def dataReceived(self, data: bytes) -> None:
        self.received += data

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:
        self.reasons.append(reason)
        self.factory_stop()

    factory_stop: Any = None


def test_listen_and_connect_fire_deferreds_with_twisted_addresses() -> None:
    compat = TwistedReactor(lambda: Reactor("select"))
    outcome: dict[str, Any] = {}
    reader = Reader()
    reader.factory_stop = compat.stop

    def listening(port: ListeningPort) -> Deferred[None]:
        outcome["host"] = port.getHost()
        client = endpoints.TCP4ClientEndpoint(compat, "127.0.0.1", inet(port.getHost()).port)
        return endpoints.connectProtocol(client, reader).addCallback(connected)

    def connected(proto: protocol.Protocol) -> None:
        assert proto.transport is not None
        outcome["connected"] = proto is reader
        outcome["client host"] = proto.transport.getHost()

    server = endpoints.serverFromString(compat, "tcp:0:interface=127.0.0.1")
    server.listen(protocol.Factory.forProtocol(Greeter)).addCallback(listening)
    run_until_stopped(compat.eventhub_reactor)
    host = outcome["host"]
    assert isinstance(host, IPv4Address) and host.host == "127.0.0.1" and host.type == "TCP"
    assert outcome["connected"]
    client_port = outcome["client host"].port
    assert reader.received == f"IPv4Address(type='TCP', host='127.0.0.1', port={client_port})\n".encode()
    assert reader.reasons[0].check(ConnectionDone)


def test_connect_refused_fails_the_deferred_and_listen_in_use_too() -> None:
    compat = TwistedReactor(lambda: Reactor("select"))
    errors: list[Failure] = []
    with socket.socket() as busy, socket.socket() as closed_door:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        closed_door.bind(("127.0.0.1", 0))
        in_use = endpoints.TCP4ServerEndpoint(compat, busy.getsockname()[1], interface="127.0.0.1")
        in_use.listen(protocol.Factory.forProtocol(Greeter)).addErrback(errors.append)
        refused = endpoints.TCP4ClientEndpoint(compat, "127.0.0.1", closed_door.getsockname()[1])
        d = refused.connect(protocol.Factory.forProtocol(Reader))
        d.addErrback(errors.append).addBoth(lambda _: compat.stop())
        run_until_stopped(compat.eventhub_reactor)
    assert errors[0].check(CannotListenError)
    assert errors[1].check(ConnectionRefusedError)


def test_cancelling_connect_stops_the_attempt() -> None:
    memory = MemoryReactor()
    compat = TwistedReactor(lambda: memory)
    endpoint = endpoints.HostnameEndpoint(compat, "example.invalid", 80)
    d = endpoint.connect(protocol.Factory.forProtocol(Reader))
    errors: list[Failure] = []
    d.addErrback(errors.append)
    d.cancel()
    memory.run_ready()
    assert len(errors) == 1 and "cancelled" in errors[0].getErrorMessage()
    assert memory.tcp_clients[0].connector.state == "disconnected"


# -- addresses and interfaces -------------------------------------------------------------


def test_addresses_print_as_twisted_and_compare_with_eventhub_ones() -> None:
    v4 = IPv4Address("TCP", "127.0.0.1", 80)
    assert repr(v4) == "IPv4Address(type='TCP', host='127.0.0.1', port=80)"
    assert v4 == Address("127.0.0.1", 80) and Address("127.0.0.1", 80) == v4
    v6 = IPv6Address("TCP", "::1", 80)
    assert repr(v6) == "IPv6Address(type='TCP', host='::1', port=80, flowInfo=0, scopeID=0)"
    assert v6 == Address("::1", 80, socket.AF_INET6) and v6 != v4
    assert len({v4, IPv4Address("TCP", "127.0.0.1", 80)}) == 1


def test_interfaces_with_implementer() -> None:
    @implementer(IPushProducer)
    class Producer:
        pass

    class Sub(Producer):
        pass

    assert IPushProducer.providedBy(Producer()) and IPushProducer.implementedBy(Sub)
    assert not IPullProducer.providedBy(Producer())
    assert not IProtocolFactory.providedBy(object())


# -- ReconnectingClientFactory ----------------------------------------------------------------


def test_reconnecting_client_factory_backs_off_and_stops() -> None:
    memory = MemoryReactor()
    compat = TwistedReactor(lambda: memory)
    clock = task.Clock()

    class Factory(protocol.ReconnectingClientFactory):
        protocol = Reader
        jitter = 0
        maxDelay = 10

    factory = Factory()
    factory.clock = clock
    compat.connectTCP("127.0.0.1", 1, factory)
    connector = memory.tcp_clients[0].connector
    delays = []
    for _ in range(4):
        connector.fail(ConnectionRefusedError())
        [call] = clock.getDelayedCalls()
        delays.append(round(call.getTime() - clock.seconds(), 3))
        clock.advance(call.getTime() - clock.seconds())  # the next attempt starts
    assert delays == [2.718, 7.389, 10, 10]
    factory.resetDelay()
    assert (factory.delay, factory.retries) == (1.0, 0)
    connector.fail(ConnectionRefusedError())
    assert len(clock.getDelayedCalls()) == 1
    factory.stopTrying()
    assert clock.getDelayedCalls() == []


def test_reconnecting_client_factory_on_real_sockets_connects_once_the_server_is_up() -> None:
    compat = TwistedReactor(lambda: Reactor("select"))
    events: list[str] = []
    with socket.socket() as door:
        door.bind(("127.0.0.1", 0))  # bound, not listening: connecting is refused, the port stays ours

        class Connected(protocol.Protocol):
            def connectionMade(self) -> None:
                events.append("connected")
                factory.stopTrying()  # else losing this connection at shutdown schedules a retry
                door.close()  # resets the connection it never accepted: shutdown need not wait for its close
                compat.stop()

        class Factory(protocol.ReconnectingClientFactory):
            initialDelay = delay = 0.01  # `delay` too: as in Twisted, the base class bound it to its 1.0
            factor = 1.0
            jitter = 0

            def buildProtocol(self, addr: Address) -> protocol.Protocol:
                self.resetDelay()
                return Connected()

            def clientConnectionFailed(self, connector: TwistedConnector, reason: Failure) -> None:
                events.append(f"failed: {reason.type.__name__}")
                door.listen()  # the server comes up; the retry finds it
                super().clientConnectionFailed(connector, reason)

        factory = Factory()
        factory.clock = compat  # not the global reactor (Twisted's default too)
        compat.connectTCP("127.0.0.1", door.getsockname()[1], factory)
        run_until_stopped(compat.eventhub_reactor)
    assert events == ["failed: ConnectionRefusedError", "connected"]
    assert factory.retries == 0  # reset by buildProtocol
