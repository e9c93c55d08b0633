"""A listener on ``::`` sees IPv4 peers as ``::ffff:a.b.c.d``: addresses must still compare as IPv4."""

from __future__ import annotations

import socket

import pytest
from echo_support import EchoServer, assert_clean_exit, is_closed_by_peer
from reactor._util import Background, run
from support import PluginVenv

from eventhub.protocol import Address, Protocol, ServerFactory, Transport
from eventhub.reactor import Reactor
from hostile._util import has_dual_stack

pytestmark = pytest.mark.skipif(not has_dual_stack(), reason="no dual-stack IPv6 sockets here")


class Recorder(Protocol):
    """Records the addresses its transport reports, then closes (and stops the reactor)."""

    def connection_made(self, transport: Transport) -> None:
        super().connection_made(transport)
        self.factory.seen.append((transport.get_peer(), transport.get_host()))
        transport.lose_connection()

    def connection_lost(self, reason: BaseException | None) -> None:
        self.factory.reactor.stop()


class RecordingFactory(ServerFactory):
    protocol = Recorder

    def __init__(self, reactor: Reactor) -> None:
        self.reactor = reactor
        self.built: list[Address] = []
        self.seen: list[tuple[Address, Address]] = []

    def build_protocol(self, addr: Address) -> Protocol | None:
        self.built.append(addr)
        return super().build_protocol(addr)


def connect_and_wait_for_close(port: int) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        local = sock.getsockname()[1]
        assert is_closed_by_peer(sock)
    return int(local)


def test_an_ipv4_peer_of_a_dual_stack_listener_is_an_ipv4_address(reactor: Reactor) -> None:
    factory = RecordingFactory(reactor)
    listener = reactor.listen_tcp(0, factory, interface="::")
    port = listener.get_host().port
    client = Background(connect_and_wait_for_close, port)
    run(reactor)
    local = client.result()
    listener.stop_listening()
    peer = Address("127.0.0.1", local, socket.AF_INET)
    assert factory.built == [peer]
    assert factory.seen == [(peer, Address("127.0.0.1", port, socket.AF_INET))]
    assert str(peer) == f"127.0.0.1:{local}"  # and so in every log line


def test_connlog_lists_apply_to_ipv4_clients_of_a_dual_stack_echo(
    hostile_venv: PluginVenv, backend: str
) -> None:
    # 127.0.0.0/8 is allowed, 127.0.0.2 is denied: both lists must see IPv4 addresses.
    args = ("--backend", backend, "--only", "echo,connlog", "--set", "echo.host=::")
    lists = ("--set", 'connlog.allow=["127.0.0.0/8"]', "--set", 'connlog.deny=["127.0.0.2"]')
    with EchoServer(hostile_venv, *args, *lists, wait=False) as server:
        port = int(server.wait_for(r"eventhub\.echo: INFO: listening on \[::\]:(\d+)").group(1))
        with socket.create_connection(("127.0.0.1", port), timeout=10) as allowed:
            allowed.sendall(b"ping")
            assert allowed.recv(4) == b"ping"
            local = allowed.getsockname()[1]
        server.wait_for(rf"eventhub\.connlog: INFO: echo: connection from 127\.0\.0\.1:{local}$")
        source = ("127.0.0.2", 0)
        with socket.create_connection(("127.0.0.1", port), timeout=10, source_address=source) as denied:
            local = denied.getsockname()[1]
            assert is_closed_by_peer(denied)
        server.wait_for(rf"echo: refused 127\.0\.0\.2:{local}: denied by 127\.0\.0\.2/32$")
        assert_clean_exit(*server.finish())


@pytest.mark.parametrize(
    ("sockaddr", "family", "expected"),
    [
        (("::ffff:192.0.2.7", 80, 0, 0), socket.AF_INET6, Address("192.0.2.7", 80, socket.AF_INET)),
        (("::FFFF:10.0.0.1", 80, 0, 0), None, Address("10.0.0.1", 80, socket.AF_INET)),
        (("::ffff:10.0.0.1", 80), socket.AF_INET, Address("10.0.0.1", 80, socket.AF_INET)),
        (("::1", 80, 0, 0), socket.AF_INET6, Address("::1", 80, socket.AF_INET6)),
        (("::ffff:c000:207", 80, 0, 0), socket.AF_INET6, Address("192.0.2.7", 80, socket.AF_INET)),
        (("::ffff:0:1:2", 80, 0, 0), socket.AF_INET6, Address("::ffff:0:1:2", 80, socket.AF_INET6)),
        (("192.0.2.7", 80), socket.AF_INET, Address("192.0.2.7", 80, socket.AF_INET)),
    ],
)
def test_ipv4_mapped_addresses_become_ipv4(
    sockaddr: tuple[object, ...], family: int | None, expected: Address
) -> None:
    assert Address.from_sockaddr(sockaddr, family) == expected
