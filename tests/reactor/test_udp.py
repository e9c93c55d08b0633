"""UDP on every backend: Python, socat and nc -u as peers; ICMP errors, drops, multicast."""

from __future__ import annotations

import logging
import shutil
import socket
from typing import Any

import pytest
from support import talk

from eventhub.errors import ServiceError
from eventhub.protocol import DatagramProtocol, DatagramTransport
from eventhub.reactor import Reactor
from eventhub.reactor._udp import UDPPort

from ._util import HANG, Background, run


class Echo(DatagramProtocol):
    def __init__(self) -> None:
        self.received: list[tuple[bytes, Any]] = []
        self.errors: list[OSError] = []
        self.lost: list[BaseException | None] = []

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.received.append((data, addr))
        assert self.transport is not None
        self.transport.write(data, addr)

    def error_received(self, exc: OSError) -> None:
        self.errors.append(exc)

    def connection_lost(self, reason: BaseException | None) -> None:
        self.lost.append(reason)


def serve_then(reactor: Reactor, client: Any, *args: Any) -> Any:
    def body() -> Any:
        try:
            return client(*args)
        finally:
            reactor.call_from_thread(reactor.stop)

    bg: list[Background[Any]] = []
    reactor.call_soon(lambda: bg.append(Background(body)))
    run(reactor)
    return bg[0].result()


def udp_echo(
    port: int, payloads: list[bytes], family: int = socket.AF_INET, host: str = "127.0.0.1"
) -> list[bytes]:
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.settimeout(HANG)
        got = []
        for payload in payloads:  # one at a time: loopback does not drop, but a burst could
            s.sendto(payload, (host, port))
            got.append(s.recv(65535))
        return got


def test_echo_to_python_clients(reactor: Reactor) -> None:
    protocol = Echo()
    port = reactor.listen_udp(0, protocol)
    assert isinstance(port, DatagramTransport) and protocol.transport is port
    number = port.get_host().port
    payloads = [b"", b"x", b"y" * 1000, b"z" * 65000]
    assert serve_then(reactor, udp_echo, number, payloads) == payloads
    assert [data for data, _ in protocol.received] == payloads
    assert protocol.lost == [None], "connection_lost after the reactor closed the port"


def test_ipv6(reactor: Reactor) -> None:
    if not socket.has_ipv6:
        pytest.skip("this Python has no IPv6")
    try:
        port = reactor.listen_udp(0, Echo(), interface="::1")
    except ServiceError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    assert serve_then(reactor, udp_echo, port.get_host().port, [b"six"], socket.AF_INET6, "::1") == [b"six"]


def test_a_port_in_use_is_a_service_error(reactor: Reactor) -> None:
    port = reactor.listen_udp(0, Echo())
    with pytest.raises(ServiceError, match=r"cannot listen on udp 127\.0\.0\.1:\d+: address already in use"):
        reactor.listen_udp(port.get_host().port, Echo())
    port.stop_listening()
    reactor.call_soon(reactor.stop)
    run(reactor)


@pytest.mark.e2e  # other programs
@pytest.mark.parametrize("tool", ["socat", "nc"])
def test_echo_to_socat_and_nc(reactor: Reactor, tool: str) -> None:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed (.ci/run installs it with apt-get)")
    protocol = Echo()
    number = reactor.listen_udp(0, protocol).get_host().port
    command = (
        [path, "-", f"UDP:127.0.0.1:{number}"] if tool == "socat" else [path, "-u", "127.0.0.1", str(number)]
    )

    def client() -> bytes:
        return talk(command, b"hello over udp\n")

    assert serve_then(reactor, client) == b"hello over udp\n"


def test_icmp_errors_reach_error_received_and_the_loop_survives(reactor: Reactor) -> None:
    protocol = Echo()
    port = reactor.listen_udp(0, protocol)
    closed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    closed.bind(("127.0.0.1", 0))
    nobody = closed.getsockname()
    closed.close()  # nobody listens there now: the kernel answers ICMP port-unreachable
    port.connect(nobody)

    def poke() -> None:
        port.write(b"anyone?")
        if protocol.errors:
            reactor.stop()
        else:
            reactor.call_later(0.01, poke)

    reactor.call_soon(poke)
    run(reactor)
    assert isinstance(protocol.errors[0], ConnectionRefusedError)
    assert port.is_closing(), "closed by the reactor's shutdown, not by the error"


def test_full_buffers_drop_the_datagram_and_count_it(reactor: Reactor) -> None:
    # A datagram socketpair: the kernel's queue toward a peer that does not read
    # fills after a few datagrams, and send says EAGAIN (loopback UDP never does).
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    protocol = Echo()
    port = UDPPort(reactor, protocol, mine)
    port.start()
    for _ in range(10_000):
        port.write(b"x" * 1024)
        if port.dropped:
            break
    assert port.dropped == 1 and protocol.errors == []
    port.stop_listening()
    theirs.close()
    reactor.call_soon(reactor.stop)
    run(reactor)


def test_an_exception_in_datagram_received_is_logged_and_the_port_serves_on(
    reactor: Reactor, caplog: pytest.LogCaptureFixture
) -> None:
    class Picky(Echo):
        def datagram_received(self, data: bytes, addr: Any) -> None:
            if data == b"bad":
                raise ValueError("bad datagram")
            super().datagram_received(data, addr)

    number = reactor.listen_udp(0, Picky()).get_host().port

    def client() -> list[bytes]:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(HANG)
            s.sendto(b"bad", ("127.0.0.1", number))
            s.sendto(b"good", ("127.0.0.1", number))
            return [s.recv(100)]

    with caplog.at_level(logging.ERROR, logger="eventhub.reactor"):
        assert serve_then(reactor, client) == [b"good"]
    assert "Picky.datagram_received raised" in caplog.text and "still serving" in caplog.text


def test_multicast_join_ttl_and_leave(reactor: Reactor) -> None:
    group = "239.255.77.77"
    receiver = Echo()
    port = reactor.listen_udp(0, receiver, interface="0.0.0.0", reuse_address=True)
    try:
        port.join_group(group, "127.0.0.1")
    except OSError as exc:
        port.stop_listening()
        reactor.call_soon(reactor.stop)
        run(reactor)
        pytest.skip(f"this host cannot join a multicast group on loopback: {exc}")
    got: list[bytes] = []
    unroutable: list[OSError] = []

    class Sender(DatagramProtocol):
        def datagram_received(self, data: bytes, addr: Any) -> None:
            got.append(data)
            port.leave_group(group, "127.0.0.1")
            reactor.stop()

        def error_received(self, exc: OSError) -> None:  # no multicast route here (ENETUNREACH)
            unroutable.append(exc)
            reactor.stop()

    sender_port = reactor.listen_udp(0, Sender())
    assert isinstance(sender_port, UDPPort)
    sender_port.set_outgoing_interface("127.0.0.1")
    sender_port.set_loopback(True)
    sender_port.set_ttl(1)
    assert sender_port.get_ttl() == 1
    sender_port.write(b"to the group", (group, port.get_host().port))
    run(reactor)
    if unroutable:
        pytest.skip(f"this host cannot send multicast on loopback: {unroutable[0]}")
    assert got == [b"to the group"], "the member echoed it back to the sender"
    assert receiver.received[0][0] == b"to the group"
