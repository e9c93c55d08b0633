"""TCP on every backend, with real sockets on loopback: serving, faults, flow control, closing."""

from __future__ import annotations

import array
import errno
import logging
import os
import re
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import pytest

from eventhub.errors import ServiceError, UsageError
from eventhub.protocol import Address, ClientFactory, Connector, Protocol, ServerFactory, Transport
from eventhub.reactor import Connection, Reactor
from eventhub.reactor._pollers import ASYNCIO_BACKENDS

from ._util import (
    HANG,
    Background,
    Echo,
    Recorder,
    connect,
    factory_for,
    pattern,
    pending_timers,
    recv_all,
    run,
    wait_for,
)

if TYPE_CHECKING:
    from socket import _GetAddrInfoResult

    from _typeshed import ReadableBuffer

T = TypeVar("T")


def echo_once(port: int, payload: bytes, host: str = "127.0.0.1") -> bytes:
    """Send, half-close, read to the end. A connection the server dropped reads as b""."""
    with connect(port, host) as s:
        try:
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)
        except OSError:  # reset, or not connected any more: the server closed it first
            return b""
        return recv_all(s)


def serve_then(reactor: Reactor, client: Callable[..., T], *args: object) -> T:
    """Run ``client(*args)`` on a thread while the reactor serves; stop when it is done."""

    def body() -> T:
        try:
            return client(*args)
        finally:
            reactor.call_from_thread(reactor.stop)

    bg: list[Background[T]] = []
    reactor.call_soon(lambda: bg.append(Background(body)))
    run(reactor)
    result: T = bg[0].result()
    return result


# -- serving ------------------------------------------------------------------


def test_echo_round_trip_many_clients(reactor: Reactor) -> None:
    port = reactor.listen_tcp(0, factory_for(Echo)).get_host().port

    def clients() -> list[bytes]:
        return [echo_once(port, b"hello %d" % i * 100) for i in range(20)]

    assert serve_then(reactor, clients) == [b"hello %d" % i * 100 for i in range(20)]


def test_port_zero_is_read_back_and_addresses_are_right(reactor: Reactor) -> None:
    listener = reactor.listen_tcp(0, factory_for(Echo))
    host = listener.get_host()
    assert isinstance(host, Address)
    assert host.host == "127.0.0.1" and host.port > 0 and host.family == socket.AF_INET
    assert str(host) == f"127.0.0.1:{host.port}"
    seen: list[tuple[Address, Address]] = []

    class Peek(Protocol):
        def connection_made(self, transport: Transport) -> None:
            seen.append((transport.get_peer(), transport.get_host()))
            transport.lose_connection()

    listener2 = reactor.listen_tcp(0, factory_for(Peek))
    port2 = listener2.get_host().port

    def client() -> int:
        with connect(port2) as s:
            recv_all(s)
            return int(s.getsockname()[1])

    client_port = serve_then(reactor, client)
    ((peer, local),) = seen
    assert peer == Address("127.0.0.1", client_port)
    assert local == Address("127.0.0.1", port2)


def test_port_in_use_is_a_one_line_service_error(reactor: Reactor) -> None:
    first = reactor.listen_tcp(0, factory_for(Echo))
    taken = first.get_host().port
    with pytest.raises(ServiceError) as info:
        reactor.listen_tcp(taken, factory_for(Echo))
    first.stop_listening()
    message = str(info.value)
    assert f"127.0.0.1:{taken}" in message and "in use" in message
    assert "\n" not in message


@pytest.mark.parametrize("port", [-1, 65536, 70000, "80", 8.0, True])
def test_bad_port_is_a_usage_error_naming_it(reactor: Reactor, port: object) -> None:
    # Out of range, and of the wrong type on purpose.
    with pytest.raises(UsageError, match=re.escape(repr(port))):
        reactor.listen_tcp(port, factory_for(Echo))  # type: ignore[arg-type]
    with pytest.raises(UsageError, match=re.escape(repr(port))):
        reactor.connect_tcp("127.0.0.1", port, ClientFactory())  # type: ignore[arg-type]


def test_unusable_interface_is_a_service_error(reactor: Reactor) -> None:
    with pytest.raises(ServiceError, match=r"no-such-host\.invalid"):
        reactor.listen_tcp(0, factory_for(Echo), interface="no-such-host.invalid")


def test_stop_listening_refuses_new_connections_keeps_old_ones(reactor: Reactor) -> None:
    listener = reactor.listen_tcp(0, factory_for(Echo))
    port = listener.get_host().port
    stopped = threading.Event()

    def stop_listening() -> None:
        listener.stop_listening()
        stopped.set()

    def client() -> tuple[bytes, type[BaseException] | None]:
        with connect(port) as s:
            s.sendall(b"one")
            first = s.recv(10)
            reactor.call_from_thread(stop_listening)
            wait_for(stopped, "stop_listening")
            s.sendall(b"two")
            second = s.recv(10)
        try:
            connect(port).close()
        except ConnectionRefusedError as exc:
            return first + second, type(exc)
        return first + second, None

    assert serve_then(reactor, client) == (b"onetwo", ConnectionRefusedError)
    listener.stop_listening()  # idempotent


def test_ipv6_loopback(reactor: Reactor) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 support in this Python")
    try:
        listener = reactor.listen_tcp(0, factory_for(Echo), interface="::1")
    except ServiceError as exc:
        pytest.skip(f"::1 not available here: {exc}")
    host = listener.get_host()
    assert host.host == "::1" and host.family == socket.AF_INET6
    assert str(host) == f"[::1]:{host.port}"
    assert serve_then(reactor, echo_once, host.port, b"six" * 1000, "::1") == b"six" * 1000


class V6OnlyByDefault(socket.socket):
    """IPv6 sockets as Windows makes them, or Linux with net.ipv6.bindv6only=1: IPv6 only unless told."""

    def __init__(self, family: int = -1, type: int = -1, proto: int = -1, fileno: int | None = None) -> None:
        super().__init__(family, type, proto, fileno)
        if fileno is None and self.family == socket.AF_INET6:
            self.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)


def test_listening_on_all_ipv6_interfaces_takes_ipv4_too(
    reactor: Reactor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Listening on "::" is every interface, IPv4 included, whatever the system's default for IPv6.

    It listens on port 0 and only as long as two loopback clients take; they
    connect to 127.0.0.1 and ::1, nowhere else.
    """
    if not socket.has_ipv6:
        pytest.skip("no IPv6 support in this Python")
    monkeypatch.setattr(socket, "socket", V6OnlyByDefault)
    try:
        listener = reactor.listen_tcp(0, factory_for(Echo), interface="::")
    except ServiceError as exc:
        pytest.skip(f"cannot listen on :: here: {exc}")
    port = listener.get_host().port

    def clients() -> list[bytes]:
        try:
            return [echo_once(port, b"four", "127.0.0.1"), echo_once(port, b"six", "::1")]
        finally:
            reactor.call_from_thread(listener.stop_listening)

    assert serve_then(reactor, clients) == [b"four", b"six"]


def test_factory_start_and_stop_hooks(reactor: Reactor) -> None:
    calls: list[str] = []

    class Hooked(ServerFactory):
        protocol = Echo

        def start_factory(self) -> None:
            calls.append("start")

        def stop_factory(self) -> None:
            calls.append("stop")

    f = Hooked()
    a = reactor.listen_tcp(0, f)
    b = reactor.listen_tcp(0, f)
    assert calls == ["start"]
    a.stop_listening()
    assert calls == ["start"]
    b.stop_listening()
    assert calls == ["start", "stop"]


def test_callback_order_for_a_clean_close(reactor: Reactor) -> None:
    events: list[Any] = []

    class Rec(Recorder):
        pass

    Rec.events = events
    port = reactor.listen_tcp(0, factory_for(Rec)).get_host().port

    def client() -> None:
        with connect(port) as s:
            s.sendall(b"abc")
            threading.Event().wait(0.05)
            s.shutdown(socket.SHUT_WR)
            recv_all(s)

    serve_then(reactor, client)
    assert events[0] == "made"
    assert b"".join(e[1] for e in events[1:-2]) == b"abc"
    assert events[-2:] == ["eof", ("lost", None)]


# -- faults ---------------------------------------------------------------------


class Faulty(Echo):
    """Raises from the callback named by the first bytes it receives (or at once)."""

    fail_in = ""
    lost: list[BaseException | None]
    filled: threading.Event  # set once data_received has buffered (pause/resume_writing)

    def connection_made(self, transport: Transport) -> None:
        super().connection_made(transport)
        if self.fail_in == "connection_made":
            raise RuntimeError("fault in connection_made")
        if self.fail_in in ("pause_writing", "resume_writing"):
            transport.set_write_buffer_limits(high=1024)

    def data_received(self, data: bytes) -> None:
        if self.fail_in == "data_received":
            raise RuntimeError("fault in data_received")
        if self.fail_in in ("pause_writing", "resume_writing"):
            self.fill()
            return
        super().data_received(data)

    def fill(self) -> None:
        """Write until some of it is buffered (over the 1 KiB high-water mark: pauses).

        Not one big write: while the client reads, the kernel may take all of
        it, and without a pause the test hung. The client reads only after this.
        """
        transport = self.transport
        assert transport is not None
        for _ in range(64):  # bounded: an unread socket takes a few MiB at most
            if transport.is_closing() or transport.get_write_buffer_size():
                break
            transport.write(b"x" * (1 << 20))
        self.filled.set()

    def eof_received(self) -> bool | None:
        if self.fail_in == "eof_received":
            raise RuntimeError("fault in eof_received")
        return None

    def pause_writing(self) -> None:
        if self.fail_in == "pause_writing":
            raise RuntimeError("fault in pause_writing")

    def resume_writing(self) -> None:
        if self.fail_in == "resume_writing":
            raise RuntimeError("fault in resume_writing")

    def connection_lost(self, reason: BaseException | None) -> None:
        self.lost.append(reason)


@pytest.mark.parametrize(
    "callback",
    ["connection_made", "data_received", "eof_received", "pause_writing", "resume_writing"],
)
def test_exception_in_a_callback_closes_only_that_connection(
    reactor: Reactor, callback: str, caplog: pytest.LogCaptureFixture
) -> None:
    lost: list[BaseException | None] = []

    class Bad(Faulty):
        fail_in = callback

    Bad.lost = lost
    Bad.filled = threading.Event()
    bad_port = reactor.listen_tcp(0, factory_for(Bad)).get_host().port
    good_port = reactor.listen_tcp(0, factory_for(Echo)).get_host().port

    def clients() -> bytes:
        with connect(good_port) as bystander:
            bystander.sendall(b"before")
            assert bystander.recv(100) == b"before"
            with connect(bad_port) as s:
                s.sendall(b"trigger")
                if callback == "eof_received":
                    s.shutdown(socket.SHUT_WR)
                if callback in ("pause_writing", "resume_writing"):
                    wait_for(Bad.filled, "buffering the reply")  # then drain it
                recv_all(s)  # ends with EOF or a reset: the server closed it
            bystander.sendall(b"after")  # the other connection never noticed
            return bystander.recv(100)

    with caplog.at_level(logging.ERROR, logger="eventhub.reactor"):
        assert serve_then(reactor, clients) == b"after"
    assert len(lost) == 1
    assert isinstance(lost[0], RuntimeError) and str(lost[0]) == f"fault in {callback}"
    logged = [r for r in caplog.records if r.exc_info and r.exc_info[1] is lost[0]]
    assert len(logged) == 1, "logged exactly once"
    assert callback in logged[0].getMessage()


def test_exception_in_connection_lost_is_logged_and_serving_goes_on(
    reactor: Reactor, caplog: pytest.LogCaptureFixture
) -> None:
    class BadLost(Echo):
        def connection_lost(self, reason: BaseException | None) -> None:
            raise RuntimeError("fault in connection_lost")

    port = reactor.listen_tcp(0, factory_for(BadLost)).get_host().port

    def clients() -> list[bytes]:
        return [echo_once(port, b"x%d" % i) for i in range(3)]

    with caplog.at_level(logging.ERROR, logger="eventhub.reactor"):
        assert serve_then(reactor, clients) == [b"x0", b"x1", b"x2"]
    assert sum("fault in connection_lost" in str(r.exc_info[1]) for r in caplog.records if r.exc_info) == 3


def test_build_protocol_none_or_raising_closes_just_that_connection(
    reactor: Reactor, caplog: pytest.LogCaptureFixture
) -> None:
    decisions = iter([None, "raise", "ok"])

    class Picky(ServerFactory):
        protocol = Echo

        def build_protocol(self, addr: Address) -> Protocol | None:
            d = next(decisions)
            if d == "raise":
                raise ValueError("cannot build")
            return None if d is None else super().build_protocol(addr)

    port = reactor.listen_tcp(0, Picky()).get_host().port
    unset = reactor.listen_tcp(0, ServerFactory()).get_host().port  # protocol never set

    def clients() -> list[bytes]:
        return [echo_once(port, b"a"), echo_once(port, b"b"), echo_once(unset, b"c"), echo_once(port, b"d")]

    with caplog.at_level(logging.ERROR, logger="eventhub.reactor"):
        got = serve_then(reactor, clients)
    assert got == [b"", b"", b"", b"d"]
    assert "protocol is not set" in caplog.text and "cannot build" in caplog.text


def test_build_protocol_refusal_then_served(reactor: Reactor) -> None:
    decisions = iter([None, "ok"])

    class Picky(ServerFactory):
        protocol = Echo

        def build_protocol(self, addr: Address) -> Protocol | None:
            return None if next(decisions) is None else super().build_protocol(addr)

    port = reactor.listen_tcp(0, Picky()).get_host().port

    def clients() -> list[bytes]:
        return [echo_once(port, b"refused"), echo_once(port, b"served")]

    assert serve_then(reactor, clients) == [b"", b"served"]


def reset(s: socket.socket) -> None:
    """Close with SO_LINGER 0: the peer gets RST instead of FIN."""
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def test_peer_reset_mid_stream(reactor: Reactor) -> None:
    lost: list[BaseException | None] = []
    noticed = threading.Event()

    class Streamer(Protocol):
        def connection_made(self, transport: Transport) -> None:
            self.transport = transport
            self.tick()

        def tick(self) -> None:
            assert self.transport is not None
            if not self.transport.is_closing():
                self.transport.write(b"z" * 65536)
                self.next_tick = reactor.call_later(0.001, self.tick)

        def connection_lost(self, reason: BaseException | None) -> None:
            self.next_tick.cancel()
            lost.append(reason)
            noticed.set()

    port = reactor.listen_tcp(0, factory_for(Streamer)).get_host().port
    echo_port = reactor.listen_tcp(0, factory_for(Echo)).get_host().port

    def clients() -> bytes:
        s = connect(port)
        s.recv(1000)
        reset(s)
        wait_for(noticed, "connection_lost after the reset")
        return echo_once(echo_port, b"still here")

    assert serve_then(reactor, clients) == b"still here"
    assert len(lost) == 1 and isinstance(lost[0], (ConnectionResetError, BrokenPipeError))


def test_writes_after_close_are_dropped_quietly(reactor: Reactor) -> None:
    results: list[object] = []

    class Closer(Protocol):
        def connection_made(self, transport: Transport) -> None:
            self.transport = transport
            transport.write(b"last words")
            transport.lose_connection()
            transport.write(b"dropped")
            transport.write_sequence([b"also", b"dropped"])
            results.append(transport.is_closing())

        def connection_lost(self, reason: BaseException | None) -> None:
            assert self.transport is not None
            self.transport.write(b"after lost")
            self.transport.lose_connection()
            self.transport.abort_connection()
            self.transport.write_eof()
            results.append(reason)

    port = reactor.listen_tcp(0, factory_for(Closer)).get_host().port

    def client() -> bytes:
        with connect(port) as s:
            return recv_all(s)

    assert serve_then(reactor, client) == b"last words"
    assert results == [True, None]


def test_epipe_closes_the_connection_not_the_process(reactor: Reactor) -> None:
    lost: list[BaseException | None] = []
    ready, noticed = threading.Event(), threading.Event()
    transports: list[Transport] = []

    class Writer(Protocol):
        def connection_made(self, transport: Transport) -> None:
            transports.append(transport)
            ready.set()

        def connection_lost(self, reason: BaseException | None) -> None:
            lost.append(reason)
            noticed.set()

    port = reactor.listen_tcp(0, factory_for(Writer)).get_host().port

    def write_a_lot() -> None:
        for _ in range(64):
            transports[0].write(b"w" * 65536)

    def client() -> None:
        s = connect(port)
        wait_for(ready, "connection_made")
        reset(s)  # on loopback the server's socket is reset when this returns
        reactor.call_from_thread(write_a_lot)  # send() meets EPIPE/ECONNRESET (or a read did first)
        wait_for(noticed, "connection_lost after the reset")

    serve_then(reactor, client)
    assert len(lost) == 1
    assert isinstance(lost[0], (BrokenPipeError, ConnectionResetError))


def test_partial_writes_keep_every_byte_in_order(reactor: Reactor) -> None:
    """The client does not read until the server had to buffer; then everything arrives."""
    payload = pattern(8 << 20)
    buffered: list[int] = []
    written = threading.Event()

    class Blaster(Protocol):
        def connection_made(self, transport: Transport) -> None:
            self.transport = transport
            for i in range(0, len(payload), 100_003):  # odd sizes: splits land anywhere
                transport.write(payload[i : i + 100_003])
            buffered.append(transport.get_write_buffer_size())
            transport.lose_connection()
            written.set()

    port = reactor.listen_tcp(0, factory_for(Blaster)).get_host().port

    def client() -> bytes:
        with connect(port) as s:
            wait_for(written, "the writes")  # a reader meanwhile would let the kernel take it all
            return recv_all(s)

    got = serve_then(reactor, client)
    assert buffered[0] > 0, "the kernel took everything; the test proved nothing"
    assert len(got) == len(payload) and got == payload


@pytest.mark.e2e  # a load test
def test_a_single_60_mb_write_arrives_whole(reactor: Reactor) -> None:
    payload = pattern(60 << 20)

    class Big(Protocol):
        def connection_made(self, transport: Transport) -> None:
            transport.write(payload)
            transport.lose_connection()

    port = reactor.listen_tcp(0, factory_for(Big)).get_host().port

    def client() -> bytes:
        with connect(port) as s:
            return recv_all(s)

    got = serve_then(reactor, client)
    assert len(got) == len(payload)
    assert got == payload


def test_write_accepts_bytearray_and_memoryview(reactor: Reactor) -> None:
    class Mixed(Protocol):
        def connection_made(self, transport: Transport) -> None:
            data = bytearray(b"abc")
            transport.write(data)
            data[:] = b"XXX"  # the transport must not keep a reference to the caller's buffer
            transport.write(memoryview(b"--def--")[2:5])
            transport.write_sequence([b"g", bytearray(b"h"), memoryview(b"i")])
            transport.lose_connection()

    port = reactor.listen_tcp(0, factory_for(Mixed)).get_host().port

    def client() -> bytes:
        with connect(port) as s:
            return recv_all(s)

    assert serve_then(reactor, client) == b"abcdefghi"


class Trickle(socket.socket):
    """A socket whose ``send`` takes at most ``limit`` bytes a call, as a busy kernel may."""

    limit = 1000

    def send(self, data: ReadableBuffer, flags: int = 0) -> int:
        with memoryview(data) as view, view.cast("B") as octets:
            return super().send(octets[: self.limit], flags)


def test_a_partial_send_of_a_memoryview_of_wide_items_keeps_the_rest(reactor: Reactor) -> None:
    """len() of a memoryview counts items: 1,000 int32 are 4,000 bytes, and 1,000 sent is not all."""
    if reactor.backend in ASYNCIO_BACKENDS:
        pytest.skip("drives the built-in tcp.Connection over a trickling socket (test_aio.py: the adapter)")
    wide = array.array("i", range(1000))
    lost: list[BaseException | None] = []

    class WideWriter(Protocol):
        def connection_made(self, transport: Transport) -> None:
            transport.write(memoryview(wide))
            transport.write(memoryview(b"a-b-c-")[::2])  # strided: not contiguous
            transport.lose_connection()

        def connection_lost(self, reason: BaseException | None) -> None:
            lost.append(reason)
            reactor.stop()

    with socket.create_server(("127.0.0.1", 0)) as server:
        client = socket.create_connection(server.getsockname())
        accepted, addr = server.accept()
    sock = Trickle(fileno=accepted.detach())
    sock.setblocking(False)
    Connection(reactor, sock, WideWriter(), Address.from_sockaddr(addr))._start()
    reader = Background(_read_and_close, client)
    run(reactor)
    assert reader.result() == wide.tobytes() + b"abc"
    assert lost == [None]


def _read_and_close(s: socket.socket) -> bytes:
    with s:
        return recv_all(s)


def test_writing_what_is_not_bytes_closes_with_an_error_naming_the_type(reactor: Reactor) -> None:
    lost: list[BaseException | None] = []

    class Wrong(Protocol):
        def connection_made(self, transport: Transport) -> None:
            transport.write("text")  # type: ignore[arg-type]

        def connection_lost(self, reason: BaseException | None) -> None:
            lost.append(reason)

    port = reactor.listen_tcp(0, factory_for(Wrong)).get_host().port

    def client() -> bytes:
        with connect(port) as s:
            return recv_all(s)

    assert serve_then(reactor, client) == b""
    assert len(lost) == 1 and isinstance(lost[0], TypeError)
    assert "bytes, bytearray or memoryview" in str(lost[0]) and "str" in str(lost[0])


def test_abort_connection_resets_and_discards(reactor: Reactor) -> None:
    lost: list[BaseException | None] = []

    class Aborter(Protocol):
        def connection_made(self, transport: Transport) -> None:
            transport.write(b"a" * (8 << 20))  # mostly buffered: discarded
            transport.abort_connection()
            transport.abort_connection()

        def connection_lost(self, reason: BaseException | None) -> None:
            lost.append(reason)

    port = reactor.listen_tcp(0, factory_for(Aborter)).get_host().port

    def client() -> str:
        try:
            with connect(port) as s:  # the reset may even beat connect()'s own check
                threading.Event().wait(0.05)
                while s.recv(1 << 20):
                    pass
        except ConnectionResetError:
            return "reset"
        return "eof"

    assert serve_then(reactor, client) == "reset"
    assert lost == [None]


# -- half-close, reading, flow control ------------------------------------------


def test_half_close_eof_received_true_keeps_writing_side_open(reactor: Reactor) -> None:
    class Summer(Protocol):
        def connection_made(self, transport: Transport) -> None:
            self.transport = transport
            self.total = 0

        def data_received(self, data: bytes) -> None:
            self.total += len(data)

        def eof_received(self) -> bool:
            assert self.transport is not None
            reactor.call_later(0.01, self.reply)
            return True

        def reply(self) -> None:
            assert self.transport is not None
            self.transport.write(b"got %d bytes" % self.total)
            self.transport.lose_connection()

    port = reactor.listen_tcp(0, factory_for(Summer)).get_host().port

    def client() -> bytes:
        with connect(port) as s:
            s.sendall(b"q" * 5000)
            s.shutdown(socket.SHUT_WR)
            return recv_all(s)

    assert serve_then(reactor, client) == b"got 5000 bytes"


def test_write_eof_then_peer_keeps_sending(reactor: Reactor) -> None:
    events: list[Any] = []
    closed = threading.Event()

    class Half(Recorder):
        def connection_made(self, transport: Transport) -> None:
            super().connection_made(transport)
            transport.write(b"bye")
            transport.write_eof()
            transport.write(b"dropped after write_eof")

        def connection_lost(self, reason: BaseException | None) -> None:
            super().connection_lost(reason)
            closed.set()

    Half.events = events
    port = reactor.listen_tcp(0, factory_for(Half)).get_host().port

    def client() -> bytes:
        with connect(port) as s:
            got = recv_all(s)  # EOF from the server's write_eof
            s.sendall(b"still talking")
            s.shutdown(socket.SHUT_WR)
            wait_for(closed, "connection_lost")  # stopping earlier would drop what is in flight
            return got

    assert serve_then(reactor, client) == b"bye"
    assert b"".join(e[1] for e in events if isinstance(e, tuple) and e[0] == "data") == (b"still talking")
    assert events[-1] == ("lost", None)


def test_pause_and_resume_reading(reactor: Reactor) -> None:
    received: list[bytes] = []
    paused_seen: list[int] = []

    class Slow(Protocol):
        def connection_made(self, transport: Transport) -> None:
            self.transport = transport
            transport.pause_reading()
            reactor.call_later(0.05, self.check_and_resume)  # the ping is in long before

        def check_and_resume(self) -> None:
            assert self.transport is not None
            paused_seen.append(len(received))
            self.transport.resume_reading()

        def data_received(self, data: bytes) -> None:
            received.append(data)
            if b"".join(received) == b"ping":
                assert self.transport is not None
                self.transport.write(b"pong")

    port = reactor.listen_tcp(0, factory_for(Slow)).get_host().port

    def client() -> bytes:
        with connect(port) as s:
            s.sendall(b"ping")
            return s.recv(10)

    assert serve_then(reactor, client) == b"pong"
    assert paused_seen == [0], "data was delivered while reading was paused"


def test_pause_and_resume_writing_follow_the_water_marks(reactor: Reactor) -> None:
    calls: list[tuple[str, int]] = []
    payload = pattern(16 << 20)  # more than the kernel's socket buffers on both ends
    pushed = threading.Event()

    class Flow(Protocol):
        def connection_made(self, transport: Transport) -> None:
            self.transport = transport
            transport.set_write_buffer_limits(high=32 * 1024)
            assert transport.get_write_buffer_size() == 0
            self.sent = 0
            self.paused = False
            self.push()
            pushed.set()

        def push(self) -> None:
            assert self.transport is not None
            while not self.paused and self.sent < len(payload):
                self.transport.write(payload[self.sent : self.sent + 8192])
                self.sent += 8192
            if self.sent >= len(payload):
                self.transport.lose_connection()

        def pause_writing(self) -> None:
            assert self.transport is not None
            self.paused = True
            calls.append(("pause", self.transport.get_write_buffer_size()))

        def resume_writing(self) -> None:
            assert self.transport is not None
            self.paused = False
            calls.append(("resume", self.transport.get_write_buffer_size()))
            self.push()

    port = reactor.listen_tcp(0, factory_for(Flow)).get_host().port

    def client() -> bytes:
        with connect(port) as s:
            wait_for(pushed, "the first writes")  # while nobody reads: they must pause
            return recv_all(s)

    assert serve_then(reactor, client) == payload
    assert calls and calls[0][0] == "pause"
    kinds = [k for k, _ in calls]
    assert kinds == ["pause", "resume"] * (len(kinds) // 2) + ["pause"] * (len(kinds) % 2)
    assert all(size > 32 * 1024 for k, size in calls if k == "pause")
    assert all(size <= 8 * 1024 for k, size in calls if k == "resume")


def test_close_from_resume_writing_when_drained_closes_once(reactor: Reactor) -> None:
    """resume_writing may call lose_connection as the buffer empties: one graceful close, one timer."""
    payload = pattern(16 << 20)
    lost: list[BaseException | None] = []
    written = threading.Event()

    class WriteThenClose(Protocol):
        def connection_made(self, transport: Transport) -> None:
            transport.set_write_buffer_limits(high=1, low=0)  # resume only once fully drained
            transport.write(payload)
            written.set()

        def resume_writing(self) -> None:
            assert self.transport is not None
            self.transport.lose_connection()

        def connection_lost(self, reason: BaseException | None) -> None:
            lost.append(reason)

    port = reactor.listen_tcp(0, factory_for(WriteThenClose)).get_host().port

    def client() -> bytes:
        with connect(port) as s:
            wait_for(written, "the write")  # a reader meanwhile would let the kernel take it all
            return recv_all(s)

    assert serve_then(reactor, client) == payload
    assert lost == [None]
    assert pending_timers(reactor) == []


def test_bad_water_marks_are_a_clear_error(reactor: Reactor) -> None:
    errors: list[str] = []

    class Check(Protocol):
        def connection_made(self, transport: Transport) -> None:
            try:
                transport.set_write_buffer_limits(high=10, low=20)
            except ValueError as exc:
                errors.append(str(exc))
            transport.lose_connection()

    port = reactor.listen_tcp(0, factory_for(Check)).get_host().port
    serve_then(reactor, echo_once, port, b"")
    assert errors and "low" in errors[0] and "high" in errors[0]


class StreamingProducer:
    def __init__(self, transport: Transport, payload: bytes) -> None:
        self.transport = transport
        self.payload = payload
        self.sent = 0
        self.paused = False
        self.calls: list[str] = []

    def pause_producing(self) -> None:
        self.calls.append("pause")
        self.paused = True

    def resume_producing(self) -> None:
        self.calls.append("resume")
        self.paused = False

    def stop_producing(self) -> None:
        self.calls.append("stop")

    def tick(self, reactor: Reactor) -> None:
        while not self.paused and self.sent < len(self.payload):
            self.transport.write(self.payload[self.sent : self.sent + 16384])
            self.sent += 16384
        if self.sent >= len(self.payload):
            self.transport.unregister_producer()
            self.transport.lose_connection()
        else:
            reactor.call_later(0.001, self.tick, reactor)


class PullProducer:
    def __init__(self, transport: Transport, payload: bytes) -> None:
        self.transport = transport
        self.payload = payload
        self.sent = 0
        self.calls: list[str] = []

    def pause_producing(self) -> None:
        self.calls.append("pause")

    def resume_producing(self) -> None:
        self.calls.append("resume")
        self.transport.write(self.payload[self.sent : self.sent + 100_000])
        self.sent += 100_000
        if self.sent >= len(self.payload):
            self.transport.unregister_producer()
            self.transport.lose_connection()

    def stop_producing(self) -> None:
        self.calls.append("stop")


@pytest.mark.parametrize("streaming", [True, False], ids=["push", "pull"])
def test_producer_registration(reactor: Reactor, streaming: bool) -> None:
    payload = pattern(16 << 20)  # more than the kernel buffers: the producer must pause
    producers: list[StreamingProducer | PullProducer] = []
    started = threading.Event()

    class Produce(Protocol):
        def connection_made(self, transport: Transport) -> None:
            if streaming:
                pushing = StreamingProducer(transport, payload)
                transport.register_producer(pushing, streaming=True)
                with pytest.raises(RuntimeError, match="already has a producer"):
                    transport.register_producer(pushing, streaming=True)
                pushing.tick(reactor)
                producers.append(pushing)
            else:
                pulled = PullProducer(transport, payload)
                transport.register_producer(pulled, streaming=False)
                producers.append(pulled)
            started.set()

    port = reactor.listen_tcp(0, factory_for(Produce)).get_host().port

    def client() -> bytes:
        with connect(port) as s:
            wait_for(started, "the first writes")  # while nobody reads: a push producer pauses
            return recv_all(s)

    assert serve_then(reactor, client) == payload
    (p,) = producers
    if streaming:
        assert p.calls[0] == "pause" and "resume" in p.calls
    else:
        assert p.calls.count("resume") == -(-len(payload) // 100_000)
    assert "stop" not in p.calls  # unregistered before the close


def test_a_pull_producer_is_not_asked_for_more_after_write_eof(reactor: Reactor) -> None:
    """Only an open connection takes writes: after write_eof, asking for more would spin the loop."""
    resumed: list[int] = []

    class Five:
        def __init__(self, transport: Transport) -> None:
            self.transport = transport

        def pause_producing(self) -> None:
            pass

        def resume_producing(self) -> None:
            resumed.append(1)
            self.transport.write(b"0123456789")
            if len(resumed) == 5:
                self.transport.write_eof()

        def stop_producing(self) -> None:
            pass

    class Pull(Protocol):
        def connection_made(self, transport: Transport) -> None:
            transport.register_producer(Five(transport), streaming=False)

    port = reactor.listen_tcp(0, factory_for(Pull)).get_host().port

    def client() -> bytes:
        with connect(port) as s:
            got = recv_all(s)  # to our EOF
            time.sleep(0.05)  # the server's loop turns meanwhile
            return got

    assert serve_then(reactor, client) == b"0123456789" * 5
    assert len(resumed) == 5


def test_producer_is_stopped_when_the_connection_dies(reactor: Reactor) -> None:
    calls: list[str] = []

    class Idle:
        def pause_producing(self) -> None:
            calls.append("pause")

        def resume_producing(self) -> None:
            calls.append("resume")

        def stop_producing(self) -> None:
            calls.append("stop")

    class Keep(Protocol):
        def connection_made(self, transport: Transport) -> None:
            transport.register_producer(Idle(), streaming=True)

    port = reactor.listen_tcp(0, factory_for(Keep)).get_host().port

    def client() -> None:
        with connect(port) as s:
            s.shutdown(socket.SHUT_WR)
            recv_all(s)

    serve_then(reactor, client)
    assert calls == ["stop"]


# -- stopping ---------------------------------------------------------------------


def test_graceful_stop_flushes_buffered_data_then_connection_lost(reactor: Reactor) -> None:
    payload = pattern(4 << 20)
    lost: list[BaseException | None] = []
    buffered: list[int] = []
    listener_closed: list[bool] = []
    written = threading.Event()

    class Stuffer(Protocol):
        def connection_made(self, transport: Transport) -> None:
            transport.write(payload)
            buffered.append(transport.get_write_buffer_size())
            reactor.call_soon(reactor.stop)
            written.set()

        def connection_lost(self, reason: BaseException | None) -> None:
            lost.append(reason)

    listener = reactor.listen_tcp(0, factory_for(Stuffer))
    port = listener.get_host().port
    reactor.add_system_event_trigger("after", "shutdown", lambda: listener_closed.append(True))
    client = Background(lambda: recv_all(_read_once_set(connect(port), written)))
    run(reactor)
    assert buffered[0] > 0
    assert lost == [None]
    assert client.result() == payload
    assert listener_closed == [True]
    with pytest.raises(ConnectionRefusedError):
        connect(port)


def _read_once_set(s: socket.socket, written: threading.Event) -> socket.socket:
    wait_for(written, "the write")  # a reader meanwhile would let the kernel take it all
    return s


def test_shutdown_timeout_aborts_what_cannot_flush(reactor: Reactor) -> None:
    reactor.shutdown_timeout = 0.01  # short is safe: 16 MB cannot flush to a peer that never reads
    lost: list[BaseException | None] = []

    class Stuck(Protocol):
        def connection_made(self, transport: Transport) -> None:
            transport.write(b"s" * (16 << 20))  # the client never reads
            reactor.call_soon(reactor.stop)

        def connection_lost(self, reason: BaseException | None) -> None:
            lost.append(reason)

    port = reactor.listen_tcp(0, factory_for(Stuck)).get_host().port
    s = connect(port)
    try:
        run(reactor)
    finally:
        s.close()
    assert len(lost) == 1 and isinstance(lost[0], TimeoutError)


# -- clients ------------------------------------------------------------------------


class Collect(ClientFactory):
    def __init__(self, reactor: Reactor, proto: type[Protocol] = Protocol) -> None:
        self.reactor = reactor
        self.protocol = proto
        self.failed: list[BaseException] = []
        self.lost: list[BaseException | None] = []

    def client_connection_failed(self, connector: Connector, reason: BaseException) -> None:
        self.failed.append(reason)
        self.reactor.stop()

    def client_connection_lost(self, connector: Connector, reason: BaseException | None) -> None:
        self.lost.append(reason)
        self.reactor.stop()


def test_connect_tcp_round_trip(reactor: Reactor) -> None:
    port = reactor.listen_tcp(0, factory_for(Echo)).get_host().port
    got: list[bytes] = []

    class Hello(Protocol):
        def connection_made(self, transport: Transport) -> None:
            self.transport = transport
            transport.write(b"hi there")

        def data_received(self, data: bytes) -> None:
            got.append(data)
            if b"".join(got) == b"hi there":
                assert self.transport is not None
                self.transport.lose_connection()

    factory = Collect(reactor, Hello)
    connector = reactor.connect_tcp("127.0.0.1", port, factory)
    assert connector.get_destination() == Address("127.0.0.1", port)
    run(reactor)
    assert b"".join(got) == b"hi there"
    assert factory.lost == [None] and factory.failed == []


def test_connect_tcp_by_name_resolves_off_the_loop(reactor: Reactor) -> None:
    port = reactor.listen_tcp(0, factory_for(Echo)).get_host().port

    class Quit(Protocol):
        def connection_made(self, transport: Transport) -> None:
            transport.lose_connection()

    factory = Collect(reactor, Quit)
    reactor.connect_tcp("localhost", port, factory)
    run(reactor)
    addresses = {info[4][0] for info in socket.getaddrinfo("localhost", port, 0, socket.SOCK_STREAM)}
    if "127.0.0.1" in addresses:  # whatever comes first (::1, say), each address is tried
        assert factory.lost == [None] and factory.failed == []
    else:
        assert isinstance(factory.failed[0], ConnectionRefusedError)


SockAddr = tuple[str, int] | tuple[str, int, int, int]  # IPv4, IPv6


def fake_resolver(monkeypatch: pytest.MonkeyPatch, name: str, sockaddrs: list[SockAddr]) -> None:
    """Make ``name`` resolve to ``sockaddrs``, in that order (as /etc/hosts might), on loopback only."""
    real = socket.getaddrinfo

    def getaddrinfo(
        host: bytes | str | None,
        port: bytes | str | int | None,
        family: int = 0,
        type: int = 0,
        proto: int = 0,
        flags: int = 0,
    ) -> _GetAddrInfoResult:
        if host != name:
            return real(host, port, family, type, proto, flags)
        if flags & socket.AI_NUMERICHOST:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        resolved: _GetAddrInfoResult = []
        for a in sockaddrs:
            if len(a) == 4:
                resolved.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", a))
            else:
                resolved.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", a))
        return resolved

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def bound_not_listening(host: str) -> socket.socket:
    """A port where connecting is refused, held so that nothing else can take it."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.bind((host, 0))
    return sock


def test_connect_tcp_tries_each_resolved_address_in_turn(
    reactor: Reactor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ "localhost" may give ::1 first while the server listens on 127.0.0.1 only."""
    port = reactor.listen_tcp(0, factory_for(Echo)).get_host().port
    try:
        refusing = bound_not_listening("::1")
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    with refusing:
        fake_resolver(monkeypatch, "dual.test", [(*refusing.getsockname()[:2], 0, 0), ("127.0.0.1", port)])
        peers: list[Address] = []

        class Quit(Protocol):
            def connection_made(self, transport: Transport) -> None:
                peers.append(transport.get_peer())
                transport.lose_connection()

        factory = Collect(reactor, Quit)
        reactor.connect_tcp("dual.test", port, factory)
        run(reactor)
    assert factory.failed == [] and factory.lost == [None]
    assert peers == [Address("127.0.0.1", port)]


def test_connect_tcp_fails_with_the_last_error_when_every_address_refuses(
    reactor: Reactor, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = bound_not_listening("127.0.0.1"), bound_not_listening("127.0.0.1")
    with first, second:
        fake_resolver(monkeypatch, "nobody.test", [first.getsockname(), second.getsockname()])
        factory = Collect(reactor)
        reactor.connect_tcp("nobody.test", first.getsockname()[1], factory)
        run(reactor)
    assert len(factory.failed) == 1 and isinstance(factory.failed[0], ConnectionRefusedError)
    assert factory.lost == []


def test_connect_tcp_refused(reactor: Reactor) -> None:
    bound = socket.socket()  # bound, not listening: connecting is refused, and no race
    bound.bind(("127.0.0.1", 0))
    try:
        factory = Collect(reactor)
        reactor.connect_tcp("127.0.0.1", bound.getsockname()[1], factory)
        run(reactor)
    finally:
        bound.close()
    assert len(factory.failed) == 1 and isinstance(factory.failed[0], ConnectionRefusedError)


class NotConnected(socket.socket):
    """A socket whose ``getpeername`` says it is not connected (the attempt failed, its error read)."""

    def getpeername(self) -> NoReturn:
        raise OSError(errno.ENOTCONN, os.strerror(errno.ENOTCONN))


def test_connect_tcp_writable_but_not_connected_fails_instead_of_spinning(
    reactor: Reactor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Level-triggered: a writer left registered would be called again on every pass, forever."""
    if reactor.backend in ASYNCIO_BACKENDS:
        pytest.skip("the built-in Connector's own check; asyncio's create_connection reads SO_ERROR itself")
    with socket.create_server(("127.0.0.1", 0)) as server:  # its backlog completes the handshake
        monkeypatch.setattr(socket, "socket", NotConnected)
        factory = Collect(reactor)
        reactor.connect_tcp("127.0.0.1", server.getsockname()[1], factory, timeout=None)
        run(reactor)
    assert len(factory.failed) == 1 and isinstance(factory.failed[0], OSError)
    assert factory.failed[0].errno == errno.ENOTCONN


def test_connect_tcp_timeout(reactor: Reactor) -> None:
    """A listener whose accept queue is full drops SYNs (Linux): the attempt times out."""
    full = socket.socket()
    full.bind(("127.0.0.1", 0))
    full.listen(0)
    fillers = []
    try:
        addr = full.getsockname()
        fillers.append(socket.create_connection(addr, timeout=HANG))  # fills the accept queue
        for _ in range(3):
            f = socket.socket()
            f.setblocking(False)
            f.connect_ex(addr)
            fillers.append(f)
        factory = Collect(reactor)
        reactor.connect_tcp("127.0.0.1", addr[1], factory, timeout=0.01)  # the SYN's first retry is 1 s away
        run(reactor)
    finally:
        for f in fillers:
            f.close()
        full.close()
    if factory.lost:
        pytest.skip("this kernel accepted past a full backlog; cannot provoke a timeout")
    assert len(factory.failed) == 1 and isinstance(factory.failed[0], TimeoutError)
    assert "timed out" in str(factory.failed[0])


def test_stop_connecting_reports_cancelled(reactor: Reactor) -> None:
    full = socket.socket()
    full.bind(("127.0.0.1", 0))
    try:
        factory = Collect(reactor)
        connector = reactor.connect_tcp("127.0.0.1", full.getsockname()[1], factory)
        connector.stop_connecting()
        run(reactor)
    finally:
        full.close()
    assert len(factory.failed) == 1 and isinstance(factory.failed[0], ConnectionAbortedError)


# -- lingering close ---------------------------------------------------------------


def test_graceful_close_with_unread_input_still_delivers_everything(reactor: Reactor) -> None:
    """The peer keeps sending what we never read: close() alone would RST away our tail."""
    reply = pattern(16 << 20)
    answered = threading.Event()

    class Answer(Protocol):
        def data_received(self, data: bytes) -> None:
            assert self.transport is not None
            self.transport.write(reply)
            self.transport.lose_connection()
            answered.set()

    port = reactor.listen_tcp(0, factory_for(Answer)).get_host().port

    def client() -> tuple[bytes, str]:
        with connect(port) as s:
            s.sendall(b"request")
            wait_for(answered, "the answer")  # it stopped reading: what follows stays unread
            s.sendall(b"u" * (256 << 10))  # unread by the server, in its receive queue
            chunks, end = [], "eof"
            try:
                while chunk := s.recv(1 << 20):
                    chunks.append(chunk)
            except ConnectionResetError:
                end = "reset"
            return b"".join(chunks), end

    got, end = serve_then(reactor, client)
    assert end == "eof"
    assert len(got) == len(reply) and got == reply


def test_graceful_close_gives_up_on_a_peer_that_never_closes(reactor: Reactor) -> None:
    reactor.linger_timeout = 0.02  # any time will do: the peer never closes
    lost: list[BaseException | None] = []

    class Bye(Protocol):
        def connection_made(self, transport: Transport) -> None:
            transport.write(b"bye")
            transport.lose_connection()

        def connection_lost(self, reason: BaseException | None) -> None:
            lost.append(reason)
            reactor.stop()

    port = reactor.listen_tcp(0, factory_for(Bye)).get_host().port
    with connect(port) as s:  # reads up to the EOF, but keeps its end open
        reader = Background(recv_all, s)
        run(reactor)
        assert reader.result() == b"bye"
    assert lost == [None]


def test_get_host_and_get_peer_still_answer_in_connection_lost(reactor: Reactor) -> None:
    seen: list[tuple[Address, Address]] = []

    class Late(Protocol):
        def connection_made(self, transport: Transport) -> None:
            self.transport = transport
            transport.pause_reading()
            transport.lose_connection()
            transport.pause_reading()  # while closing: must not stop the close

        def connection_lost(self, reason: BaseException | None) -> None:
            assert self.transport is not None
            seen.append((self.transport.get_host(), self.transport.get_peer()))

    port = reactor.listen_tcp(0, factory_for(Late)).get_host().port

    def client() -> int:
        with connect(port) as s:
            recv_all(s)
            return int(s.getsockname()[1])

    client_port = serve_then(reactor, client)
    assert seen == [(Address("127.0.0.1", port), Address("127.0.0.1", client_port))]


def test_transport_is_set_even_if_connection_made_skips_super(reactor: Reactor) -> None:
    class Forgetful(Protocol):
        def connection_made(self, transport: Transport) -> None:
            pass  # no super().connection_made(transport)

        def data_received(self, data: bytes) -> None:
            assert self.transport is not None
            self.transport.write(data)

    port = reactor.listen_tcp(0, factory_for(Forgetful)).get_host().port
    assert serve_then(reactor, echo_once, port, b"still echoed") == b"still echoed"


def test_the_close_path_goes_through_its_states_in_order(reactor: Reactor) -> None:
    """write_eof with data buffered, flushed, lose_connection, the peer's close: as the repr shows."""
    if reactor.backend in ASYNCIO_BACKENDS:
        pytest.skip("the states of the built-in tcp.Connection (the adapter's transport has its own)")
    seen: list[tuple[str, bool]] = []
    written, lingering = threading.Event(), threading.Event()
    payload = b"x" * (4 << 20)  # far more than 64 KiB socket buffers take while the client waits

    def note(transport: Transport) -> None:
        state = re.search(r"fd=\d+ (.+) peer=", repr(transport))
        assert state is not None
        seen.append((state.group(1), transport.is_closing()))

    made: list[Closer] = []

    class Closer(Protocol):
        def connection_made(self, transport: Transport) -> None:
            super().connection_made(transport)
            made.append(self)
            transport.write(payload)
            transport.write_eof()
            note(transport)
            written.set()

        def flushed(self) -> None:
            assert self.transport is not None
            note(self.transport)
            self.transport.lose_connection()
            note(self.transport)
            lingering.set()

        def connection_lost(self, reason: BaseException | None) -> None:
            assert self.transport is not None
            note(self.transport)

    port = reactor.listen_tcp(0, factory_for(Closer), socket_buffer=64 * 1024).get_host().port

    def client() -> int:
        with connect(port) as s:
            wait_for(written, "write_eof")
            got = recv_all(s)  # to the server's EOF: its buffer has drained
            reactor.call_from_thread(lambda: made[0].flushed())
            wait_for(lingering, "lose_connection")
            return len(got)

    assert serve_then(reactor, client) == len(payload)
    assert seen == [
        ("eof pending", False),
        ("half-closed", False),
        ("lingering", True),
        ("closed", True),
    ]
