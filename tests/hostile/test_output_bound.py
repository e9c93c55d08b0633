"""Many peers that do not read must not make the server buffer without bound, all together (issue 11).

Each connection's high-water mark bounds that one connection; a thousand slow
readers (or protocols that ignore ``pause_writing``) add up. Past the
reactor's ``max_buffered_output`` the connections with the most unsent data
are closed, biggest first, counted and logged once.
"""

from __future__ import annotations

import logging
import socket
import threading

import pytest
from reactor._util import HANG, Background, wait_for

from eventhub.protocol import Protocol, ServerFactory, Transport
from eventhub.reactor import Reactor
from eventhub.testing import run_until_stopped

KIB = 1024
SIZES = [150 * KIB, 300 * KIB, 450 * KIB, 600 * KIB]  # what the server sends each client, in order


class Blurt(Protocol):
    """Sends its client a fixed amount at once, ignoring pause_writing."""

    factory: BlurtFactory

    def connection_made(self, transport: Transport) -> None:
        super().connection_made(transport)
        self.size = SIZES[len(self.factory.sent)]
        self.factory.sent.append(self.size)
        transport.write(b"x" * self.size)

    def connection_lost(self, reason: BaseException | None) -> None:
        self.factory.lost.append((self.size, reason))
        if len(self.factory.lost) == 2:
            self.factory.shed.set()


class BlurtFactory(ServerFactory):
    protocol = Blurt

    def __init__(self) -> None:
        self.sent: list[int] = []
        self.lost: list[tuple[int, BaseException | None]] = []
        self.shed = threading.Event()


def test_past_the_bound_the_biggest_buffers_are_closed(
    reactor: Reactor, caplog: pytest.LogCaptureFixture
) -> None:
    reactor.output_bound.limit = 1024 * KIB  # the four buffers add up to ~1.5 MiB
    factory = BlurtFactory()
    port = reactor.listen_tcp(0, factory, socket_buffer=4096).get_host().port

    def clients() -> list[bool]:
        socks = []
        reset_at_once = set()
        try:
            for index, _ in enumerate(SIZES):  # one at a time, so the server writes in SIZES order
                sock = socket.socket()
                sock.settimeout(HANG)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # and reads nothing
                socks.append(sock)
                try:
                    sock.connect(("127.0.0.1", port))
                    sock.recv(1, socket.MSG_PEEK)  # served: its data is arriving
                except ConnectionResetError:
                    # The last one's write passes the bound: the server may accept, write and
                    # shed it (uvloop does, in one pass) before this thread sees it connected.
                    reset_at_once.add(index)
            wait_for(factory.shed, "closing two connections")
            return [index in reset_at_once or _was_reset(sock) for index, sock in enumerate(socks)]
        finally:
            for sock in socks:
                sock.close()
            reactor.call_from_thread(reactor.stop)

    background = Background(clients)
    with caplog.at_level(logging.WARNING, logger="eventhub.reactor"):
        run_until_stopped(reactor)
    reset = background.result()
    # The two biggest went (600 KiB, then 450 KiB), which brought the total under 3/4 of the bound.
    shed = factory.lost[:2]
    assert sorted(size for size, _ in shed) == [450 * KIB, 600 * KIB]
    assert all(isinstance(reason, BufferError) for _, reason in shed)
    assert reset == [False, False, True, True]
    assert reactor.output_bound.shed == 2
    assert reactor.output_bound.buffered == 0  # every connection is closed: nothing counted twice
    lines = [r.getMessage() for r in caplog.records if "output buffered" in r.getMessage()]
    assert len(lines) == 1
    assert "closed 2 connection(s) with the most unsent data" in lines[0]


def test_a_buffer_that_drained_unseen_does_not_count_against_the_bound(reactor: Reactor) -> None:
    # On the asyncio backends a connection learns its loop buffer's size only when
    # it writes or the loop pauses/resumes it: A's 90 KiB drain with no word
    # (its high-water mark is above them), so A still counts them when B's
    # 30 KiB pass the bound. The bound re-counts before it sheds: nothing is closed.
    reactor.output_bound.limit = 100 * KIB
    held: list[Transport] = []
    connected = threading.Event()
    checked = threading.Event()
    seen: dict[str, object] = {}

    class Holder(Protocol):
        def connection_made(self, transport: Transport) -> None:
            super().connection_made(transport)
            transport.set_write_buffer_limits(high=1024 * KIB)  # the loop never pauses it here
            held.append(transport)
            connected.set()

    factory = ServerFactory()
    factory.protocol = Holder
    port = reactor.listen_tcp(0, factory, socket_buffer=4096).get_host().port

    def write_then_check(transport: Transport, size: int) -> None:
        transport.write(b"x" * size)
        reactor.call_soon(check)  # after the shedding pass that write may have scheduled

    def check() -> None:
        seen.update(shed=reactor.output_bound.shed, closing=[t.is_closing() for t in held])
        checked.set()

    def open_one() -> socket.socket:
        connected.clear()
        sock = socket.socket()
        sock.settimeout(HANG)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", port))
        wait_for(connected, "accepting a connection")
        return sock

    def clients() -> None:
        with open_one() as a, open_one():  # B: connected, never reading
            reactor.call_from_thread(held[0].write, b"a" * 90 * KIB)
            got = 0
            while got < 90 * KIB:  # A's buffer drains to nothing as this reads
                got += len(a.recv(1 << 16))
            reactor.call_from_thread(write_then_check, held[1], 30 * KIB)
            wait_for(checked, "writing to B")
        reactor.call_from_thread(reactor.stop)

    background = Background(clients)
    run_until_stopped(reactor)
    background.result()
    assert seen == {"shed": 0, "closing": [False, False]}
    assert reactor.output_bound.buffered == 0


def _was_reset(sock: socket.socket) -> bool:
    """True when the server reset this connection (its unsent data discarded)."""
    sock.setblocking(False)
    try:
        while sock.recv(1 << 20):
            pass
    except ConnectionResetError:
        return True
    except BlockingIOError:
        return False
    return False
