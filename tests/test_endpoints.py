"""Endpoint strings: every form parsed, every malformed one refused with its position and expectation."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest
import trustme
from reactor.conftest import reactor_backend  # the real-reactor tests below: once per backend

from eventhub.endpoints import EndpointError, client_from_string, parse, server_from_string
from eventhub.errors import UsageError
from eventhub.protocol import (
    ClientFactory,
    Connector,
    DatagramTransport,
    Protocol,
    ServerFactory,
    Transport,
    UNIXAddress,
)
from eventhub.reactor import Reactor
from eventhub.testing import MemoryReactor

__all__ = ["reactor_backend"]

SERVERS: list[tuple[str, str, dict[str, Any]]] = [
    ("tcp:8000", "tcp", {"port": 8000, "interface": "127.0.0.1"}),
    ("tcp:0", "tcp", {"port": 0, "interface": "127.0.0.1"}),
    ("tcp:port=8000", "tcp", {"port": 8000, "interface": "127.0.0.1"}),
    ("TCP:8000", "tcp", {"port": 8000, "interface": "127.0.0.1"}),
    ("tcp:8000:interface=0.0.0.0", "tcp", {"port": 8000, "interface": "0.0.0.0"}),
    ("tcp:8000:interface=", "tcp", {"port": 8000, "interface": ""}),
    ("tcp:8000:backlog=5", "tcp", {"port": 8000, "interface": "127.0.0.1", "backlog": 5}),
    ("tcp:interface=10.0.0.1:port=80", "tcp", {"port": 80, "interface": "10.0.0.1"}),
    ("tcp6:8000", "tcp", {"port": 8000, "interface": "::1"}),
    ("tcp6:8000:interface=\\:\\:1", "tcp", {"port": 8000, "interface": "::1"}),
    ("tcp6:8000:interface=\\:\\:", "tcp", {"port": 8000, "interface": "::"}),
    ("unix:/run/app.sock", "unix", {"address": "/run/app.sock"}),
    ("unix:/run/app.sock:mode=660", "unix", {"address": "/run/app.sock", "mode": 0o660}),
    ("unix:address=/run/a\\:b.sock:backlog=3", "unix", {"address": "/run/a:b.sock", "backlog": 3}),
    ("unix:\\0name", "unix", {"address": "\0name"}),
    ("udp:9000", "udp", {"port": 9000, "interface": "127.0.0.1"}),
    ("udp:9000:interface=0.0.0.0", "udp", {"port": 9000, "interface": "0.0.0.0"}),
]

CLIENTS: list[tuple[str, str, dict[str, Any]]] = [
    ("tcp:host=example.org:port=80", "tcp", {"host": "example.org", "port": 80}),
    ("tcp:example.org:80", "tcp", {"host": "example.org", "port": 80}),
    ("tcp:host=\\:\\:1:port=80:timeout=2.5", "tcp", {"host": "::1", "port": 80, "timeout": 2.5}),
    ("tls:host=example.org:port=443", "tls", {"host": "example.org", "port": 443}),
    ("ssl:host=example.org:port=443", "tls", {"host": "example.org", "port": 443}),
    ("unix:path=/run/app.sock", "unix", {"path": "/run/app.sock"}),
    ("unix:/run/app.sock:timeout=1", "unix", {"path": "/run/app.sock", "timeout": 1.0}),
]

MALFORMED_SERVERS = [
    ("", "at position 0: expected a kind (tcp, tcp6, tls, unix, udp), got nothing"),
    ("tcp", "at position 3: expected port= (a port number from 0 to 65535), got the end"),
    ("tcp:", "at position 4: expected port: a port number from 0 to 65535, got ''"),
    ("tcp:abc", "at position 4: expected port: a port number from 0 to 65535, got 'abc'"),
    ("tcp:70000", "at position 4: expected port: a port number from 0 to 65535, got '70000'"),
    ("tcp:80:bogus", "at position 7: expected key=value (port=, interface=, backlog=), got 'bogus'"),
    ("tcp:80:colour=red", "at position 7: expected one of the keys port, interface, backlog, got 'colour'"),
    ("tcp:80:port=81", "at position 7: expected port given once, got port again"),
    ("tcp:80:backlog=0", "at position 15: expected backlog: a backlog (an integer >= 1), got '0'"),
    ("tcp:80:=x", "at position 7: expected a key before '=', got '='"),
    ("tcp:80:interface=a\\", "at position 18: expected a character after the escape '\\', got the end"),
    (
        "sctp:80",
        "at position 0: expected a server endpoint kind (ssl, tcp, tcp6, tls, udp, unix), got 'sctp'",
    ),
    ("unix:", "at position 5: expected address: a socket path, got ''"),
    ("unix:/x:mode=999", "at position 13: expected mode: an octal file mode (such as 660), got '999'"),
    ("tls:8443", "at position 8: expected certKey= (a file name), got the end"),
    ("udp:9000:backlog=1", "at position 9: expected one of the keys port, interface, got 'backlog'"),
]

MALFORMED_CLIENTS = [
    ("tcp:host=a", "at position 10: expected port= (a port number from 1 to 65535), got the end"),
    ("tcp:host=a:port=0", "at position 17: expected port: a port number from 1 to 65535, got 0"),
    ("tcp:a:80:timeout=-1", "at position 17: expected timeout: a timeout in seconds (> 0), got '-1'"),
    ("tcp:a:80:x", "at position 9: expected key=value (host=, port=, timeout=), got 'x'"),
    ("udp:host=a:port=1", "at position 0: expected a client endpoint kind (ssl, tcp, tls, unix), got 'udp'"),
    ("unix:", "at position 5: expected path: a socket path, got ''"),
]


@pytest.mark.parametrize(("text", "kind", "options"), SERVERS)
def test_server_forms(text: str, kind: str, options: dict[str, Any]) -> None:
    endpoint = server_from_string(MemoryReactor(), text)
    assert (endpoint.kind, endpoint.options) == (kind, options)
    assert str(endpoint) == text


@pytest.mark.parametrize(("text", "kind", "options"), CLIENTS)
def test_client_forms(text: str, kind: str, options: dict[str, Any]) -> None:
    endpoint = client_from_string(MemoryReactor(), text)
    assert (endpoint.kind, endpoint.options) == (kind, options)


@pytest.mark.parametrize(("text", "message"), MALFORMED_SERVERS)
def test_malformed_server_strings_say_where_and_what(text: str, message: str) -> None:
    with pytest.raises(EndpointError) as info:
        server_from_string(MemoryReactor(), text)
    assert str(info.value) == f"endpoint {text!r}: {message}"
    assert isinstance(info.value, UsageError) and info.value.exit_status == 2


@pytest.mark.parametrize(("text", "message"), MALFORMED_CLIENTS)
def test_malformed_client_strings_say_where_and_what(text: str, message: str) -> None:
    with pytest.raises(EndpointError) as info:
        client_from_string(MemoryReactor(), text)
    assert str(info.value) == f"endpoint {text!r}: {message}"


def test_parse_keeps_positions_and_resolves_escapes() -> None:
    kind, fields = parse("tcp6:8000:interface=\\:\\:1")
    assert kind == "tcp6"
    assert [(f.key, f.value, f.position) for f in fields] == [(None, "8000", 5), ("interface", "::1", 10)]


# -- certificates -----------------------------------------------------------------


@pytest.fixture
def pems(tmp_path: Path) -> dict[str, str]:
    ca = trustme.CA()
    cert = ca.issue_cert("localhost")
    other = ca.issue_cert("other.example")
    paths = {
        "chain": tmp_path / "chain.pem",
        "key": tmp_path / "key.pem",
        "other_key": tmp_path / "other-key.pem",
        "ca": tmp_path / "ca.pem",
        "garbage": tmp_path / "garbage.pem",
    }
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "both.pem"))
    for blob in cert.cert_chain_pems:
        blob.write_to_path(str(paths["chain"]), append=True)
    cert.private_key_pem.write_to_path(str(paths["key"]))
    other.private_key_pem.write_to_path(str(paths["other_key"]))
    ca.cert_pem.write_to_path(str(paths["ca"]))
    paths["garbage"].write_text("not a certificate\n")
    out = {name: str(path) for name, path in paths.items()}
    out["both"] = str(tmp_path / "both.pem")
    return out


def test_tls_server_context_from_files(pems: dict[str, str]) -> None:
    endpoint = server_from_string(MemoryReactor(), f"tls:8443:certKey={pems['both']}")
    assert endpoint.kind == "tls" and isinstance(endpoint.context, ssl.SSLContext)
    assert endpoint.context.verify_mode == ssl.CERT_NONE
    text = f"tls:8443:certKey={pems['chain']}:privateKey={pems['key']}:caCerts={pems['ca']}"
    endpoint = server_from_string(MemoryReactor(), text)
    assert endpoint.context is not None and endpoint.context.verify_mode == ssl.CERT_REQUIRED


def test_tls_client_context_trusts_the_given_ca(pems: dict[str, str]) -> None:
    endpoint = client_from_string(MemoryReactor(), f"tls:host=localhost:port=1:caCerts={pems['ca']}")
    assert endpoint.context is not None and endpoint.context.verify_mode == ssl.CERT_REQUIRED
    assert endpoint.context.check_hostname


@pytest.mark.parametrize(
    ("fields", "named", "why"),
    [
        ("certKey={tmp}/missing.pem", "certKey {tmp}/missing.pem", "No such file or directory"),
        ("certKey={chain}:privateKey={tmp}/nokey.pem", "privateKey {tmp}/nokey.pem", "No such file"),
        ("certKey={chain}:privateKey={other_key}", "certificate {chain} and {other_key}", "cannot use it"),
        ("certKey={garbage}", "certificate {garbage}", "cannot use it"),
        ("certKey={both}:caCerts={garbage}", "caCerts {garbage}", "not PEM certificates"),
    ],
)
def test_unusable_certificate_files_are_named(
    pems: dict[str, str], tmp_path: Path, fields: str, named: str, why: str
) -> None:
    names = {**pems, "tmp": str(tmp_path)}
    text = "tls:8443:" + fields.format(**names)
    with pytest.raises(EndpointError) as info:
        server_from_string(MemoryReactor(), text)
    message = str(info.value)
    assert message.startswith(f"endpoint {text!r}: TLS {named.format(**names)}")
    assert why in message


# -- listen and connect -----------------------------------------------------------


def test_listen_and_connect_reach_the_reactor() -> None:
    reactor = MemoryReactor()
    factory = ServerFactory()
    factory.protocol = Protocol
    listener = server_from_string(reactor, "tcp:8000:interface=0.0.0.0:backlog=7").listen(factory)
    assert reactor.tcp_servers[0].port == 8000
    assert (reactor.tcp_servers[0].interface, reactor.tcp_servers[0].backlog) == ("0.0.0.0", 7)
    unix = server_from_string(reactor, "unix:/tmp/x.sock:mode=660").listen(factory)
    assert (reactor.unix_servers[0].path, reactor.unix_servers[0].mode) == ("/tmp/x.sock", 0o660)
    client = ClientFactory()
    client_from_string(reactor, "tcp:host=example.org:port=80:timeout=3").connect(client)
    assert (reactor.tcp_clients[0].host, reactor.tcp_clients[0].port) == ("example.org", 80)
    assert reactor.tcp_clients[0].timeout == 3.0
    client_from_string(reactor, "unix:path=/tmp/x.sock").connect(client)
    assert reactor.unix_clients[0].path == "/tmp/x.sock"
    listener.stop_listening()
    unix.stop_listening()
    for call in reactor.tcp_clients + reactor.unix_clients:
        call.connector.stop_connecting()


def test_udp_endpoint_listens_with_a_datagram_protocol() -> None:
    from eventhub.protocol import DatagramProtocol

    reactor = MemoryReactor()
    protocol = DatagramProtocol()
    port = server_from_string(reactor, "udp:9000:interface=0.0.0.0").listen(protocol)
    assert reactor.udp_servers[0].interface == "0.0.0.0" and protocol.transport is port
    port.stop_listening()


def test_every_server_kind_on_a_real_reactor(reactor: Reactor, pems: dict[str, str], tmp_path: Path) -> None:
    from eventhub.protocol import DatagramProtocol

    factory = ServerFactory()
    factory.protocol = Protocol
    listeners = [
        server_from_string(reactor, text).listen(factory)
        for text in (
            "tcp:0",
            f"tls:0:certKey={pems['chain']}:privateKey={pems['key']}",
            f"unix:{tmp_path}/e.sock:mode=600",
        )
    ]
    listeners.append(server_from_string(reactor, "udp:0").listen(DatagramProtocol()))
    assert isinstance(listeners[2].get_host(), UNIXAddress) and isinstance(listeners[3], DatagramTransport)
    assert all(x.get_host().port > 0 for x in (listeners[0], listeners[1], listeners[3]))
    assert (tmp_path / "e.sock").exists()
    for listener in listeners:
        listener.stop_listening()
    reactor.call_soon(reactor.stop)
    reactor.run(install_signal_handlers=False)
    assert not (tmp_path / "e.sock").exists()


def test_every_client_kind_on_a_real_reactor(reactor: Reactor, pems: dict[str, str], tmp_path: Path) -> None:
    class Echo(Protocol):
        def data_received(self, data: bytes) -> None:
            assert self.transport is not None
            self.transport.write(data)

    server = ServerFactory()
    server.protocol = Echo
    tcp = server_from_string(reactor, "tcp:0").listen(server)
    tls = server_from_string(reactor, f"tls:0:certKey={pems['both']}").listen(server)
    unix = server_from_string(reactor, f"unix:{tmp_path}/c.sock").listen(server)
    clients = [
        f"tcp:host=127.0.0.1:port={tcp.get_host().port}",
        f"tls:host=localhost:port={tls.get_host().port}:caCerts={pems['ca']}",
        f"unix:path={tmp_path}/c.sock",
    ]
    heard: list[tuple[str, bytes | BaseException]] = []

    class Ping(Protocol):
        def connection_made(self, transport: Transport) -> None:
            super().connection_made(transport)
            transport.write(b"ping")

        def data_received(self, data: bytes) -> None:
            heard.append((self.factory.text, data))
            assert self.transport is not None
            self.transport.lose_connection()

    class Client(ClientFactory):
        protocol = Ping

        def __init__(self, text: str) -> None:
            self.text = text

        def client_connection_lost(self, connector: Connector, reason: BaseException | None) -> None:
            if len(heard) == len(clients):
                reactor.stop()

        def client_connection_failed(self, connector: Connector, reason: BaseException) -> None:
            heard.append((self.text, reason))
            reactor.stop()

    for text in clients:
        client_from_string(reactor, text).connect(Client(text))
    timer = reactor.call_later(20, reactor.stop)  # a hang guard
    reactor.run(install_signal_handlers=False)
    timer.cancel()
    assert sorted(heard) == sorted((text, b"ping") for text in clients)
    for listener in (tcp, tls, unix):
        listener.stop_listening()
