from __future__ import annotations

import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from eventhub.compat import twisted
from eventhub.compat.twisted import DelayedCall, TwistedReactor, protocol
from eventhub.compat.twisted_protocol import (
    ClientFactoryBridge,
    ConnectionDone,
    Failure,
    ProtocolBridge,
    ServerFactoryBridge,
    TwistedConnector,
)
from eventhub.errors import UsageError
from eventhub.protocol import Address
from eventhub.reactor import Reactor, available_backends
from eventhub.testing import HANG_TIMEOUT, MemoryReactor, StringTransport, run_until_stopped

from ._util import inet

SEED = Path(__file__).parent / "seed"
BACKENDS = [b for b in ("select", "poll", "epoll", "asyncio", "uvloop") if b in available_backends()]

# Turn the INFO logs on, then run the seed program exactly as ``python echo_server.py`` would.
RUN_WITH_LOGS = (
    "import logging, runpy, sys; logging.basicConfig(level=logging.INFO); "
    "runpy.run_path(sys.argv[1], run_name='__main__')"
)


# -- the seed's programs, in subprocesses -------------------------------------


@pytest.fixture
def seed_server() -> Iterator[tuple[subprocess.Popen[str], int]]:
    env = dict(os.environ, EVENTHUB_TWISTED_INTERFACE="127.0.0.1")
    server = subprocess.Popen(
        [sys.executable, "-c", RUN_WITH_LOGS, str(SEED / "echo_server.py")],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert server.stderr is not None
    try:
        port = _port_from_log(server.stderr)
        yield server, port
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def _port_from_log(stderr: Iterable[str]) -> int:
    seen = []
    for line in stderr:
        seen.append(line)
        match = re.search(r"listenTCP: listening on 127\.0\.0\.1:(\d+)", line)
        if match:
            return int(match.group(1))
    raise AssertionError("the server exited without listening:\n" + "".join(seen))


def test_seed_echo_server_and_client_run_through_the_compat_import(
    seed_server: tuple[subprocess.Popen[str], int],
) -> None:
    server, port = seed_server
    client = subprocess.run(
        [sys.executable, str(SEED / "echo_client.py"), str(port)],
        input="hello\n世界 and more\n",
        capture_output=True,
        text=True,
        timeout=HANG_TIMEOUT,
    )
    assert client.returncode == 0, client.stderr
    assert client.stdout.splitlines() == [
        "please input:hello",
        "please input:世界 and more",
        "please input:",
    ]
    server.send_signal(signal.SIGINT)  # Ctrl-C: the reactor stops gracefully
    _, stderr = server.communicate(timeout=HANG_TIMEOUT)
    assert server.returncode == 0, stderr
    assert "Traceback" not in stderr


@pytest.mark.e2e  # a fresh interpreter
def test_importing_creates_no_reactor() -> None:
    code = (
        "from eventhub.compat.twisted import reactor, protocol; "
        "assert reactor._reactor is None; print(protocol.Protocol.__name__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout == "Protocol\n"


def test_the_module_reactor_is_a_lazy_twisted_reactor() -> None:
    assert isinstance(twisted.reactor, TwistedReactor)
    assert twisted.protocol is protocol


# -- listenTCP's interface="" -----------------------------------------------


class Echo(protocol.Protocol):
    def dataReceived(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)


def test_listen_tcp_default_means_all_interfaces_and_warns(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(twisted.INTERFACE_ENV, raising=False)
    memory = MemoryReactor()
    compat = TwistedReactor(lambda: memory)
    factory = protocol.ServerFactory.forProtocol(Echo)
    with caplog.at_level(logging.INFO, logger="eventhub.compat.twisted"):
        port = compat.listenTCP(8000, factory)
    [call] = memory.tcp_servers
    assert (call.port, call.backlog, call.interface) == (8000, 50, "")
    assert port.getHost() == Address("0.0.0.0", 8000)
    [record] = caplog.records
    assert record.levelname == "WARNING"
    assert "all interfaces (0.0.0.0:8000)" in record.getMessage()
    assert "EVENTHUB_TWISTED_INTERFACE" in record.getMessage()


def test_listen_tcp_interface_from_environment_or_argument(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    memory = MemoryReactor()
    compat = TwistedReactor(lambda: memory)
    factory = protocol.ServerFactory.forProtocol(Echo)
    monkeypatch.setenv(twisted.INTERFACE_ENV, "127.0.0.1")
    with caplog.at_level(logging.INFO, logger="eventhub.compat.twisted"):
        compat.listenTCP(0, factory)
        compat.listenTCP(0, factory, interface="::1")
    assert [c.interface for c in memory.tcp_servers] == ["127.0.0.1", "::1"]
    assert {r.levelname for r in caplog.records} == {"INFO"}
    assert factory.numPorts == 2


# -- real sockets, in process, every backend ---------------------------------


class Client(protocol.Protocol):
    def connectionMade(self) -> None:
        assert self.transport is not None
        self.factory.events.append(("made", inet(self.transport.getPeer()).port))
        self.transport.writeSequence([b"hel", b"lo"])
        self.received = b""

    def dataReceived(self, data: bytes) -> None:
        self.received += data
        if self.received == b"hello":
            assert self.transport is not None
            self.transport.loseConnection()

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:
        self.factory.events.append(("lost", self.received, reason.check(ConnectionDone)))


class RecordingClientFactory(protocol.ClientFactory):
    protocol = Client

    def __init__(self, compat: TwistedReactor) -> None:
        self.compat = compat
        self.events: list[tuple[object, ...]] = []

    def startFactory(self) -> None:
        self.events.append(("startFactory",))

    def stopFactory(self) -> None:
        self.events.append(("stopFactory",))

    def startedConnecting(self, connector: TwistedConnector) -> None:
        self.events.append(("connecting", inet(connector.getDestination()).port))

    def clientConnectionFailed(self, connector: TwistedConnector, reason: Failure) -> None:
        self.events.append(("failed", reason.type))
        self.compat.stop()

    def clientConnectionLost(self, connector: TwistedConnector, reason: Failure) -> None:
        self.events.append(("clientConnectionLost", reason.check(ConnectionDone)))
        self.compat.stop()


@pytest.mark.parametrize("backend", BACKENDS)
def test_connect_tcp_client_talks_to_listen_tcp_server(backend: str) -> None:
    compat = TwistedReactor(lambda: Reactor(backend))
    port = compat.listenTCP(0, protocol.ServerFactory.forProtocol(Echo), interface="127.0.0.1")
    number = inet(port.getHost()).port
    factory = RecordingClientFactory(compat)
    connector = compat.connectTCP("127.0.0.1", number, factory, timeout=HANG_TIMEOUT)
    assert connector.getDestination() == Address("127.0.0.1", number)
    run_until_stopped(compat.eventhub_reactor)
    assert factory.events == [
        ("startFactory",),
        ("connecting", number),
        ("made", number),
        ("lost", b"hello", ConnectionDone),
        ("clientConnectionLost", ConnectionDone),
        ("stopFactory",),
    ]


@pytest.mark.parametrize("backend", BACKENDS)
def test_connect_tcp_refused_reaches_client_connection_failed(backend: str) -> None:
    # Bound but not listening: connecting is refused, and nobody else can take the port.
    with socket.socket() as closed_door:
        closed_door.bind(("127.0.0.1", 0))
        compat = TwistedReactor(lambda: Reactor(backend))
        factory = RecordingClientFactory(compat)
        compat.connectTCP("127.0.0.1", closed_door.getsockname()[1], factory)
        run_until_stopped(compat.eventhub_reactor)
    assert ("failed", ConnectionRefusedError) in factory.events
    assert factory.events[-1] == ("stopFactory",)


def test_call_from_thread_and_call_in_thread() -> None:
    compat = TwistedReactor(lambda: Reactor("select"))
    seen: list[tuple[str, bool]] = []
    loop_thread: list[int] = []

    def in_thread() -> None:
        seen.append(("in thread", threading.get_ident() != loop_thread[0]))
        compat.callFromThread(back_on_loop)

    def back_on_loop() -> None:
        seen.append(("back", threading.get_ident() == loop_thread[0]))
        compat.stop()

    def start() -> None:
        loop_thread.append(threading.get_ident())
        compat.callInThread(in_thread)

    compat.callWhenRunning(start)
    run_until_stopped(compat.eventhub_reactor)
    assert seen == [("in thread", True), ("back", True)]
    with pytest.raises(UsageError, match="runs once"):
        compat.run()


# -- calls and triggers, in fake time ----------------------------------------


def test_call_later_returns_a_twisted_style_delayed_call() -> None:
    memory = MemoryReactor()
    compat = TwistedReactor(lambda: memory)
    fired: list[tuple[str, float]] = []
    call = compat.callLater(5, lambda tag: fired.append((tag, compat.seconds())), tag="a")
    assert isinstance(call, DelayedCall)
    assert (call.getTime(), call.active()) == (5, True)
    memory.advance(1)
    call.delay(2)  # now due at 7
    assert call.getTime() == 7
    call.reset(1)  # now due at 2
    memory.advance(1)
    assert fired == [("a", 2.0)] and not call.active()
    call.cancel()  # inactive: nothing happens (Twisted would raise AlreadyCalled)
    other = compat.callLater(1, fired.append, ("b", 0.0))
    other.cancel()
    memory.advance(10)
    assert fired == [("a", 2.0)]


def test_triggers_call_when_running_and_stop() -> None:
    memory = MemoryReactor()
    compat = TwistedReactor(lambda: memory)
    order: list[str] = []
    compat.addSystemEventTrigger("before", "shutdown", order.append, "before shutdown")
    gone = compat.addSystemEventTrigger("during", "shutdown", order.append, "removed")
    compat.removeSystemEventTrigger(gone)
    compat.addSystemEventTrigger("after", "shutdown", lambda *, tag: order.append(tag), tag="kw")
    compat.callWhenRunning(order.append, "running")
    compat.callLater(1, compat.stop)
    assert not compat.running
    compat.run()
    assert order == ["running", "before shutdown", "kw"]
    assert not compat.running


def test_connect_tcp_bind_address_is_refused_clearly() -> None:
    compat = TwistedReactor(MemoryReactor)
    with pytest.raises(NotImplementedError, match="bindAddress"):
        compat.connectTCP("127.0.0.1", 1, protocol.ClientFactory(), bindAddress=("127.0.0.1", 0))


# -- the protocol bridge, with a StringTransport -----------------------------


class Recorder(Echo):
    def connectionMade(self) -> None:
        self.lost: list[Failure] = []
        self.half = False

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:
        self.lost.append(reason)


class HalfClose(Recorder):
    def readConnectionLost(self) -> None:
        self.half = True


def _bridged(proto: protocol.Protocol) -> tuple[ProtocolBridge, StringTransport]:
    bridge = ProtocolBridge(proto)
    transport = StringTransport()
    bridge.connection_made(transport)
    return bridge, transport


def test_bridge_forwards_callbacks_and_transport_calls() -> None:
    proto = HalfClose()
    bridge, transport = _bridged(proto)
    assert proto.connected == 1 and proto.transport is not None
    bridge.data_received(b"abc")
    assert transport.value() == b"abc"
    tt = proto.transport
    assert tt.getPeer() == transport.get_peer() and tt.getHost() == transport.get_host()  # equal across APIs
    tt.pauseProducing()
    assert transport.reading_paused
    tt.resumeProducing()
    assert not transport.reading_paused
    assert bridge.eof_received() is True and proto.half
    assert tt.connected and not tt.disconnecting
    tt.loseConnection()
    assert transport.disconnecting and tt.disconnecting
    bridge.connection_lost(None)
    [reason] = proto.lost
    assert reason.check(ConnectionDone) is ConnectionDone and proto.connected == 0


def test_bridge_without_half_close_closes_on_eof_and_reports_errors() -> None:
    proto = Recorder()
    bridge, transport = _bridged(proto)
    assert bridge.eof_received() is None
    assert proto.transport is not None
    proto.transport.abortConnection()
    assert transport.aborted
    reset = ConnectionResetError("peer reset")
    bridge.connection_lost(reset)
    assert proto.lost[0].value is reset
    assert proto.lost[0].getErrorMessage() == "peer reset"


def test_bridge_registers_twisted_style_producers() -> None:
    calls: list[str] = []

    class Producer:
        def pauseProducing(self) -> None:
            calls.append("pause")

        def resumeProducing(self) -> None:
            calls.append("resume")

        def stopProducing(self) -> None:
            calls.append("stop")

    proto = Echo()
    _, transport = _bridged(proto)
    assert proto.transport is not None
    proto.transport.registerProducer(Producer(), True)
    assert transport.producer is not None and transport.streaming
    transport.producer.pause_producing()
    transport.producer.resume_producing()
    transport.producer.stop_producing()
    assert calls == ["pause", "resume", "stop"]
    proto.transport.unregisterProducer()
    assert transport.producer is None
    proto.transport.stopProducing()
    assert transport.disconnecting


def test_factory_bridge_builds_bridged_protocols_or_refuses() -> None:
    factory = protocol.Factory.forProtocol(Echo)
    built = ServerFactoryBridge(factory).build_protocol(Address("127.0.0.1", 1))
    assert isinstance(built, ProtocolBridge) and isinstance(built.wrapped, Echo)
    assert built.wrapped.factory is factory

    class Refusing(protocol.Factory):
        def buildProtocol(self, addr: Address) -> None:
            return None

    assert ServerFactoryBridge(Refusing()).build_protocol(Address("127.0.0.1", 1)) is None
    with pytest.raises(TypeError, match=r"Factory\.protocol is not set"):
        protocol.Factory().buildProtocol(Address("127.0.0.1", 1))


def test_the_bridge_forwards_every_start_and_stop_to_the_one_counter() -> None:
    events: list[str] = []

    class Counting(protocol.ClientFactory):
        def startFactory(self) -> None:
            events.append("start")

        def stopFactory(self) -> None:
            events.append("stop")

    factory = Counting()
    bridge = ClientFactoryBridge(factory)
    bridge.do_start()
    bridge.do_start()  # a second user through the same bridge (a reconnect, say)
    assert (factory.numPorts, events) == (2, ["start"])
    bridge.do_stop()
    assert (factory.numPorts, events) == (1, ["start"])
    bridge.do_stop()
    bridge.do_stop()  # one too many: ignored, as Twisted does
    assert (factory.numPorts, events) == (0, ["start", "stop"])


def test_failure_surface() -> None:
    failure = Failure(KeyError("k"))
    assert failure.check(ValueError, LookupError) is LookupError
    assert failure.check(ValueError) is None
    assert failure.trap(KeyError) is KeyError
    with pytest.raises(KeyError):
        failure.trap(ValueError)
    with pytest.raises(KeyError):
        failure.raiseException()
    assert "KeyError" in failure.getTraceback()
    assert repr(failure) == "<Failure KeyError: 'k'>"
    assert protocol.connectionDone.getErrorMessage() == "Connection was closed cleanly."
