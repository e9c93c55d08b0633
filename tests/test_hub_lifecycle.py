"""Hub.run(): the lifecycle of hookspecs, in process on a ``MemoryReactor`` (fake time, no sockets).

configure -> startup -> "run" -> start_services (a plugin listening on the
memory reactor, a client connected through it) -> events -> shutdown; then the
first-party echo and connlog plugins (imported from source) the same way. One
test keeps the default: a real reactor on loopback, to show ``Hub()`` still makes one.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import pytest
from support import load_source_package

import eventhub
from eventhub.config import Config, CoreSettings
from eventhub.protocol import Address, Protocol, ServerFactory
from eventhub.reactor import ListenerAPI, Reactor, ReactorAPI
from eventhub.schedule import Schedule
from eventhub.testing import MemoryListener, MemoryReactor, StringTransport

if TYPE_CHECKING:  # mypy reads the plugins' source; the tests import them from there too
    import eventhub_connlog as connlog
    import eventhub_echo as echo
else:
    echo = load_source_package("echo", "eventhub_echo")
    connlog = load_source_package("connlog", "eventhub_connlog")


class Lifecycle:
    def __init__(self, log: list[str]) -> None:
        self.log = log

    @eventhub.hookimpl
    def eventhub_configure(self, settings: Mapping[str, Any]) -> None:
        self.log.append(f"configure {dict(settings)}")

    @eventhub.hookimpl
    def eventhub_startup(self) -> None:
        self.log.append("startup")

    @eventhub.hookimpl
    def eventhub_execute(self, event: eventhub.Event) -> None:
        self.log.append(f"execute {event.name}")

    @eventhub.hookimpl
    def eventhub_shutdown(self) -> None:
        self.log.append("shutdown")


class Upper(Protocol):
    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data.upper())


class UpperService:
    """A network plugin, typed as the first-party ones are: it gets a ``ReactorAPI``."""

    listener: ListenerAPI | None = None

    @eventhub.hookimpl
    def eventhub_start_services(self, hub: eventhub.Hub, reactor: ReactorAPI) -> ListenerAPI:
        factory = ServerFactory()
        factory.protocol = Upper
        self.listener = reactor.listen_tcp(0, hub.observe_factory(factory, "upper"))
        return self.listener


def serving_hub(log: list[str], reactor: MemoryReactor) -> tuple[eventhub.Hub, UpperService]:
    hub = eventhub.Hub(reactor=reactor)
    service = UpperService()
    hub.register(Lifecycle(log), "life")
    hub.register(service, "upper")
    return hub, service


def test_run_without_services_returns_after_the_chain() -> None:
    log: list[str] = []
    reactor = MemoryReactor()
    hub = eventhub.Hub(config=Config(plugins={"life": {"k": 1}}), reactor=reactor)
    hub.register(Lifecycle(log), "life")
    hub.run()
    assert log == ["configure {'k': 1}", "startup", "execute run", "shutdown"]
    assert hub.failures == []
    assert not reactor.signals_requested and reactor.tcp_servers == []


def test_run_serves_a_client_through_the_memory_reactor_until_stopped() -> None:
    log: list[str] = []
    replies: list[bytes] = []
    reactor = MemoryReactor()
    hub, service = serving_hub(log, reactor)

    def client(event: eventhub.Event) -> None:
        (call,) = reactor.tcp_servers
        assert call.interface == "127.0.0.1" and call.listener is service.listener
        protocol, transport = call.listener.accept(Address("127.0.0.1", 50000))
        assert protocol is not None and transport is not None
        protocol.data_received(b"hello")
        replies.append(transport.value())
        protocol.connection_lost(None)
        hub.stop()

    hub.subscribe(eventhub._hub.STARTED, client)
    hub.run()
    assert replies == [b"HELLO"]
    assert log == [
        "configure {}",
        "startup",
        "execute run",
        "execute eventhub.started",
        "execute eventhub.stopping",
        "shutdown",
    ]
    assert reactor.signals_requested  # SIGINT/SIGTERM stop a serving hub from the moment services start
    assert isinstance(service.listener, MemoryListener) and not service.listener.listening
    assert hub.failures == []


def test_network_hooks_see_the_memory_reactors_connections() -> None:
    seen: list[tuple[str, ...]] = []

    class Watcher:
        @eventhub.hookimpl
        def eventhub_connection_made(self, service: str, peer: Address) -> None:
            seen.append(("made", service, str(peer.port)))

        @eventhub.hookimpl
        def eventhub_connection_data(self, service: str, data: bytes) -> None:
            seen.append(("data", service, data.decode()))

        @eventhub.hookimpl
        def eventhub_connection_lost(self, service: str, reason: BaseException | None) -> None:
            seen.append(("lost", service, repr(reason)))

    reactor = MemoryReactor()
    hub, service = serving_hub([], reactor)
    hub.register(Watcher(), "watcher")

    def client(event: eventhub.Event) -> None:
        assert isinstance(service.listener, MemoryListener)
        protocol, transport = service.listener.accept(Address("127.0.0.1", 50001))
        assert protocol is not None and transport is not None
        protocol.data_received(b"ab")
        assert transport.value() == b"AB"  # the observed protocol still serves
        protocol.connection_lost(None)
        hub.stop()

    hub.subscribe(eventhub._hub.STARTED, client)
    hub.run()
    assert seen == [("made", "upper", "50001"), ("data", "upper", "ab"), ("lost", "upper", "None")]


def test_sighup_while_serving_emits_reload() -> None:
    log: list[str] = []
    reactor = MemoryReactor()
    hub, _ = serving_hub(log, reactor)

    def play_sighup(event: eventhub.Event) -> None:
        reactor.signal_handlers[signal.SIGHUP]()
        hub.stop()

    hub.subscribe(eventhub._hub.STARTED, play_sighup)
    hub.run()
    assert log.index("execute eventhub.reload") == log.index("execute eventhub.started") + 1


def test_async_and_blocking_handlers_finish_before_run_returns_in_fake_time() -> None:
    done: list[str] = []
    reactor = MemoryReactor()

    async def slow(event: eventhub.Event) -> None:
        await reactor.sleep(3600)  # an hour of fake time: no wait at all
        done.append(f"async at {reactor.seconds():.0f}")

    def blocking(event: eventhub.Event) -> None:
        done.append("blocking")

    hub = eventhub.Hub(reactor=reactor)
    hub.subscribe("run", slow)
    hub.subscribe("run", blocking, blocking=True)
    hub.run()
    assert sorted(done) == ["async at 3600", "blocking"]
    assert reactor.tasks == frozenset() and reactor.thread_results == frozenset()


def test_scheduled_events_tick_in_fake_time() -> None:
    ticks: list[float] = []
    reactor = MemoryReactor()
    hub = eventhub.Hub(config=Config(core=CoreSettings(schedule=(Schedule(60, "tick"),))), reactor=reactor)

    def tick(event: eventhub.Event) -> None:
        ticks.append(reactor.seconds())
        if len(ticks) == 3:
            hub.stop()

    hub.subscribe("tick", tick)
    hub.run()
    assert ticks == [60.0, 120.0, 180.0]


def test_on_asyncio_run_waits_for_a_blocking_handler_too() -> None:
    """The hub asks any reactor for thread_results (ReactorAPI): the asyncio one lacked them."""
    threads: list[str] = []
    hub = eventhub.Hub(backend="asyncio")
    hub.subscribe("run", lambda event: threads.append(threading.current_thread().name), blocking=True)
    hub.run()
    assert threads == ["eventhub-worker-0"] and hub.failures == []


def test_on_asyncio_stop_takes_the_drain_a_rolling_restart_passes() -> None:
    hub = eventhub.Hub(
        config=Config(core=CoreSettings(backend="asyncio", schedule=(Schedule(3600, "tick"),)))
    )
    hub.subscribe(eventhub._hub.STARTED, lambda event: hub.stop(0.5))
    hub.run()
    assert hub.failures == []


def test_a_reactor_factory_gives_each_run_its_own_reactor() -> None:
    made: list[MemoryReactor] = []

    def factory() -> MemoryReactor:
        made.append(MemoryReactor())
        return made[-1]

    log: list[str] = []
    hub = eventhub.Hub(reactor=factory)
    hub.register(UpperService(), "upper")
    hub.subscribe(eventhub._hub.STARTED, lambda event: hub.stop())
    hub.register(Lifecycle(log), "life")
    hub.run()
    hub.run()
    assert len(made) == 2 and made[0] is not made[1]
    assert [len(r.tcp_servers) for r in made] == [1, 1]
    assert log.count("shutdown") == 2


def test_a_reactor_class_is_a_factory_too() -> None:
    hub = eventhub.Hub(reactor=MemoryReactor)
    assert isinstance(hub.reactor, MemoryReactor)
    hub.close()


def test_a_given_reactor_excludes_backend_and_shared_sockets() -> None:
    with pytest.raises(eventhub.UsageError, match=r"Hub\(reactor=...\) takes no backend"):
        eventhub.Hub(reactor=MemoryReactor(), backend="poll")


def test_a_failing_lifecycle_hook_is_isolated_and_counted() -> None:
    log: list[str] = []

    class Broken:
        @eventhub.hookimpl
        def eventhub_startup(self) -> None:
            raise RuntimeError("startup broke")

    hub = eventhub.Hub(reactor=MemoryReactor())
    hub.register(Lifecycle(log), "life")
    hub.register(Broken(), "broken")
    hub.run()
    assert "execute run" in log and "shutdown" in log
    assert [(f.plugin, f.hook, str(f.error)) for f in hub.failures] == [
        ("broken", "eventhub_startup", "startup broke")
    ]


def test_a_failing_service_is_counted_and_the_others_still_serve() -> None:
    log: list[str] = []

    class Broken:
        @eventhub.hookimpl
        def eventhub_start_services(self) -> object:
            raise RuntimeError("no service")

    reactor = MemoryReactor()
    hub, _ = serving_hub(log, reactor)
    hub.register(Broken(), "broken")
    hub.subscribe(eventhub._hub.STARTED, lambda event: hub.stop())
    hub.run()
    assert "execute eventhub.started" in log
    assert [(f.plugin, f.hook) for f in hub.failures] == [("broken", "eventhub_start_services")]


def test_a_service_error_stops_the_run_and_still_shuts_down() -> None:
    log: list[str] = []

    class Unstartable:
        @eventhub.hookimpl
        def eventhub_start_services(self, reactor: ReactorAPI) -> object:
            return reactor.listen_tcp(8000, ServerFactory())

    reactor = MemoryReactor()
    reactor.listen_tcp(8000, ServerFactory())  # someone else has the port
    hub = eventhub.Hub(reactor=reactor)
    hub.register(Lifecycle(log), "life")
    hub.register(Unstartable(), "unstartable")
    with pytest.raises(eventhub.ServiceError, match="address already in use"):
        hub.run()
    assert log[-1] == "shutdown"


def test_configure_error_names_the_key() -> None:
    class Picky:
        @eventhub.hookimpl
        def eventhub_configure(self, settings: Mapping[str, Any]) -> None:
            raise eventhub.ConfigError("picky.size", "must be positive")

    hub = eventhub.Hub(reactor=MemoryReactor())
    hub.register(Picky(), "picky")
    with pytest.raises(eventhub.ConfigError, match=r"picky\.size: must be positive"):
        hub.run()


def test_unknown_backend_is_refused_early() -> None:
    with pytest.raises(eventhub.UsageError, match="unknown reactor backend 'nope'"):
        eventhub.Hub(backend="nope")


# -- first-party plugins, registered from source, on the memory reactor -------------------


def serve_echo(
    plugins: dict[str, dict[str, Any]], play: Callable[[MemoryListener], None]
) -> tuple[eventhub.Hub, MemoryReactor]:
    """echo and connlog through the whole lifecycle on a MemoryReactor; ``play(listener)`` once started."""
    reactor = MemoryReactor()
    hub = eventhub.Hub(config=Config(plugins=plugins), reactor=reactor)
    hub.register(echo.EchoPlugin(), "echo")
    hub.register(connlog.ConnLog(), "connlog")

    def started(event: eventhub.Event) -> None:
        (call,) = reactor.tcp_servers
        play(call.listener)
        hub.stop()

    hub.subscribe(eventhub._hub.STARTED, started)
    hub.run()
    return hub, reactor


def connect(listener: MemoryListener, host: str) -> tuple[Protocol, StringTransport] | None:
    protocol, transport = listener.accept(Address(host, 50000))
    return None if protocol is None or transport is None else (protocol, transport)


def test_echo_listens_where_configured_and_echoes_through_connlog() -> None:
    served: list[bytes] = []

    def play(listener: MemoryListener) -> None:
        connected = connect(listener, "127.0.0.1")
        assert connected is not None
        protocol, transport = connected
        protocol.data_received(b"ping")
        served.append(transport.value())
        protocol.connection_lost(None)

    hub, reactor = serve_echo({"echo": {"port": 9000}, "connlog": {"allow": ["127.0.0.0/8"]}}, play)
    assert served == [b"ping"]
    assert [(c.port, c.interface) for c in reactor.tcp_servers] == [(9000, "127.0.0.1")]
    assert hub.failures == []


@pytest.mark.parametrize(
    ("settings", "host", "served"),
    [
        ({"deny": ["127.0.0.1"]}, "127.0.0.1", False),
        ({"allow": ["10.0.0.0/8", "::1"]}, "127.0.0.1", False),
        ({"allow": ["10.0.0.0/8"]}, "10.1.2.3", True),
        ({"deny": ["127.0.0.1"], "services": ["chat"]}, "127.0.0.1", True),
    ],
)
def test_connlog_decides_who_echo_serves(settings: dict[str, Any], host: str, served: bool) -> None:
    outcome: list[bool] = []

    def play(listener: MemoryListener) -> None:
        connected = connect(listener, host)
        outcome.append(connected is not None)
        if connected is not None:
            connected[0].connection_lost(None)

    serve_echo({"echo": {"port": 9000}, "connlog": settings}, play)
    assert outcome == [served]


def test_connlog_bad_settings_stop_the_run_before_anything_listens() -> None:
    with pytest.raises(eventhub.ConfigError, match=r"connlog\.allow"):
        serve_echo({"connlog": {"allow": ["not an address"]}}, lambda listener: None)


def test_by_default_the_hub_makes_a_real_reactor_of_the_configured_backend() -> None:
    """Serving on it, sockets and all, is tests/test_netevents.py's (a real client through hub.run())."""
    hub = eventhub.Hub(config=Config(core=CoreSettings(backend="poll")))
    reactor = hub.reactor
    assert isinstance(reactor, Reactor) and reactor.backend == "poll"
    assert hub.reactor is reactor  # made once, on first use
    hub.close()
    assert hub.reactor is not reactor  # a closed reactor is not reused
    hub.close()
