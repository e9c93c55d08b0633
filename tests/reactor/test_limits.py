"""Resource limits and process-level behaviour: EMFILE, FD_SETSIZE, descriptor leaks, signals."""

from __future__ import annotations

import logging
import os
import resource
import signal
import socket
import subprocess
import sys
import textwrap
from typing import ClassVar

import pytest

from eventhub.protocol import ClientFactory, Connector, Protocol, Transport
from eventhub.reactor import Reactor
from eventhub.reactor._pollers import ASYNCIO_BACKENDS, FD_SETSIZE

from ._util import HANG, Background, Echo, connect, factory_for, open_fds, recv_all, run

pytestmark = pytest.mark.skipif(
    not os.path.isdir("/proc/self/fd"), reason="counts descriptors through /proc/self/fd"
)

# -- EMFILE -----------------------------------------------------------------------


def _skip_on_asyncio(backend: str) -> None:
    if backend in ASYNCIO_BACKENDS:
        pytest.skip(
            "asyncio's and uvloop's accept loops own EMFILE: they log it and pause accepting "
            "(no spare descriptor to shed the waiting connection with)"
        )


@pytest.fixture
def builtin_backend(backend: str) -> None:
    _skip_on_asyncio(backend)


EMFILE_SERVER = textwrap.dedent(
    """
    import logging, os, resource, sys
    from eventhub.protocol import Protocol, ServerFactory
    from eventhub.reactor import Reactor

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    class Echo(Protocol):
        def data_received(self, data):
            self.transport.write(data)

    reactor = Reactor(sys.argv[1])
    factory = ServerFactory()
    factory.protocol = Echo
    hog = []

    def exhaust():  # use up every descriptor the limit allows
        while True:
            try:
                hog.append(os.open(os.devnull, os.O_RDONLY))
            except OSError:
                return

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))  # a fresh interpreter uses ~10
    if sys.argv[2] == "spare":
        port = reactor.listen_tcp(0, factory).get_host().port
        exhaust()
    else:  # leave room for the listening socket only: no spare descriptor
        exhaust()
        os.close(hog.pop())
        port = reactor.listen_tcp(0, factory).get_host().port

    def command():
        line = os.read(0, 100).decode()
        if "free" in line:
            for fd in hog:
                os.close(fd)
            hog.clear()
            print("freed", flush=True)
        else:
            reactor.stop()

    reactor.add_reader(0, command)
    print(port, flush=True)
    reactor.run()
    print("clean exit", flush=True)
    """
)


EMFILE_CLIENT = textwrap.dedent(
    """
    import errno, os, resource, socket, sys
    from eventhub.protocol import ClientFactory
    from eventhub.reactor import Reactor

    reactor = Reactor()
    server = socket.create_server(("127.0.0.1", 0))
    hog = []
    if sys.argv[1] == "warm":  # getaddrinfo imports the idna codec on first use: not then
        socket.getaddrinfo("127.0.0.1", 1)

    class Report(ClientFactory):
        def client_connection_failed(self, connector, reason):
            for fd in hog:
                os.close(fd)
            print("failed", type(reason).__name__, errno.errorcode.get(reason.errno), flush=True)
            reactor.stop()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
    while True:  # use up every descriptor the limit allows
        try:
            hog.append(os.open(os.devnull, os.O_RDONLY))
        except OSError:
            break
    # No timeout: only the failure itself can end this attempt.
    reactor.connect_tcp("127.0.0.1", server.getsockname()[1], Report(), timeout=None)
    reactor.run(install_signal_handlers=False)
    print("clean exit", flush=True)
    """
)


@pytest.mark.e2e  # a descriptor limit needs a process of its own
@pytest.mark.parametrize("where", ["warm", "cold"])
def test_emfile_starting_a_connection_attempt_fails_the_attempt(where: str) -> None:
    """socket() (warm) or getaddrinfo's first use (cold) can fail: the factory must hear it."""
    proc = subprocess.run(
        [sys.executable, "-c", EMFILE_CLIENT, where], capture_output=True, text=True, timeout=HANG
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:2] == ["failed OSError EMFILE", "clean exit"], proc.stderr


def _start_emfile_server(backend: str, mode: str) -> subprocess.Popen[str]:
    """EMFILE_SERVER in a subprocess: ``spare`` keeps a spare descriptor, ``nospare`` does not."""
    return subprocess.Popen(
        [sys.executable, "-c", EMFILE_SERVER, backend, mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.e2e  # a server in a subprocess
def test_emfile_on_accept_sheds_the_connection_and_keeps_listening(backend: str) -> None:
    _skip_on_asyncio(backend)
    proc = _start_emfile_server(backend, "spare")
    assert proc.stdin and proc.stdout and proc.stderr
    try:
        port = int(proc.stdout.readline())
        for _ in range(3):  # each is accepted and closed at once: EOF or reset, no hang
            with connect(port) as s:
                s.sendall(b"anyone?")
                assert recv_all(s) == b""
        proc.stdin.write("free\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "freed"
        with connect(port) as s:
            s.sendall(b"served again")
            assert s.recv(100) == b"served again"
        proc.stdin.write("stop\n")
        proc.stdin.flush()
        out, err = proc.communicate(timeout=HANG)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0, err
    assert out.strip() == "clean exit"
    # Three refusals, one log line: repeats within the interval are only counted.
    assert err.count("refused the connection") == 1, err
    assert "Too many open files" in err


@pytest.mark.e2e  # a server in a subprocess
@pytest.mark.usefixtures("builtin_backend")
def test_emfile_without_a_spare_pauses_accepting_then_serves_the_waiting_client(
    backend: str,
) -> None:
    proc = _start_emfile_server(backend, "nospare")
    assert proc.stdin and proc.stdout and proc.stderr
    try:
        port = int(proc.stdout.readline())
        with connect(port) as s:  # waits in the backlog: neither refused nor lost
            s.sendall(b"wait for me")
            while "not accepting" not in (line := proc.stderr.readline()):
                assert line, "the server exited"
            proc.stdin.write("free\n")
            proc.stdin.flush()
            assert proc.stdout.readline().strip() == "freed"
            assert s.recv(100) == b"wait for me"
        proc.stdin.write("stop\n")
        proc.stdin.flush()
        out, err = proc.communicate(timeout=HANG)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0, err
    assert out.strip() == "clean exit"


# -- FD_SETSIZE ---------------------------------------------------------------------


def _fill_descriptors_below(limit: int) -> list[int]:
    """Open /dev/null until the next descriptor would be >= ``limit``; return them."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = limit + 256
    if soft < want:
        if hard != resource.RLIM_INFINITY and hard < want:
            pytest.skip(f"RLIMIT_NOFILE hard limit {hard} is too low to pass FD_SETSIZE")
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    held: list[int] = []
    while True:
        fd = os.open(os.devnull, os.O_RDONLY)
        if fd >= limit:
            os.close(fd)
            return held
        held.append(fd)


def test_descriptor_beyond_fd_setsize(
    reactor: Reactor, backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    """select refuses that one connection with a clear log line and keeps serving; others serve it."""
    port = reactor.listen_tcp(0, factory_for(Echo)).get_host().port
    held = _fill_descriptors_below(FD_SETSIZE)
    try:

        def clients() -> list[bytes]:
            got = []
            with connect(port) as s:  # both ends get descriptors >= FD_SETSIZE
                s.sendall(b"high")
                got.append(recv_exactly_or_eof(s, 4))
            for fd in held[-8:]:  # free a few low descriptors
                os.close(fd)
            del held[-8:]
            with connect(port) as s:
                s.sendall(b"low")
                got.append(recv_exactly_or_eof(s, 3))
            reactor.call_from_thread(reactor.stop)
            return got

        bg: list[Background[list[bytes]]] = []
        reactor.call_soon(lambda: bg.append(Background(clients)))
        with caplog.at_level(logging.ERROR, logger="eventhub.reactor"):
            run(reactor)
        got = bg[0].result()
    finally:
        for fd in held:
            os.close(fd)
    if backend == "select":
        assert got == [b"", b"low"]
        (record,) = [r for r in caplog.records if "FD_SETSIZE" in r.getMessage()]
        assert "refused the connection" in record.getMessage()
        assert "poll or epoll" in record.getMessage()
    else:
        assert got == [b"high", b"low"]
        assert not caplog.records


def recv_exactly_or_eof(s: socket.socket, n: int) -> bytes:
    buf = b""
    try:
        while len(buf) < n:
            chunk = s.recv(n - len(buf))
            if not chunk:
                break
            buf += chunk
    except ConnectionResetError:
        pass
    return buf


# -- descriptor leaks -------------------------------------------------------------------


class Closing(Protocol):
    """Server side: answers, then closes in one of three ways chosen by the client."""

    counts: ClassVar[list[int]] = [0, 0]  # made, lost (reset by the test)

    def connection_made(self, transport: Transport) -> None:
        super().connection_made(transport)
        self.counts[0] += 1

    def connection_lost(self, reason: BaseException | None) -> None:
        self.counts[1] += 1

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)
        if data.startswith(b"server-close"):
            self.transport.lose_connection()
        elif data.startswith(b"server-abort"):
            self.transport.abort_connection()


@pytest.mark.e2e  # a load test: 2,000 connections on each backend
def test_no_descriptor_leaks_after_thousands_of_connect_close_cycles(backend: str) -> None:
    before = open_fds()
    reactor = Reactor(backend)
    Closing.counts = [0, 0]
    port = reactor.listen_tcp(0, factory_for(Closing)).get_host().port
    unlistened = socket.socket()
    unlistened.bind(("127.0.0.1", 0))  # connecting here is refused
    refused_port = unlistened.getsockname()[1]
    modes = [b"client-close", b"client-abort", b"server-close", b"server-abort", b"refused"]
    chains, per_chain = 8, 250
    done = [0]
    during: list[int] = []
    base: list[int] = []

    class Client(Protocol):
        def connection_made(self, transport: Transport) -> None:
            self.transport = transport
            transport.write(self.factory.mode)

        def data_received(self, data: bytes) -> None:
            assert self.transport is not None
            if self.factory.mode == b"client-close":
                self.transport.lose_connection()
            elif self.factory.mode == b"client-abort":
                self.transport.abort_connection()

    class Chain(ClientFactory):
        protocol = Client

        def __init__(self, left: int) -> None:
            self.left = left
            self.mode = b""

        def next(self) -> None:
            if self.left == 0:
                done[0] += 1
                if done[0] == chains:
                    measure_when_servers_closed()
                return
            self.left -= 1
            self.mode = modes[self.left % len(modes)]
            target = refused_port if self.mode == b"refused" else port
            reactor.connect_tcp("127.0.0.1", target, self)

        def client_connection_failed(self, connector: Connector, reason: BaseException) -> None:
            assert isinstance(reason, ConnectionRefusedError), reason
            self.next()

        def client_connection_lost(self, connector: Connector, reason: BaseException | None) -> None:
            self.next()

    def measure_when_servers_closed() -> None:
        if Closing.counts[0] != Closing.counts[1]:  # server sides still closing
            reactor.call_later(0.001, measure_when_servers_closed)
            return
        during.append(open_fds())
        reactor.stop()

    def start() -> None:
        base.append(open_fds())
        for _ in range(chains):
            Chain(per_chain).next()

    reactor.call_soon(start)
    try:
        run(reactor)
    finally:
        unlistened.close()
    assert during == base, "descriptors still open after every connection closed"
    made = chains * per_chain * 4 // len(modes)
    assert Closing.counts == [made, made]
    assert open_fds() == before, "the reactor did not release its own descriptors"


# -- signals, in a real process -----------------------------------------------------------

SIGNAL_SERVER = textwrap.dedent(
    """
    import logging, sys
    from eventhub.protocol import Protocol, ServerFactory
    from eventhub.reactor import Reactor

    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    SIZE = int(sys.argv[2])

    class Stuff(Protocol):
        def connection_made(self, transport):
            transport.write(bytes(range(256)) * (SIZE // 256))
            print("buffered", transport.get_write_buffer_size(), flush=True)

        def connection_lost(self, reason):
            print("lost", repr(reason), flush=True)

    reactor = Reactor(sys.argv[1])
    factory = ServerFactory()
    factory.protocol = Stuff
    print(reactor.listen_tcp(0, factory).get_host().port, flush=True)
    reactor.run()
    print("stopped_by_signal", reactor.stopped_by_signal, flush=True)
    """
)


@pytest.mark.e2e  # a server in a subprocess
@pytest.mark.parametrize("signame", ["SIGTERM", "SIGINT"])
def test_signal_to_a_serving_process_flushes_then_exits_cleanly(backend: str, signame: str) -> None:
    size = 16 << 20
    proc = subprocess.Popen(
        [sys.executable, "-c", SIGNAL_SERVER, backend, str(size)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout
    try:
        port = int(proc.stdout.readline())
        with connect(port) as s:
            buffered = proc.stdout.readline().split()
            assert buffered[0] == "buffered" and int(buffered[1]) > 0
            sig = getattr(signal, signame)
            proc.send_signal(sig)
            got = recv_all(s)
        out, err = proc.communicate(timeout=HANG)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0, err
    assert got == bytes(range(256)) * (size // 256)
    assert out.splitlines() == ["lost None", f"stopped_by_signal {int(sig)}"]
    assert f"received {signame}" in err


def test_repeated_refusals_are_logged_once_per_interval_with_a_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from eventhub._logging import RateLimitedLog

    now = [1000.0]
    throttle = RateLimitedLog(logging.getLogger("eventhub.reactor"), clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="eventhub.reactor"):
        for second in range(12):  # a refusal every second for 12 s, the interval being 5 s
            now[0] = 1000.0 + second
            throttle.log(logging.WARNING, "refused %s", second)
    assert [r.getMessage() for r in caplog.records] == [
        "refused 0",
        "refused 5 (and 4 more since the last such line)",
        "refused 10 (and 4 more since the last such line)",
    ]
