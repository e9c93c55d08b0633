"""The receivers on the real reactor, every backend, real sockets on loopback."""

from __future__ import annotations

import socket
import threading

import pytest

from eventhub.protocol import ServerFactory
from eventhub.protocols import LineReceiver, LineTooLong
from eventhub.reactor import Reactor, available_backends
from eventhub.testing import HANG_TIMEOUT, run_until_stopped

BACKENDS = [b for b in ("select", "poll", "epoll", "asyncio", "uvloop") if b in available_backends()]


class Shout(LineReceiver):
    max_length = 64

    def line_received(self, line: bytes) -> None:
        self.send_line(line.upper())

    def connection_lost(self, reason: BaseException | None) -> None:
        self.factory.lost.append((self.framing_error, reason))
        self.factory.reactor.stop()


class ShoutFactory(ServerFactory):
    protocol = Shout

    def __init__(self, reactor: Reactor) -> None:
        self.reactor = reactor
        self.lost: list[tuple[object, object]] = []


def _client(port: int, wire: bytes, replies: list[bytes]) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=HANG_TIMEOUT) as sock:
        sock.sendall(wire)
        while chunk := sock.recv(65536):  # until the server closes
            replies.append(chunk)


@pytest.mark.parametrize("backend", BACKENDS)
def test_over_long_line_flushes_replies_then_closes(backend: str) -> None:
    reactor = Reactor(backend)
    factory = ShoutFactory(reactor)
    port = reactor.listen_tcp(0, factory).get_host().port
    replies: list[bytes] = []
    wire = b"one\r\ntwo\r\n" + b"x" * 1000
    client = threading.Thread(target=_client, args=(port, wire, replies), daemon=True)
    client.start()
    run_until_stopped(reactor)
    client.join(HANG_TIMEOUT)
    assert not client.is_alive()
    assert b"".join(replies) == b"ONE\r\nTWO\r\n"
    [(error, reason)] = factory.lost
    assert isinstance(error, LineTooLong)
    assert reason is None  # a clean close after flushing: see framing_error for why
