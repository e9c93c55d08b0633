"""The event bus: subscribing three ways, routing by pattern, FIFO delivery, async and blocking handlers."""

from __future__ import annotations

import inspect
import logging
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import eventhub
from eventhub.config import Config, CoreSettings, load
from eventhub.errors import ConfigError, PatternError, PluginError, UsageError
from eventhub.reactor import Reactor
from eventhub.schedule import Schedule, start
from eventhub.testing import MemoryReactor


def recorder() -> tuple[list[str], Callable[[eventhub.Event], None]]:
    seen: list[str] = []
    return seen, lambda event: seen.append(event.name)


# -- subscribing -------------------------------------------------------------------


def test_three_ways_to_subscribe_and_the_seed_handler_gets_everything() -> None:
    seen: list[str] = []

    class Orders(eventhub.Handler):
        events = ("order.*",)

        def execute(self, event: eventhub.Event) -> None:
            seen.append(f"orders {event.name}")

    class Seed(eventhub.Handler):
        def execute(self, event: eventhub.Event) -> None:
            seen.append(f"seed {event.name}")

    class Marked:
        @eventhub.on("order.paid", "user.>")
        def paid(self, event: eventhub.Event) -> None:
            seen.append(f"marked {event.name}")

    hub = eventhub.Hub()
    hub.register(Orders, "orders")
    hub.register(Seed, "seed")
    hub.register(Marked(), "marked")
    subscription = hub.subscribe("user.*", lambda event: seen.append(f"callback {event.name}"))
    for name in ("order.paid", "user.created", "run"):
        hub.emit(name)
    assert seen == [
        "marked order.paid",
        "orders order.paid",
        "seed order.paid",
        "marked user.created",
        "seed user.created",
        "callback user.created",
        "seed run",
    ]
    subscription.cancel()
    subscription.cancel()  # twice is harmless
    seen.clear()
    hub.emit("user.deleted")
    assert seen == ["marked user.deleted", "seed user.deleted"]
    assert hub.records["orders"].events == ["order.*"] and hub.records["seed"].events == [">"]
    assert hub.records["marked"].events == ["order.paid", "user.>"]


def test_a_module_plugin_with_on_functions(tmp_path: Path) -> None:
    import types

    module = types.ModuleType("shop")
    exec(
        "import eventhub\nseen = []\n"
        "@eventhub.on('order.paid')\ndef paid(event):\n    seen.append(event.payload)\n",
        module.__dict__,
    )
    hub = eventhub.Hub()
    hub.register(module, "shop")
    hub.emit("order.paid", {"id": 7})
    hub.emit("order.refunded", {"id": 7})
    assert module.seen == [{"id": 7}]


def test_event_carries_id_time_and_source() -> None:
    got: list[eventhub.Event] = []
    hub = eventhub.Hub()
    hub.subscribe(">", got.append)
    hub.emit("a.b", 1, source="shop")
    hub.emit("a.b", 1)
    first, second = got
    assert (first.name, first.payload, first.source, second.source) == ("a.b", 1, "shop", None)
    assert first.id != second.id and isinstance(first.id, int) and first.id.bit_length() <= 128
    assert first.time <= second.time
    assert repr(first) == "Event(name='a.b', payload=1, source='shop')"
    assert eventhub.Event("run") == eventhub.Event("run")  # id and time do not count
    with pytest.raises(AttributeError):
        first.name = "changed"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("declaration", "message"),
    [
        ("events = ('order.>.x',)", "'>' may only be the last token"),
        ("events = ()", "subscribes to no event"),
        ("max_concurrency = 0", "max_concurrency must be an integer >= 1"),
        ("drop = 'drop-random'", "drop must be one of"),
        ("blocking = True\n    async def execute(self, event): pass", "cannot also be blocking"),
    ],
)
def test_bad_subscriptions_refuse_the_plugin_naming_it(declaration: str, message: str) -> None:
    namespace: dict[str, Any] = {"eventhub": eventhub}
    body = (
        declaration if "def execute" in declaration else declaration + "\n    def execute(self, event): pass"
    )
    exec(f"class Bad(eventhub.Handler):\n    {body}\n", namespace)
    hub = eventhub.Hub()
    with pytest.raises(PluginError, match=message) as info:
        hub.register(namespace["Bad"], "bad")
    assert "plugin 'bad'" in str(info.value)
    assert "bad" not in hub.records and not hub.pm.has_plugin("bad")
    hub.emit("order.paid")  # nothing of it left in the bus


def test_an_on_function_must_take_the_event() -> None:
    class Wrong:
        @eventhub.on("a")
        def handler(self) -> None:
            pass

    with pytest.raises(PluginError, match="takes one argument, the event"):
        eventhub.Hub().register(Wrong(), "wrong")


def test_invalid_names_and_patterns_are_errors_at_emit_and_subscribe() -> None:
    hub = eventhub.Hub()
    with pytest.raises(PatternError, match=r"invalid event name 'a\.\.b'"):
        hub.emit("a..b")
    with pytest.raises(PatternError, match="wildcards"):
        hub.dispatch(eventhub.Event("a.*"))
    with pytest.raises(UsageError, match="invalid event pattern"):
        hub.subscribe("a.>.b", print)


# -- order and delivery ------------------------------------------------------------


def test_handlers_of_a_name_run_in_the_plugin_order() -> None:
    seen: list[str] = []

    def handler(tag: str) -> type[eventhub.Handler]:
        class Tagged(eventhub.Handler):
            events = ("tick",)

            def execute(self, event: eventhub.Event) -> None:
                seen.append(tag)

        return Tagged

    class Late(eventhub.Handler):
        events = ("tick",)
        eventhub_after = ("b",)

        def execute(self, event: eventhub.Event) -> None:
            seen.append("late")

    hub = eventhub.Hub(config=Config(core=CoreSettings(order=("c",))))
    hub.register(Late, "a")
    hub.register(handler("b"), "b")
    hub.register(handler("c"), "c")
    hub.emit("tick")
    assert seen == ["c", "b", "late"]


def stack_depth() -> int:
    """How many frames deep the caller is (``len(inspect.stack(0))`` without reading every frame's source)."""
    depth, frame = 0, inspect.currentframe()
    while frame is not None:
        depth, frame = depth + 1, frame.f_back
    return depth


def test_delivery_is_fifo_and_never_re_entrant() -> None:
    log: list[str] = []
    depths: list[int] = []
    hub = eventhub.Hub()

    def first(event: eventhub.Event) -> None:
        log.append(f"first {event.name}")
        if event.name.startswith("n."):
            depths.append(stack_depth())
        if event.name == "a":
            hub.emit("b")
            hub.emit("c")
            log.append("first emitted b and c")
        if event.name.startswith("n.") and int(event.name[2:]) < 50:
            hub.emit(f"n.{int(event.name[2:]) + 1}")

    hub.subscribe(">", first)
    hub.subscribe(">", lambda event: log.append(f"second {event.name}"))
    assert hub.dispatch(eventhub.Event("a")) == ()
    assert log == [
        "first a",
        "first emitted b and c",
        "second a",
        "first b",
        "second b",
        "first c",
        "second c",
    ]
    hub.emit("n.0")  # a handler that keeps emitting: a loop, not a recursion
    assert len(depths) == 51 and len(set(depths[1:])) == 1  # the 50 queued ones: no deeper each time


def test_an_emit_from_another_thread_is_delivered_on_the_reactor_thread() -> None:
    hub = eventhub.Hub()
    threads: list[str] = []
    hub.subscribe("from.thread", lambda event: threads.append(threading.current_thread().name))
    hub.subscribe("from.thread", lambda event: hub.stop())
    reactor = hub.reactor

    async def main() -> None:
        threading.Thread(target=hub.emit, args=("from.thread",), name="emitter").start()
        await reactor.sleep(3600)

    reactor.spawn(main())
    reactor.call_later(20, reactor.stop)  # a hang guard
    reactor.run(install_signal_handlers=False)
    assert threads == [threading.current_thread().name]


@pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="needs SIGUSR1")
def test_an_emit_from_a_signal_handler_during_a_delivery_is_queued_after_it() -> None:
    hub = eventhub.Hub()
    log: list[str] = []

    def slow(event: eventhub.Event) -> None:
        log.append(f"start {event.name}")
        if event.name == "work":
            os.kill(os.getpid(), signal.SIGUSR1)  # the handler runs between two bytecodes, now
            for _ in range(1000):
                pass
        log.append(f"end {event.name}")

    hub.subscribe(">", slow)
    previous = signal.signal(signal.SIGUSR1, lambda *_: hub.emit("signalled"))
    try:
        hub.emit("work")
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert log == ["start work", "end work", "start signalled", "end signalled"]


def test_failures_are_isolated_counted_and_reported_in_one_line(caplog: pytest.LogCaptureFixture) -> None:
    seen, record = recorder()
    hub = eventhub.Hub()

    class Exits(eventhub.Handler):
        events = ("boom",)

        def execute(self, event: eventhub.Event) -> None:
            raise SystemExit(3)  # a plugin may not end the process

    class Raises(eventhub.Handler):
        events = ("boom",)

        def execute(self, event: eventhub.Event) -> None:
            raise KeyError("x")

    hub.register(Exits, "exits")
    hub.register(Raises, "raises")
    hub.subscribe("boom", record)
    with caplog.at_level(logging.ERROR, "eventhub.chain"):
        failures = hub.dispatch(eventhub.Event("boom"))
    assert [(f.plugin, type(f.error)) for f in failures] == [("exits", SystemExit), ("raises", KeyError)]
    assert seen == ["boom"] and hub.failure_count == 2
    assert "plugin 'exits' failed in eventhub_execute on event 'boom': SystemExit: 3" in caplog.text


def test_the_failure_log_is_bounded_but_counts_everything() -> None:
    hub = eventhub.Hub()

    def broken(event: eventhub.Event) -> None:
        raise ValueError(event.payload)

    hub.subscribe("x", broken)
    logging.getLogger("eventhub.chain").disabled = True
    try:
        for n in range(1000):
            hub.emit("x", n)
    finally:
        logging.getLogger("eventhub.chain").disabled = False
    assert hub.failure_count == 1000 and hub.bus.failures.counts["subscriber"] == 1000
    assert len(hub.failures) == 100 and str(hub.failures[-1].error) == "999"


def test_on_error_stop_ends_the_chain_of_that_event() -> None:
    seen, record = recorder()
    hub = eventhub.Hub(config=Config(core=CoreSettings(on_error="stop")))
    hub.subscribe("e", lambda event: 1 / 0)
    hub.subscribe("e", record)
    assert len(hub.dispatch(eventhub.Event("e"))) == 1 and seen == []


def test_routes_are_cached_and_rebuilt_when_subscriptions_change() -> None:
    hub = eventhub.Hub()
    assert not hub.wants("order.paid")
    route = hub.bus.route("order.paid")
    assert hub.bus.route("order.paid") is route
    subscription = hub.subscribe("order.*", print)
    assert hub.wants("order.paid") and hub.bus.route("order.paid") is not route
    subscription.cancel()
    assert not hub.wants("order.paid")


def test_monitors_see_every_delivery() -> None:
    calls: list[tuple[str, str]] = []
    hub = eventhub.Hub()

    class Shop:
        @eventhub.on("order.paid")
        def paid(self, event: eventhub.Event) -> None:
            pass

    hub.register(Shop(), "shop")

    def monitor(plugin: str, what: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def traced(*args: Any) -> Any:
            calls.append((plugin, what))
            return function(*args)

        return traced

    undo = hub.add_monitor(monitor)
    hub.emit("order.paid")
    undo()
    hub.emit("order.paid")
    assert calls == [("shop", "paid")]


# -- async and blocking handlers ----------------------------------------------------


def run_hub_until(hub: eventhub.Hub, main: Callable[[], Any]) -> None:
    """Run ``main()`` as a task on the hub's reactor, then stop it (a 20 s hang guard)."""
    reactor = hub.reactor

    async def wrapper() -> None:
        try:
            await main()
        finally:
            reactor.stop()

    reactor.spawn(wrapper())
    guard = reactor.call_later(20, reactor.stop)
    reactor.run(install_signal_handlers=False)
    assert guard.active(), "hung"
    guard.cancel()


def test_async_handlers_interleave_and_publish_waits_for_them() -> None:
    hub = eventhub.Hub()
    log: list[str] = []

    class Slow(eventhub.Handler):
        events = ("job.*",)

        async def execute(self, event: eventhub.Event) -> None:
            log.append(f"start {event.payload}")
            await hub.reactor.sleep(0.01 if event.payload == "a" else 0)
            log.append(f"end {event.payload}")

    hub.register(Slow, "slow")

    async def main() -> None:
        hub.emit("job.x", "a")
        hub.emit("job.x", "b")
        assert log == []  # each delivery is a task, started on the next pass
        failures = await hub.publish("job.x", "c")
        assert failures == ()
        assert "end c" in log
        while "end a" not in log:
            await hub.reactor.sleep(0.001)

    run_hub_until(hub, main)
    assert log[:3] == ["start a", "start b", "start c"]
    assert log.index("end b") < log.index("end a")


def test_an_async_handler_failure_is_reported_like_a_sync_one(caplog: pytest.LogCaptureFixture) -> None:
    hub = eventhub.Hub()

    @eventhub.on("x")
    async def broken(event: eventhub.Event) -> None:
        await hub.reactor.sleep(0)
        raise RuntimeError("async broke")

    hub.subscribe("x", broken)
    result: list[tuple[eventhub.Failure, ...]] = []

    async def main() -> None:
        result.append(await hub.publish("x"))

    with caplog.at_level(logging.ERROR):
        run_hub_until(hub, main)
    (failure,) = result[0]
    assert (failure.plugin, str(failure.error)) == ("subscriber", "async broke")
    assert "plugin 'subscriber' failed in " in caplog.text and "async broke" in caplog.text
    assert hub.failure_count == 1
    assert "nobody retrieved" not in caplog.text  # reported once, not again at garbage collection


@pytest.mark.parametrize(("policy", "kept"), [("drop-oldest", [0, 1, 3, 4]), ("drop-newest", [0, 1, 2, 3])])
def test_max_concurrency_queues_and_drops_by_the_declared_policy(
    policy: str, kept: list[int], caplog: pytest.LogCaptureFixture
) -> None:
    hub = eventhub.Hub()
    running: list[int] = []
    peak: list[int] = []
    done: list[int] = []

    async def handler(event: eventhub.Event) -> None:
        running.append(event.payload)
        peak.append(len(running))
        await hub.reactor.sleep(0.001)
        running.remove(event.payload)
        done.append(event.payload)

    hub.subscribe("job", handler, max_concurrency=2, max_pending=2, drop=policy)  # type: ignore[arg-type]

    async def main() -> None:
        for n in range(5):
            hub.emit("job", n)
        while len(done) < 4:
            await hub.reactor.sleep(0.001)

    with caplog.at_level(logging.WARNING, "eventhub.bus"):
        run_hub_until(hub, main)
    assert sorted(done) == kept and max(peak) == 2
    assert hub.bus.dropped == 1 and "dropped event 'job'" in caplog.text


def test_a_blocking_handler_runs_on_the_thread_pool_while_the_loop_goes_on() -> None:
    hub = eventhub.Hub()
    release = threading.Event()
    log: list[str] = []

    class Blocking(eventhub.Handler):
        events = ("slow",)
        blocking = True

        def execute(self, event: eventhub.Event) -> None:
            log.append(f"handler on {threading.current_thread().name}")
            release.wait(20)
            log.append("handler done")

    hub.register(Blocking, "blocking")

    async def main() -> None:
        publishing = hub.reactor.spawn(hub.publish("slow"))
        while not log:
            await hub.reactor.sleep(0.001)
        log.append("loop still running")  # while the handler blocks
        release.set()
        assert await publishing == ()

    run_hub_until(hub, main)
    assert log[0].startswith("handler on eventhub-worker") and log[1:] == [
        "loop still running",
        "handler done",
    ]


# -- the running system ----------------------------------------------------------


def test_run_emits_started_stopping_and_reload_on_sighup() -> None:
    seen: list[str] = []

    class Watcher(eventhub.Handler):
        events = ("eventhub.*",)

        def execute(self, event: eventhub.Event) -> None:
            seen.append(event.name)
            if event.name == "eventhub.started":
                threading.Thread(target=os.kill, args=(os.getpid(), signal.SIGHUP)).start()
            if event.name == "eventhub.reload":
                hub.stop()

    class Service:
        @eventhub.hookimpl
        def eventhub_start_services(self, reactor: Reactor) -> object:
            return reactor.call_later(3600, lambda: None)  # "a service": keeps the hub serving

    hub = eventhub.Hub()
    hub.register(Watcher, "watcher")
    hub.register(Service(), "service")
    hub.run()
    assert seen == ["eventhub.started", "eventhub.reload", "eventhub.stopping"]


def test_run_waits_for_the_tasks_of_the_run_event() -> None:
    log: list[str] = []

    class Async(eventhub.Handler):
        events = ("run",)

        async def execute(self, event: eventhub.Event) -> None:
            await hub.reactor.sleep(0.01)
            log.append("async run handler finished")

    hub = eventhub.Hub()
    hub.register(Async, "async")
    hub.run()
    assert log == ["async run handler finished"]


def test_schedules_emit_on_a_grid_and_skip_missed_passes() -> None:
    memory = MemoryReactor()
    emitted: list[tuple[str, float]] = []
    start(
        [Schedule(every="10s", emit="tick")],
        memory,
        lambda name, payload: emitted.append((name, memory.seconds())),
    )
    memory.advance(35)
    assert emitted == [("tick", 10.0), ("tick", 20.0), ("tick", 30.0)]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('every = "5x"\nemit = "tick"', 'schedule\\[0\\].every: must be a duration such as "5s"'),
        ('every = "1ms"\nemit = "tick"', "schedule\\[0\\].every: must be at least 0.01s"),
        ('every = 0\nemit = "tick"', "must be at least"),
        ('every = "5s"\nemit = "a..b"', "schedule\\[0\\].emit: invalid event name"),
        ('every = "5s"', "schedule\\[0\\].emit: is required"),
    ],
)
def test_bad_schedules_are_config_errors_naming_the_entry(entry: str, message: str, tmp_path: Path) -> None:
    path = tmp_path / "eventhub.toml"
    path.write_text(f"[[eventhub.schedule]]\n{entry}\n")
    with pytest.raises(ConfigError, match=message):
        load(path)


def test_a_schedule_from_the_config_file() -> None:
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "eventhub.toml"
        path.write_text('[[eventhub.schedule]]\nevery = "250ms"\nemit = "tick"\npayload = { n = 1 }\n')
        config = load(path)
    (entry,) = config.core.schedule
    assert (entry.period("x"), entry.emit, entry.payload) == (0.25, "tick", {"n": 1})


# -- regressions found while writing the guide -----------------------------------


def test_max_concurrency_counts_a_handler_across_event_names_and_route_rebuilds() -> None:
    hub = eventhub.Hub()
    running: list[str] = []
    peak: list[int] = []

    async def handler(event: eventhub.Event) -> None:
        running.append(event.name)
        peak.append(len(running))
        await hub.reactor.sleep(0.001)
        running.remove(event.name)

    hub.subscribe("job.*", handler, max_concurrency=1)

    async def main() -> None:
        hub.emit("job.a")
        hub.emit("job.b")
        hub.subscribe("other", print).cancel()  # rebuilds every route
        hub.emit("job.a")
        while len(peak) < 3 or running:
            await hub.reactor.sleep(0.001)

    run_hub_until(hub, main)
    assert max(peak) == 1


def test_a_blocking_run_handler_is_waited_for_and_its_failure_counted() -> None:
    class Fails(eventhub.Handler):
        events = ("run",)
        blocking = True

        def execute(self, event: eventhub.Event) -> None:
            raise RuntimeError("disk full")

    hub = eventhub.Hub()
    hub.register(Fails, "fails")
    hub.run()
    assert hub.failure_count == 1


def test_events_emitted_by_the_last_connections_to_close_reach_async_handlers() -> None:
    import socket

    from eventhub.protocol import Protocol, ServerFactory

    seen: list[str] = []
    clients: list[socket.socket] = []

    class Conn(Protocol):
        def connection_lost(self, reason: BaseException | None) -> None:
            hub.emit("conn.lost")

    class Service:
        @eventhub.hookimpl
        def eventhub_start_services(self, reactor: Reactor) -> object:
            factory = ServerFactory()
            factory.protocol = Conn
            listener = reactor.listen_tcp(0, factory)
            clients.append(socket.create_connection(("127.0.0.1", listener.get_host().port)))
            reactor.linger_timeout = 0.05  # the client never closes: do not wait for its EOF
            reactor.call_later(0.05, hub.stop)
            return listener

        @eventhub.on("conn.lost")
        async def later(self, event: eventhub.Event) -> None:
            await hub.reactor.sleep(0)
            seen.append("async handler ran")

    hub = eventhub.Hub()
    hub.register(Service(), "service")
    try:
        hub.run()
    finally:
        for client in clients:
            client.close()
    assert seen == ["async handler ran"]


def test_on_works_on_static_and_class_methods() -> None:
    seen: list[str] = []

    class Plugin:
        @eventhub.on("a")
        @staticmethod
        def outside(event: eventhub.Event) -> None:
            seen.append("static outside")

        @staticmethod
        @eventhub.on("a")
        def inside(event: eventhub.Event) -> None:
            seen.append("static inside")

        @eventhub.on("a")
        @classmethod
        def klass(cls, event: eventhub.Event) -> None:
            seen.append("class")

    hub = eventhub.Hub()
    hub.register(Plugin(), "plugin")
    hub.emit("a")
    assert sorted(seen) == ["class", "static inside", "static outside"]


def test_a_ctrl_c_under_pythons_own_handler_goes_past_the_handlers(monkeypatch: pytest.MonkeyPatch) -> None:
    # A Hub run by hand: KeyboardInterrupt cannot be told from the user's, so it is taken as theirs.
    monkeypatch.setattr(signal, "getsignal", lambda signum: signal.default_int_handler)
    hub = eventhub.Hub()

    def interrupted(event: eventhub.Event) -> None:
        raise KeyboardInterrupt

    hub.subscribe("e", interrupted)
    with pytest.raises(KeyboardInterrupt):
        hub.emit("e")
    assert hub.failure_count == 0
    seen, record = recorder()
    hub.subscribe("f", record)
    hub.emit("f")  # the bus is usable again, not stuck "busy"
    assert seen == ["f"]
