"""eventhub.netevents: a served factory's connections reported to the network hooks.

In process, with a real plugin manager; the protocol callbacks are driven by
hand through ``eventhub.testing.StringTransport``, and once over real sockets
on every backend.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Generator

import pytest

import eventhub
from eventhub._hub import Hub
from eventhub._netevents import ObservedFactory, ObservedProtocol
from eventhub.protocol import Address, Factory, Protocol, ServerFactory, Transport
from eventhub.reactor import Reactor
from eventhub.testing import StringTransport

PEER = Address("127.0.0.1", 40001)


class Recorder(Protocol):
    """The service's protocol: echoes and records what it was told."""

    def __init__(self, log: list[tuple[object, ...]]) -> None:
        self.log = log

    def connection_made(self, transport: Transport) -> None:
        self.transport = transport
        self.log.append(("protocol", "made"))

    def data_received(self, data: bytes) -> None:
        self.log.append(("protocol", "data", data))
        assert self.transport is not None
        self.transport.write(data)

    def eof_received(self) -> bool | None:
        self.log.append(("protocol", "eof"))
        return True

    def pause_writing(self) -> None:
        self.log.append(("protocol", "pause"))

    def resume_writing(self) -> None:
        self.log.append(("protocol", "resume"))

    def connection_lost(self, reason: BaseException | None) -> None:
        self.log.append(("protocol", "lost", reason))


class RecordingFactory(ServerFactory):
    def __init__(self, log: list[tuple[object, ...]]) -> None:
        self.log = log
        self.built = 0
        self.started = 0
        self.stopped = 0

    def build_protocol(self, addr: Address) -> Protocol | None:
        self.built += 1
        protocol = Recorder(self.log)
        protocol.factory = self
        return protocol

    def start_factory(self) -> None:
        self.started += 1

    def stop_factory(self) -> None:
        self.stopped += 1


class Watcher:
    """A plugin implementing every network hook, recording the calls."""

    def __init__(
        self, log: list[tuple[object, ...]], name: str = "watcher", verdict: bool | None = None
    ) -> None:
        self.log = log
        self.name = name
        self.verdict = verdict

    @eventhub.hookimpl
    def eventhub_connection_accept(self, service: str, peer: Address) -> bool | None:
        self.log.append((self.name, "accept", service, peer))
        return self.verdict

    @eventhub.hookimpl
    def eventhub_connection_made(self, service: str, peer: Address) -> None:
        self.log.append((self.name, "made", service, peer))

    @eventhub.hookimpl
    def eventhub_connection_data(self, service: str, peer: Address, data: bytes) -> None:
        self.log.append((self.name, "data", data))

    @eventhub.hookimpl
    def eventhub_connection_lost(self, service: str, peer: Address, reason: BaseException | None) -> None:
        self.log.append((self.name, "lost", reason))


def serve_one(factory: Factory, peer: Address = PEER) -> tuple[Protocol | None, StringTransport]:
    """What the reactor does for one accepted connection, by hand."""
    transport = StringTransport(peer=peer)
    protocol = factory.build_protocol(peer)
    if protocol is not None:
        protocol.connection_made(transport)
    return protocol, transport


# -- zero cost when nobody listens -----------------------------------------------


def test_without_network_hooks_the_factory_is_served_as_is() -> None:
    hub = Hub()

    class ChainOnly:
        @eventhub.hookimpl
        def eventhub_execute(self, event: eventhub.Event) -> None:
            pass

    hub.register(ChainOnly())
    factory = RecordingFactory([])
    assert hub.observe_factory(factory, "echo") is factory


def test_with_only_an_accept_hook_the_protocol_is_not_wrapped() -> None:
    hub = Hub()

    class Gate:
        @eventhub.hookimpl
        def eventhub_connection_accept(self, peer: Address) -> bool | None:
            return None

    hub.register(Gate())
    log: list[tuple[object, ...]] = []
    factory = RecordingFactory(log)
    observed = hub.observe_factory(factory, "echo")
    assert isinstance(observed, ObservedFactory)
    protocol, _ = serve_one(observed)
    assert type(protocol) is Recorder


# -- the calls, in order ---------------------------------------------------------


def test_hooks_see_each_event_around_the_protocol() -> None:
    log: list[tuple[object, ...]] = []
    hub = Hub()
    hub.register(Watcher(log))
    factory = RecordingFactory(log)
    observed = hub.observe_factory(factory, "echo")
    protocol, transport = serve_one(observed)
    assert isinstance(protocol, ObservedProtocol)
    assert protocol.factory is factory
    protocol.data_received(b"one")
    protocol.pause_writing()
    protocol.resume_writing()
    assert protocol.eof_received() is True
    protocol.connection_lost(None)
    assert transport.value() == b"one"
    assert log == [
        ("watcher", "accept", "echo", PEER),
        ("watcher", "made", "echo", PEER),
        ("protocol", "made"),
        ("watcher", "data", b"one"),
        ("protocol", "data", b"one"),
        ("protocol", "pause"),
        ("protocol", "resume"),
        ("protocol", "eof"),
        ("protocol", "lost", None),
        ("watcher", "lost", None),
    ]


def test_a_refused_connection_never_reaches_the_service() -> None:
    log: list[tuple[object, ...]] = []
    hub = Hub()
    hub.register(Watcher(log, verdict=False))
    factory = RecordingFactory(log)
    protocol, _ = serve_one(hub.observe_factory(factory, "echo"))
    assert protocol is None
    assert factory.built == 0
    assert log == [("watcher", "accept", "echo", PEER)]


def test_the_first_verdict_decides() -> None:
    log: list[tuple[object, ...]] = []
    hub = Hub()
    hub.register(Watcher(log, name="late", verdict=False), name="late")
    hub.register(Watcher(log, name="undecided", verdict=None), name="undecided")
    hub.register(Watcher(log, name="first", verdict=True), name="first")
    protocol, _ = serve_one(hub.observe_factory(RecordingFactory(log), "echo"))
    # The hub's plugin order (by name here): "first" says yes, so the others are not asked.
    assert protocol is not None
    accepts = [entry[0] for entry in log if entry[1] == "accept"]
    assert accepts == ["first"]


def test_tryfirst_is_honoured() -> None:
    log: list[tuple[object, ...]] = []

    class Early:  # by name it would be asked after "aardvark"
        @eventhub.hookimpl(tryfirst=True)
        def eventhub_connection_accept(self) -> bool:
            log.append(("early",))
            return False

    hub = Hub()
    hub.register(Early(), name="early")
    hub.register(Watcher(log, verdict=True), name="aardvark")
    protocol, _ = serve_one(hub.observe_factory(RecordingFactory(log), "echo"))
    assert protocol is None
    assert log == [("early",)]


def test_implementations_may_take_fewer_arguments_in_any_order() -> None:
    seen: list[object] = []

    class Partial:
        @eventhub.hookimpl
        def eventhub_connection_data(self, data: bytes, service: str) -> None:
            seen.append((data, service))

        @eventhub.hookimpl
        def eventhub_connection_lost(self, reason: BaseException | None) -> None:
            seen.append(reason)

    hub = Hub()
    hub.register(Partial())
    protocol, _ = serve_one(hub.observe_factory(RecordingFactory([]), "svc"))
    assert protocol is not None
    protocol.data_received(b"x")
    error = ConnectionResetError()
    protocol.connection_lost(error)
    assert seen == [(b"x", "svc"), error]


def test_starting_and_stopping_are_counted_on_the_wrapped_factory() -> None:
    hub = Hub()
    hub.register(Watcher([]))
    factory = RecordingFactory([])
    observed = hub.observe_factory(factory, "echo")
    observed.do_start()
    observed.do_start()
    observed.do_stop()
    observed.do_stop()
    assert (factory.started, factory.stopped) == (1, 1)


def test_a_factory_refusal_is_not_wrapped() -> None:
    hub = Hub()
    hub.register(Watcher([]))

    class Full(ServerFactory):
        def build_protocol(self, addr: Address) -> Protocol | None:
            return None

    protocol, _ = serve_one(hub.observe_factory(Full(), "echo"))
    assert protocol is None


# -- errors ----------------------------------------------------------------------


class Broken:
    """Every hook raises."""

    @eventhub.hookimpl
    def eventhub_connection_made(self) -> None:
        raise RuntimeError("made broke")

    @eventhub.hookimpl
    def eventhub_connection_data(self, data: bytes) -> None:
        raise RuntimeError(f"data broke on {data!r}")

    @eventhub.hookimpl
    def eventhub_connection_lost(self) -> None:
        raise RuntimeError("lost broke")


def test_a_failing_hook_is_logged_with_its_plugin_and_the_connection_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log: list[tuple[object, ...]] = []
    hub = Hub()
    hub.register(Watcher(log), name="watcher")
    hub.register(Broken(), name="broken")  # called first: it must not stop the watcher
    caplog.set_level(logging.DEBUG, logger="eventhub.netevents")
    protocol, transport = serve_one(hub.observe_factory(RecordingFactory(log), "echo"))
    assert protocol is not None
    protocol.data_received(b"a")
    protocol.data_received(b"b")
    protocol.connection_lost(None)
    assert transport.value() == b"ab"
    assert [entry[:2] for entry in log if entry[0] == "watcher"] == [
        ("watcher", "accept"),
        ("watcher", "made"),
        ("watcher", "data"),
        ("watcher", "data"),
        ("watcher", "lost"),
    ]
    assert ("protocol", "lost", None) in log
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.getMessage().split(" (")[0] for r in errors] == [
        "plugin 'broken' failed in eventhub_connection_made",
        "plugin 'broken' failed in eventhub_connection_data",
        "plugin 'broken' failed in eventhub_connection_lost",
    ]
    assert all(r.exc_info for r in errors)
    assert "service echo, peer 127.0.0.1:40001" in errors[1].getMessage()
    # The second data failure: one line at DEBUG, not another traceback at ERROR.
    later = [
        r for r in caplog.records if r.levelno == logging.DEBUG and "data broke on b'b'" in r.getMessage()
    ]
    assert len(later) == 1


def test_a_failing_accept_hook_refuses_the_connection(caplog: pytest.LogCaptureFixture) -> None:
    class BrokenGate:
        @eventhub.hookimpl
        def eventhub_connection_accept(self) -> bool:
            raise OSError("deny list unreadable")

    hub = Hub()
    hub.register(BrokenGate(), name="gate")
    factory = RecordingFactory([])
    protocol, _ = serve_one(hub.observe_factory(factory, "echo"))
    assert protocol is None
    assert factory.built == 0
    messages = [r.getMessage() for r in caplog.records]
    assert any("plugin 'gate' failed in eventhub_connection_accept" in m for m in messages)
    assert "echo: refused the connection from 127.0.0.1:40001: plugin 'gate' failed" in messages


def test_a_failing_protocol_still_reaches_the_lost_hooks() -> None:
    log: list[tuple[object, ...]] = []

    class Fragile(Recorder):
        def connection_lost(self, reason: BaseException | None) -> None:
            raise ValueError("protocol broke")

    class FragileFactory(RecordingFactory):
        def build_protocol(self, addr: Address) -> Protocol | None:
            return Fragile(self.log)

    hub = Hub()
    hub.register(Watcher(log))
    protocol, _ = serve_one(hub.observe_factory(FragileFactory(log), "echo"))
    assert protocol is not None
    with pytest.raises(ValueError, match="protocol broke"):  # the reactor logs it
        protocol.connection_lost(None)
    assert log[-1] == ("watcher", "lost", None)


def test_wrapper_implementations_are_refused_at_registration() -> None:
    class Wrapping:
        @eventhub.hookimpl(wrapper=True)
        def eventhub_connection_made(self) -> Generator[None, object, object]:
            return (yield)

    hub = Hub()
    with pytest.raises(eventhub.PluginError, match="eventhub_connection_made cannot be a wrapper"):
        hub.register(Wrapping(), name="wrapping")
    factory = RecordingFactory([])
    assert hub.observe_factory(factory, "echo") is factory


# -- over real sockets -----------------------------------------------------------


@pytest.mark.parametrize("backend", ["select", "poll", "epoll"])
def test_over_real_sockets(backend: str) -> None:
    log: list[tuple[object, ...]] = []
    hub = Hub()
    hub.register(Watcher(log))
    reactor = Reactor(backend=backend)
    listener = reactor.listen_tcp(0, hub.observe_factory(RecordingFactory(log), "echo"))
    port = listener.get_host().port
    echoed = []

    def client() -> None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(b"over the wire")
                echoed.append(sock.recv(100))
        finally:
            reactor.call_from_thread(reactor.stop)

    thread = threading.Thread(target=client)
    reactor.call_soon(thread.start)
    reactor.run(install_signal_handlers=False)
    thread.join(10)
    assert echoed == [b"over the wire"]
    kinds = [entry[:2] for entry in log if entry[0] == "watcher"]
    assert kinds[:3] == [("watcher", "accept"), ("watcher", "made"), ("watcher", "data")]
    assert kinds[-1] == ("watcher", "lost")
    assert log[1][:3] == ("watcher", "made", "echo")
    assert isinstance(log[0][3], Address)
    assert log[0][3].host == "127.0.0.1"


def test_an_observed_protocol_that_forgets_super_still_has_its_transport() -> None:
    """The bug: with a network hook installed, ``self.transport`` stayed None (issue 10)."""
    import socket as _socket

    import eventhub
    from eventhub.protocol import Protocol, ServerFactory

    class Forgetful(Protocol):
        def connection_made(self, transport: Transport) -> None:
            pass  # no super(): make_connection set self.transport already

        def data_received(self, data: bytes) -> None:
            assert self.transport is not None
            self.transport.write(data)

    replies: list[bytes] = []

    class Service:
        @eventhub.hookimpl
        def eventhub_start_services(self, hub: eventhub.Hub, reactor: Reactor) -> object:
            factory = ServerFactory()
            factory.protocol = Forgetful
            listener = reactor.listen_tcp(0, hub.observe_factory(factory, "svc"))
            port = listener.get_host().port

            def client() -> None:
                with _socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                    sock.sendall(b"ping")
                    replies.append(sock.recv(10))
                reactor.call_from_thread(hub.stop)

            reactor.call_in_thread(client)
            return listener

    class Watcher:
        @eventhub.hookimpl
        def eventhub_connection_made(self, service: str) -> None:
            pass

    hub = eventhub.Hub()
    hub.register(Service(), "service")
    hub.register(Watcher(), "watcher")
    hub.run()
    assert replies == [b"ping"]


def test_the_memory_listener_sets_the_transport_of_a_protocol_that_forgets_super() -> None:
    from eventhub.protocol import Protocol, ServerFactory
    from eventhub.testing import MemoryReactor

    class Forgetful(Protocol):
        def connection_made(self, transport: Transport) -> None:
            pass

    factory = ServerFactory()
    factory.protocol = Forgetful
    listener = MemoryReactor().listen_tcp(0, factory)
    protocol, transport = listener.accept()
    assert protocol is not None and protocol.transport is transport
