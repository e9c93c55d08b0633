"""MemoryReactor's TLS, UNIX and UDP methods: recorded like listen_tcp, driven by the test."""

from __future__ import annotations

import ssl
from typing import Any

import pytest

from eventhub.errors import ServiceError, UsageError
from eventhub.protocol import ClientFactory, DatagramProtocol, Protocol, ServerFactory, UNIXAddress
from eventhub.reactor import ReactorAPI
from eventhub.testing import MemoryDatagramPort, MemoryReactor, StringTransport


def factory() -> ServerFactory:
    f = ServerFactory()
    f.protocol = Protocol
    return f


def test_listen_and_connect_tls_are_recorded() -> None:
    reactor = MemoryReactor()
    assert isinstance(reactor, ReactorAPI)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    listener = reactor.listen_tls(0, factory(), context, interface="0.0.0.0")
    call = reactor.tls_servers[0]
    assert (call.context, call.interface, call.listener) == (context, "0.0.0.0", listener)
    protocol, transport = listener.accept()
    assert isinstance(transport, StringTransport) and protocol is not None
    transport.extra["alpn_protocol"] = "h2"
    assert transport.get_extra("alpn_protocol") == "h2" and transport.get_extra("cipher", "none") == "none"
    with pytest.raises(ServiceError, match="address already in use"):
        reactor.listen_tls(listener.get_host().port, factory(), context, interface="0.0.0.0")
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    connector = reactor.connect_tls(
        "example.org", 443, ClientFactory(), client, server_hostname="example.org"
    )
    assert reactor.tls_clients[0].server_hostname == "example.org"
    connector.stop_connecting()
    listener.stop_listening()


def test_unix_listeners_have_unix_addresses() -> None:
    reactor = MemoryReactor()
    listener = reactor.listen_unix("/run/app.sock", factory(), mode=0o660)
    assert listener.get_host() == UNIXAddress("/run/app.sock")
    assert reactor.unix_servers[0].mode == 0o660
    with pytest.raises(ServiceError):
        reactor.listen_unix("/run/app.sock", factory())
    listener.stop_listening()


def test_a_memory_datagram_port_records_writes_and_plays_datagrams() -> None:
    reactor = MemoryReactor()
    seen: list[Any] = []

    class Echo(DatagramProtocol):
        def datagram_received(self, data: bytes, addr: Any) -> None:
            seen.append((data, addr))
            assert self.transport is not None
            self.transport.write(data, addr)

        def connection_lost(self, reason: BaseException | None) -> None:
            seen.append("lost")

    port = reactor.listen_udp(9000, Echo())
    assert isinstance(port, MemoryDatagramPort) and reactor.udp_servers[0].port_object is port
    port.receive(b"ping", ("10.0.0.1", 5000))
    assert port.written == [(b"ping", ("10.0.0.1", 5000))]
    with pytest.raises(UsageError, match="needs addr"):
        port.write(b"x")
    port.connect(("10.0.0.2", 53))
    port.write(b"query")
    port.join_group("239.1.2.3")
    port.set_ttl(4)
    assert port.written[-1] == (b"query", None) and port.groups == {("239.1.2.3", "")} and port.ttl == 4
    reactor.run()  # nothing to run: shuts down, stopping the port
    assert seen[-1] == "lost" and port.is_closing()
