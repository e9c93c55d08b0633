from __future__ import annotations

import os
import signal

import pytest

from eventhub.errors import ServiceError, UsageError
from eventhub.protocol import (
    Address,
    ClientFactory,
    Connector,
    Producer,
    Protocol,
    ServerFactory,
    Transport,
)
from eventhub.reactor import Reactor, TimerHandle
from eventhub.reactor._triggers import SystemTriggers
from eventhub.testing import Clock, MemoryReactor, StringTransport, run_until_stopped


class _Producer:
    def pause_producing(self) -> None: ...
    def resume_producing(self) -> None: ...
    def stop_producing(self) -> None: ...


def test_string_transport_is_a_transport() -> None:
    assert isinstance(StringTransport(), Transport)


def test_records_writes_in_order() -> None:
    t = StringTransport()
    t.write(b"a")
    t.write(bytearray(b"b"))
    t.write(memoryview(b"cd")[1:])
    t.write_sequence([b"e", b"f"])
    assert t.value() == b"abdef"
    t.clear()
    assert t.value() == b""


def test_write_refuses_text() -> None:
    with pytest.raises(TypeError, match="not str"):
        StringTransport().write("text")  # type: ignore[arg-type]


def test_lose_connection_then_writes_are_dropped() -> None:
    t = StringTransport()
    t.write(b"kept")
    assert not t.is_closing()
    t.lose_connection()
    t.write(b"lost")
    assert (t.value(), t.dropped, t.disconnecting, t.aborted) == (b"kept", 4, True, False)
    assert t.is_closing() and t.closed


def test_abort_connection() -> None:
    t = StringTransport()
    t.abort_connection()
    assert t.aborted and t.is_closing() and not t.disconnecting


def test_write_eof_drops_later_writes() -> None:
    t = StringTransport()
    t.write_eof()
    t.write(b"x")
    assert t.eof_written and t.value() == b"" and t.dropped == 1


def test_addresses() -> None:
    t = StringTransport(peer=Address("127.0.0.1", 1), host=Address("127.0.0.1", 2))
    assert (t.get_peer().port, t.get_host().port) == (1, 2)
    assert str(StringTransport().get_peer()) == "127.0.0.1:54321"


def test_reading_pause_resume() -> None:
    t = StringTransport()
    t.pause_reading()
    assert t.reading_paused
    t.resume_reading()
    assert not t.reading_paused


def test_write_buffer_limits() -> None:
    t = StringTransport()
    assert t.get_write_buffer_size() == 0
    t.set_write_buffer_limits(high=1000)
    assert t.write_buffer_limits == (1000, 250)
    t.set_write_buffer_limits(high=10, low=5)
    assert t.write_buffer_limits == (10, 5)
    with pytest.raises(ValueError, match="low <= high"):
        t.set_write_buffer_limits(high=1, low=5)


def test_one_producer_at_a_time() -> None:
    t = StringTransport()
    producer: Producer = _Producer()
    t.register_producer(producer, streaming=True)
    assert (t.producer, t.streaming) == (producer, True)
    with pytest.raises(RuntimeError, match="already registered"):
        t.register_producer(_Producer(), streaming=False)
    t.unregister_producer()
    assert t.producer is None
    t.register_producer(producer, streaming=False)
    assert t.streaming is False


# -- Clock ------------------------------------------------------------------


def test_clock_runs_calls_in_order_when_due() -> None:
    clock = Clock()
    fired: list[tuple[str, float]] = []
    clock.call_later(2, lambda: fired.append(("b", clock.seconds())))
    clock.call_later(1, lambda: fired.append(("a", clock.seconds())))
    clock.call_later(2, lambda: fired.append(("c", clock.seconds())))
    clock.advance(0.5)
    assert fired == []
    clock.advance(1.5)
    assert fired == [("a", 1.0), ("b", 2.0), ("c", 2.0)]
    assert clock.seconds() == 2.0


def test_clock_handle_is_the_reactors() -> None:
    clock = Clock(start=100)
    handle = clock.call_later(5, lambda: None)
    assert isinstance(handle, TimerHandle)
    assert (handle.time, handle.active()) == (105, True)


def test_cancelled_calls_never_run() -> None:
    clock = Clock()
    fired: list[int] = []
    handle = clock.call_later(1, fired.append, 1)
    clock.call_later(1, fired.append, 2)
    handle.cancel()
    handle.cancel()  # cancelling twice does nothing, as in the reactor
    clock.advance(10)
    assert fired == [2]
    assert not handle.active()


def test_reset_moves_a_call() -> None:
    clock = Clock()
    fired: list[float] = []
    handle = clock.call_later(1, lambda: fired.append(clock.seconds()))
    clock.advance(0.5)
    handle.reset(2)
    clock.advance(1)
    assert fired == []
    clock.advance(1)
    assert fired == [2.5]
    with pytest.raises(UsageError, match="cannot reset"):
        handle.reset(1)


def test_a_self_rearming_timer_fires_once_per_period() -> None:
    clock = Clock()
    ticks: list[float] = []

    def tick() -> None:
        ticks.append(clock.seconds())
        clock.call_later(1, tick)

    clock.call_later(1, tick)
    clock.advance(10)
    assert ticks == [float(n) for n in range(1, 11)]


def test_calls_scheduled_for_now_during_advance_run_in_it() -> None:
    clock = Clock()
    fired: list[str] = []
    clock.call_later(1, lambda: clock.call_later(0, fired.append, "zero"))
    clock.advance(1)
    assert fired == ["zero"]


def test_pending_lists_active_calls_soonest_first() -> None:
    clock = Clock()
    late = clock.call_later(3, lambda: None)
    early = clock.call_later(1, lambda: None)
    gone = clock.call_later(2, lambda: None)
    gone.cancel()
    assert clock.pending() == [early, late]
    assert clock.next_call_time() == 1
    clock.advance(1)
    assert clock.pending() == [late]


def test_error_in_a_call_propagates_after_the_others_due_then() -> None:
    clock = Clock()
    fired: list[str] = []

    def boom() -> None:
        raise KeyError("boom")

    clock.call_later(1, boom)
    clock.call_later(1, fired.append, "same instant")
    clock.call_later(2, fired.append, "later")
    with pytest.raises(KeyError, match="boom"):
        clock.advance(5)
    assert fired == ["same instant"]
    assert clock.seconds() == 1
    clock.advance(1)
    assert fired == ["same instant", "later"]


@pytest.mark.parametrize("bad", [-1, float("nan")])
def test_clock_refuses_to_go_back(bad: float) -> None:
    with pytest.raises(ValueError, match="cannot advance"):
        Clock().advance(bad)
    with pytest.raises(UsageError, match="timer delay"):
        Clock().call_later(bad, lambda: None)


# -- MemoryReactor ----------------------------------------------------------


class Echo(Protocol):
    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)


class Client(ClientFactory):
    protocol = Echo

    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []

    def start_connecting(self, connector: Connector) -> None:
        self.events.append(("start", connector.get_destination()))

    def client_connection_failed(self, connector: Connector, reason: BaseException) -> None:
        self.events.append(("failed", type(reason)))

    def client_connection_lost(self, connector: Connector, reason: BaseException | None) -> None:
        self.events.append(("lost", reason))


class CountingFactory(ServerFactory):
    protocol = Echo
    starts = stops = 0

    def start_factory(self) -> None:
        self.starts += 1

    def stop_factory(self) -> None:
        self.stops += 1


def test_memory_reactor_records_listen_tcp() -> None:
    reactor = MemoryReactor()
    factory = CountingFactory()
    listener = reactor.listen_tcp(0, factory, backlog=5)
    [call] = reactor.tcp_servers
    assert (call.port, call.factory, call.backlog, call.interface) == (0, factory, 5, "127.0.0.1")
    assert call.listener is listener
    host = listener.get_host()
    assert host.host == "127.0.0.1" and host.port > 0
    assert factory.starts == 1
    listener.stop_listening()
    listener.stop_listening()
    assert (listener.listening, factory.stops) == (False, 1)


def test_memory_reactor_port_in_use() -> None:
    reactor = MemoryReactor()
    reactor.listen_tcp(8000, ServerFactory())
    with pytest.raises(ServiceError, match="already in use"):
        reactor.listen_tcp(8000, ServerFactory())
    assert reactor.listen_tcp(8000, ServerFactory(), interface="").get_host().host == "0.0.0.0"


def test_memory_listener_accept_runs_the_protocol() -> None:
    listener = MemoryReactor().listen_tcp(0, CountingFactory())
    protocol, transport = listener.accept(Address("127.0.0.1", 1234))
    assert protocol is not None and transport is not None
    protocol.data_received(b"ping")
    assert transport.value() == b"ping"
    assert transport.get_host() == listener.get_host()
    assert transport.get_peer() == Address("127.0.0.1", 1234)


def test_memory_connector_success_then_loss() -> None:
    reactor = MemoryReactor()
    factory = Client()
    connector = reactor.connect_tcp("127.0.0.1", 9, factory, timeout=3)
    [call] = reactor.tcp_clients
    assert (call.host, call.port, call.timeout, call.connector) == ("127.0.0.1", 9, 3, connector)
    assert factory.events == [("start", Address("127.0.0.1", 9))]
    protocol, transport = connector.succeed()
    protocol.data_received(b"x")
    assert transport.value() == b"x"
    connector.disconnect()
    assert transport.disconnecting
    reason = ConnectionResetError()
    connector.lose(reason)
    assert factory.events[-1] == ("lost", reason)
    with pytest.raises(UsageError, match="disconnected, not connected"):
        connector.lose()


def test_memory_connector_failure_and_retry() -> None:
    factory = Client()
    connector = MemoryReactor().connect_tcp("127.0.0.1", 9, factory)
    connector.fail(ConnectionRefusedError())
    connector.connect()
    connector.stop_connecting()
    start = ("start", Address("127.0.0.1", 9))
    failures = [("failed", ConnectionRefusedError), ("failed", ConnectionAbortedError)]
    assert factory.events == [start, failures[0], start, failures[1]]


def test_memory_reactor_queue_and_timers_in_loop_order() -> None:
    reactor = MemoryReactor()
    order: list[str] = []

    def timer() -> None:
        order.append("timer 1")
        reactor.call_soon(order.append, "soon after timer 1")

    reactor.call_later(1, timer)
    reactor.call_later(2, order.append, "timer 2")
    reactor.call_soon(order.append, "soon")
    reactor.advance(5)
    assert order == ["soon", "timer 1", "soon after timer 1", "timer 2"]
    assert reactor.seconds() == 5


def test_run_ready_is_bounded() -> None:
    reactor = MemoryReactor()

    def again() -> None:
        reactor.call_soon(again)

    reactor.call_soon(again)
    with pytest.raises(RuntimeError, match="kept queueing"):
        reactor.run_ready()


def test_threads_run_in_the_queue_deterministically() -> None:
    reactor = MemoryReactor()
    got: list[object] = []
    reactor.call_in_thread(got.append, "in thread")
    reactor.call_from_thread(got.append, "from thread")
    reactor.defer_to_thread(pow, 2, 10).add_callbacks(got.append)
    reactor.defer_to_thread(int, "x").add_callbacks(got.append, lambda e: got.append(type(e)))
    assert got == []
    reactor.run_ready()
    assert got == ["in thread", "from thread", 1024, ValueError]


def test_run_in_fake_time_until_stop_with_triggers_in_order() -> None:
    reactor = MemoryReactor()
    order: list[str] = []
    for phase in ("after", "before", "during"):
        reactor.add_system_event_trigger(phase, "startup", order.append, f"{phase} startup")
        reactor.add_system_event_trigger(phase, "shutdown", order.append, f"{phase} shutdown")
    removed = reactor.add_system_event_trigger("before", "shutdown", order.append, "removed")
    reactor.remove_system_event_trigger(removed)
    listener = reactor.listen_tcp(0, ServerFactory())
    connector = reactor.connect_tcp("127.0.0.1", 9, Client())
    reactor.call_later(3600, reactor.stop)
    reactor.call_later(7200, order.append, "never: stopped before")
    reactor.run()
    assert order == [
        "before startup",
        "during startup",
        "after startup",
        "before shutdown",
        "during shutdown",
        "after shutdown",
    ]
    assert reactor.seconds() == 3600
    assert not listener.listening and connector.state == "disconnected"
    assert not reactor.running
    with pytest.raises(UsageError, match="runs once"):
        reactor.run()


def test_run_returns_when_nothing_is_left() -> None:
    reactor = MemoryReactor()
    seen: list[bool] = []
    reactor.call_later(1, lambda: seen.append(reactor.running))
    reactor.run()
    assert seen == [True] and not reactor.running


def test_stop_when_not_running() -> None:
    with pytest.raises(UsageError, match="not running"):
        MemoryReactor().stop()


def test_bad_trigger_names() -> None:
    reactor = MemoryReactor()
    with pytest.raises(UsageError, match="phase 'whenever'"):
        reactor.add_system_event_trigger("whenever", "startup", print)
    with pytest.raises(UsageError, match="system event 'lunch'"):
        reactor.add_system_event_trigger("before", "lunch", print)


def test_a_failing_trigger_reaches_the_test_after_the_others_of_its_phase() -> None:
    reactor = MemoryReactor()
    order: list[str] = []

    def boom() -> None:
        raise KeyError("trigger")

    reactor.add_system_event_trigger("during", "startup", boom)
    reactor.add_system_event_trigger("during", "startup", order.append, "same phase")
    reactor.add_system_event_trigger("after", "startup", order.append, "next phase")
    with pytest.raises(KeyError, match="trigger"):
        reactor.run()
    assert order == ["same phase"]
    assert not reactor.running


def test_system_triggers_fire_once_in_order_and_return_failures() -> None:
    triggers = SystemTriggers()
    order: list[str] = []
    error = ValueError("no")

    def boom() -> None:
        raise error

    first = triggers.add("before", "shutdown", order.append, "first")
    triggers.add("before", "shutdown", boom)
    triggers.add("before", "shutdown", order.append, "third")
    gone = triggers.add("before", "shutdown", order.append, "removed")
    assert gone == first + 3  # ids are never reused
    triggers.remove(gone)
    triggers.remove(12345)  # unknown: nothing happens
    assert triggers.fire("before", "shutdown") == [(boom, error)]
    assert order == ["first", "third"]
    assert triggers.fire("before", "shutdown") == []  # once only
    assert order == ["first", "third"]


# -- run_until_stopped --------------------------------------------------------


def test_run_until_stopped_returns_when_the_code_stops_the_reactor() -> None:
    reactor = MemoryReactor()
    reactor.call_later(5, reactor.stop)
    run_until_stopped(reactor, timeout=10)
    assert reactor.seconds() == 5 and not reactor.running
    assert reactor.clock.pending() == []  # the guard is cancelled, not left behind


def test_run_until_stopped_fails_when_nothing_stops_the_reactor() -> None:
    reactor = MemoryReactor()
    shutdown: list[float] = []
    reactor.add_system_event_trigger("after", "shutdown", lambda: shutdown.append(reactor.seconds()))
    reactor.call_later(60, reactor.stop)  # too late
    with pytest.raises(AssertionError, match=r"still running after 10s"):
        run_until_stopped(reactor, timeout=10)
    assert shutdown == [10]  # stopped by the guard: it still shut down
    assert not reactor.running


def test_run_until_stopped_on_a_real_reactor(reactor: Reactor) -> None:
    reactor.call_soon(reactor.stop)
    run_until_stopped(reactor)  # the reactor fixture fails the test if the guard's timer stayed
    assert not reactor.running


def test_run_until_stopped_fails_on_a_real_reactor_nobody_stops(reactor: Reactor) -> None:
    with pytest.raises(AssertionError, match="nothing stopped it"):
        run_until_stopped(reactor, timeout=0.01)
    assert not reactor.running


def test_run_until_stopped_can_install_the_signal_handlers(reactor: Reactor) -> None:
    reactor.call_soon(os.kill, os.getpid(), signal.SIGINT)  # a KeyboardInterrupt without the handlers
    run_until_stopped(reactor, install_signal_handlers=True)
    assert reactor.stopped_by_signal == signal.SIGINT


def test_memory_defer_to_thread_delivers_whatever_the_function_raises_as_the_real_one_does() -> None:
    reactor = MemoryReactor()
    outcomes: list[object] = []

    def leave() -> int:
        raise SystemExit(3)  # the real pool delivers it too (threads.deferred_call, one implementation)

    result = reactor.defer_to_thread(leave).add_callbacks(outcomes.append, outcomes.append)
    assert reactor.thread_results == {result}
    reactor.run_ready()
    assert [type(o) for o in outcomes] == [SystemExit]
    assert reactor.thread_results == frozenset()


def test_memory_close_releases_a_reactor_that_never_ran() -> None:
    reactor = MemoryReactor()
    listener = reactor.listen_tcp(0, ServerFactory())
    failed: list[str] = []

    class Client(ClientFactory):
        def client_connection_failed(self, connector: object, reason: BaseException) -> None:
            failed.append(type(reason).__name__)

    reactor.connect_tcp("127.0.0.1", 1, Client())
    reactor.close()
    reactor.close()  # idempotent
    assert not listener.listening and failed == ["ConnectionAbortedError"]
    with pytest.raises(UsageError, match="runs once"):
        reactor.run()


def test_memory_reactor_records_readers_and_the_signal_request() -> None:
    reactor = MemoryReactor()
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    reactor.add_reader(7, lambda: None)
    assert reactor.install_signal_handlers() and reactor.signals_requested
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before  # untouched
    reactor.remove_reader(7)
    assert reactor.readers == {}
