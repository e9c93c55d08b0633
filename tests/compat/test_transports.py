"""The compat reactor's UNIX, UDP and TLS methods, and ssl/tls/unix endpoint strings, on real sockets."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trustme

from eventhub.compat.twisted import ListeningPort, TwistedReactor, protocol
from eventhub.compat.twisted.internet import endpoints
from eventhub.compat.twisted.internet.address import IPv4Address, UNIXAddress
from eventhub.compat.twisted_protocol import ConnectionDone, Failure, TwistedConnector
from eventhub.reactor import Reactor
from eventhub.testing import HANG_TIMEOUT, run_until_stopped

from ._util import inet


class Echo(protocol.Protocol):
    def dataReceived(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)


class Client(protocol.Protocol):
    def connectionMade(self) -> None:
        assert self.transport is not None
        self.factory.peer = self.transport.getPeer()
        self.transport.write(b"hello")
        self.received = b""

    def dataReceived(self, data: bytes) -> None:
        self.received += data
        if self.received == b"hello":
            assert self.transport is not None
            self.transport.loseConnection()

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:
        self.factory.outcome = (self.received, reason.check(ConnectionDone))


class StoppingClientFactory(protocol.ClientFactory):
    protocol = Client

    def __init__(self, compat: TwistedReactor) -> None:
        self.compat = compat
        self.peer: Any = None
        self.outcome: Any = None
        self.failure: Failure | None = None

    def clientConnectionFailed(self, connector: TwistedConnector, reason: Failure) -> None:
        self.failure = reason
        self.compat.stop()

    def clientConnectionLost(self, connector: TwistedConnector, reason: Failure) -> None:
        self.compat.stop()


@pytest.fixture
def certs(tmp_path: Path) -> dict[str, Path]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    paths = {"ca": tmp_path / "ca.pem", "cert": tmp_path / "cert.pem", "key": tmp_path / "key.pem"}
    ca.cert_pem.write_to_path(str(paths["ca"]))
    cert.cert_chain_pems[0].write_to_path(str(paths["cert"]))
    cert.private_key_pem.write_to_path(str(paths["key"]))
    return paths


# -- UNIX ------------------------------------------------------------------------------


def test_listen_unix_and_connect_unix(tmp_path: Path) -> None:
    path = str(tmp_path / "echo.sock")
    compat = TwistedReactor(lambda: Reactor("select"))
    port = compat.listenUNIX(path, protocol.ServerFactory.forProtocol(Echo))
    assert port.getHost() == UNIXAddress(path)
    assert (Path(path).stat().st_mode & 0o777) == 0o666  # Twisted's default mode
    factory = StoppingClientFactory(compat)
    connector = compat.connectUNIX(path, factory, timeout=HANG_TIMEOUT)
    assert connector.getDestination() == UNIXAddress(path)
    run_until_stopped(compat.eventhub_reactor)
    assert factory.outcome == (b"hello", ConnectionDone)
    assert factory.peer == UNIXAddress(path)
    assert not Path(path).exists()  # removed on shutdown


def test_unix_want_pid_is_refused_clearly(tmp_path: Path) -> None:
    compat = TwistedReactor(lambda: Reactor("select"))
    with pytest.raises(NotImplementedError, match="wantPID"):
        compat.listenUNIX(str(tmp_path / "s"), protocol.ServerFactory.forProtocol(Echo), wantPID=1)


# -- UDP -------------------------------------------------------------------------------


class UDPEcho(protocol.DatagramProtocol):
    def __init__(self) -> None:
        self.events: list[object] = []

    def startProtocol(self) -> None:
        assert self.transport is not None
        self.events.append(("start", inet(self.transport.getHost()).type))

    def datagramReceived(self, data: bytes, addr: Any) -> None:
        assert self.transport is not None
        self.events.append(("datagram", data))
        self.transport.write(data.upper(), addr)
        if data == b"bye":
            self.transport.stopListening()

    def stopProtocol(self) -> None:
        self.events.append("stop")


def test_listen_udp_with_a_plain_socket_client() -> None:
    compat = TwistedReactor(lambda: Reactor("select"))
    proto = UDPEcho()
    port = compat.listenUDP(0, proto, interface="127.0.0.1", maxPacketSize=1024)
    assert proto.transport is port
    host = port.getHost()
    assert isinstance(host, IPv4Address) and host.type == "UDP" and host.host == "127.0.0.1"
    replies: list[bytes] = []

    def client() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(HANG_TIMEOUT)
            for word in (b"ping", b"bye"):
                sock.sendto(word, ("127.0.0.1", host.port))
                replies.append(sock.recv(100))
        compat.callFromThread(compat.callLater, 0.05, compat.stop)

    thread = threading.Thread(target=client)
    compat.callWhenRunning(thread.start)
    run_until_stopped(compat.eventhub_reactor)
    thread.join(HANG_TIMEOUT)
    assert replies == [b"PING", b"BYE"]
    assert proto.events == [("start", "UDP"), ("datagram", b"ping"), ("datagram", b"bye"), "stop"]
    assert port.disconnected


class Refused(protocol.DatagramProtocol):
    refused = False

    def startProtocol(self) -> None:
        assert self.transport is not None
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as closed:
            closed.bind(("127.0.0.1", 0))
            number = closed.getsockname()[1]
        self.transport.connect("127.0.0.1", number)
        self.transport.setTTL(2)
        self.transport.write(b"anyone?")

    def connectionRefused(self) -> None:
        self.refused = True
        assert self.transport is not None
        self.transport.stopListening()

    def stopProtocol(self) -> None:
        reactor.stop()


reactor: TwistedReactor


def test_udp_connect_and_connection_refused() -> None:
    global reactor
    reactor = TwistedReactor(lambda: Reactor("select"))
    proto = Refused()
    reactor.listenUDP(0, proto, interface="127.0.0.1")
    run_until_stopped(reactor.eventhub_reactor)
    assert proto.refused


# -- TLS -------------------------------------------------------------------------------


class ContextFactory:
    def __init__(self, context: ssl.SSLContext) -> None:
        self.context = context

    def getContext(self) -> ssl.SSLContext:
        return self.context


def test_listen_ssl_and_connect_ssl(certs: dict[str, Path]) -> None:
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(certs["cert"], certs["key"])
    client_ctx = ssl.create_default_context(cafile=str(certs["ca"]))
    compat = TwistedReactor(lambda: Reactor("select"))
    port = compat.listenSSL(0, protocol.ServerFactory.forProtocol(Echo), server_ctx, interface="127.0.0.1")
    factory = StoppingClientFactory(compat)
    compat.connectSSL(
        "127.0.0.1", inet(port.getHost()).port, factory, ContextFactory(client_ctx), timeout=HANG_TIMEOUT
    )
    run_until_stopped(compat.eventhub_reactor)
    assert factory.outcome == (b"hello", ConnectionDone)


def test_connect_ssl_with_an_untrusted_certificate_fails(certs: dict[str, Path]) -> None:
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(certs["cert"], certs["key"])
    compat = TwistedReactor(lambda: Reactor("select"))
    port = compat.listenSSL(0, protocol.ServerFactory.forProtocol(Echo), server_ctx, interface="127.0.0.1")
    factory = StoppingClientFactory(compat)
    compat.connectSSL("127.0.0.1", inet(port.getHost()).port, factory, ssl.create_default_context())
    run_until_stopped(compat.eventhub_reactor)
    assert factory.outcome is None and factory.failure is not None


def test_ssl_context_factories_other_than_ssl_contexts_are_refused() -> None:
    compat = TwistedReactor(lambda: Reactor("select"))
    factory = protocol.ServerFactory.forProtocol(Echo)
    with pytest.raises(TypeError, match="pyOpenSSL contexts are not supported"):
        compat.listenSSL(0, factory, object(), interface="127.0.0.1")
    with pytest.raises(TypeError, match="pyOpenSSL"):
        compat.connectSSL("127.0.0.1", 1, StoppingClientFactory(compat), ContextFactory(object()))  # type: ignore[arg-type]


# -- endpoint strings ------------------------------------------------------------------


def _endpoint_round_trip(
    compat: TwistedReactor, server: str, client: str
) -> list[IPv4Address | UNIXAddress | Failure]:
    """What the server listens on, then the client's peer (or how connecting failed)."""
    seen: list[IPv4Address | UNIXAddress | Failure] = []
    server_endpoint = endpoints.serverFromString(compat, server)

    def listening(port: ListeningPort) -> None:
        seen.append(port.getHost())
        d = endpoints.clientFromString(
            compat, client.format(port=getattr(port.getHost(), "port", 0))
        ).connect(protocol.Factory.forProtocol(protocol.Protocol))

        def connected(proto: protocol.Protocol) -> None:
            assert proto.transport is not None
            seen.append(proto.transport.getPeer())
            proto.transport.loseConnection()
            compat.callLater(0.05, compat.stop)

        def failed(failure: Failure) -> None:
            seen.append(failure)
            compat.stop()

        d.addCallbacks(connected, failed)

    server_endpoint.listen(protocol.ServerFactory.forProtocol(Echo)).addCallback(listening)
    run_until_stopped(compat.eventhub_reactor)
    return seen


def test_unix_endpoint_strings(tmp_path: Path) -> None:
    path = str(tmp_path / "ep.sock")
    compat = TwistedReactor(lambda: Reactor("select"))
    server = endpoints.serverFromString(compat, f"unix:{path}:mode=660")
    assert isinstance(server, endpoints.EventhubServerEndpoint)
    seen = _endpoint_round_trip(compat, f"unix:{path}:mode=660", f"unix:path={path}")
    assert seen == [UNIXAddress(path), UNIXAddress(path)]


@pytest.mark.parametrize("kind", ["ssl", "tls"])
def test_ssl_and_tls_endpoint_strings(kind: str, certs: dict[str, Path]) -> None:
    compat = TwistedReactor(lambda: Reactor("select"))
    # Twisted's ssl server string may name only privateKey (a PEM with both): give it one.
    both = certs["key"].parent / "both.pem"
    both.write_bytes(certs["key"].read_bytes() + certs["cert"].read_bytes())
    server = (
        f"{kind}:0:privateKey={both}"
        if kind == "ssl"
        else f"tls:0:certKey={certs['cert']}:privateKey={certs['key']}"
    )
    client = f"{kind}:host=127.0.0.1:port={{port}}:caCerts={certs['ca']}"
    seen = _endpoint_round_trip(compat, server, client)
    assert len(seen) == 2, seen
    host, peer = seen
    assert isinstance(host, IPv4Address) and isinstance(peer, IPv4Address), seen
    assert peer.port == host.port


def test_delegated_endpoint_errors_are_value_errors(tmp_path: Path) -> None:
    compat = TwistedReactor(lambda: Reactor("select"))
    with pytest.raises(ValueError, match=r"missing\.pem"):
        endpoints.serverFromString(compat, f"ssl:0:privateKey={tmp_path / 'missing.pem'}")


def test_the_unix_and_ssl_endpoint_classes(tmp_path: Path, certs: dict[str, Path]) -> None:
    path = str(tmp_path / "cls.sock")
    compat = TwistedReactor(lambda: Reactor("select"))
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(certs["cert"], certs["key"])
    client_ctx = ssl.create_default_context(cafile=str(certs["ca"]))
    seen: list[object] = []

    def round_trip(
        server: endpoints.TCP4ServerEndpoint | endpoints.UNIXServerEndpoint,
        make_client: Callable[[ListeningPort], endpoints.TCP4ClientEndpoint | endpoints.UNIXClientEndpoint],
        then: Callable[[], object],
    ) -> None:
        def listening(port: ListeningPort) -> None:
            client = make_client(port)

            def connected(proto: protocol.Protocol) -> None:
                assert proto.transport is not None
                seen.append(type(proto.transport.getPeer()).__name__)
                proto.transport.loseConnection()
                port.stopListening()
                then()

            client.connect(protocol.Factory.forProtocol(protocol.Protocol)).addCallback(connected)

        server.listen(protocol.ServerFactory.forProtocol(Echo)).addCallback(listening)

    def ssl_next() -> None:
        round_trip(
            endpoints.SSL4ServerEndpoint(compat, 0, server_ctx, interface="127.0.0.1"),
            lambda port: endpoints.SSL4ClientEndpoint(
                compat, "127.0.0.1", inet(port.getHost()).port, client_ctx
            ),
            lambda: compat.callLater(0.05, compat.stop),
        )

    round_trip(
        endpoints.UNIXServerEndpoint(compat, path),
        lambda port: endpoints.UNIXClientEndpoint(compat, path),
        ssl_next,
    )
    run_until_stopped(compat.eventhub_reactor)
    assert seen == ["UNIXAddress", "IPv4Address"]
