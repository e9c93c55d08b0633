"""The loop itself: backends, call_soon/call_from_thread, threads, triggers, stop, signals."""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading

import pytest

from eventhub.errors import UsageError
from eventhub.protocol import Protocol, ServerFactory, Transport
from eventhub.reactor import Reactor, available_backends
from eventhub.reactor._timers import NO_KWARGS

from ._util import Background, connect, recv_all, run


def test_unknown_backend_names_it_and_lists_the_available_ones() -> None:
    with pytest.raises(UsageError) as info:
        Reactor("kqueue-ish")
    message = str(info.value)
    assert "'kqueue-ish'" in message
    for name in ("select", "auto"):
        assert name in message


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="epoll is Linux-only")
def test_auto_is_epoll_on_linux() -> None:
    r = Reactor()
    try:
        assert r.backend == "epoll"
    finally:
        r.close()
    assert "epoll" in available_backends()


def test_backend_attribute_names_the_choice(reactor: Reactor, backend: str) -> None:
    assert reactor.backend == backend
    assert not reactor.running


def test_call_soon_runs_in_order_with_args_and_kwargs(reactor: Reactor) -> None:
    got: list[object] = []
    reactor.call_soon(got.append, 1)
    reactor.call_soon(lambda *a, **k: got.append((a, k)), 2, x=3)
    reactor.call_soon(reactor.stop)
    run(reactor)
    assert got == [1, ((2,), {"x": 3})]


def test_calls_without_kwargs_share_one_empty_dict_that_nothing_changes(reactor: Reactor) -> None:
    """The loop queues NO_KWARGS for every call without keywords; a callee cannot alter it."""
    seen: list[dict[str, object]] = []

    def meddle(**kw: object) -> None:
        kw["x"] = 1  # its own copy
        seen.append(kw)

    reactor.call_soon(meddle)
    reactor.call_later(0, meddle)
    reactor.call_soon(reactor.call_soon, meddle)
    reactor.call_later(0.01, reactor.stop)
    run(reactor)
    assert seen == [{"x": 1}] * 3
    assert NO_KWARGS == {}


def test_only_callbacks_ready_at_the_start_of_a_pass_run(reactor: Reactor) -> None:
    """A callback that keeps rescheduling itself cannot starve timers or I/O."""
    spins = [0]

    def spin() -> None:
        spins[0] += 1
        if spins[0] == 1:  # due at once, yet the ready queue is never empty from now on
            reactor.call_later(0, reactor.stop)
        reactor.call_soon(spin)

    reactor.call_soon(spin)
    run(reactor)
    assert spins[0] > 1  # it ran, pass after pass, and the timer still fired


def test_exception_in_callbacks_is_logged_and_the_loop_goes_on(
    reactor: Reactor, caplog: pytest.LogCaptureFixture
) -> None:
    got: list[str] = []

    def boom(where: str) -> None:
        raise RuntimeError(f"boom in {where}")

    reactor.call_soon(boom, "call_soon")
    reactor.call_later(0, boom, "call_later")
    reactor.call_later(0.01, got.append, "after")
    reactor.call_later(0.02, reactor.stop)
    with caplog.at_level(logging.ERROR, logger="eventhub.reactor"):
        run(reactor)
    assert got == ["after"]
    messages = [r.getMessage() for r in caplog.records if r.exc_info]
    assert len(messages) == 2
    assert all(r.name == "eventhub.reactor" for r in caplog.records)


def test_call_from_thread_from_many_threads(reactor: Reactor) -> None:
    n_threads, per_thread = 16, 200
    got: list[tuple[int, int]] = []
    loop_threads: set[int] = set()
    start = threading.Barrier(n_threads)

    def record(t: int, i: int) -> None:
        loop_threads.add(threading.get_ident())
        got.append((t, i))
        if len(got) == n_threads * per_thread:
            reactor.stop()

    def worker(t: int) -> None:
        start.wait()
        for i in range(per_thread):
            reactor.call_from_thread(record, t, i)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    run(reactor)
    for th in threads:
        th.join()
    assert loop_threads == {threading.get_ident()}
    assert len(got) == n_threads * per_thread
    for t in range(n_threads):  # each thread's calls keep their order
        assert [i for tt, i in got if tt == t] == list(range(per_thread))


def test_call_from_thread_wakes_a_loop_blocked_in_poll(reactor: Reactor) -> None:
    """No timers, no I/O: only the waker can end this poll()."""
    got: list[str] = []

    def later() -> None:
        threading.Event().wait(0.05)
        reactor.call_from_thread(got.append, "woken")
        reactor.call_from_thread(reactor.stop)

    reactor.add_system_event_trigger("after", "startup", lambda: threading.Thread(target=later).start())
    run(reactor)
    assert got == ["woken"]


def test_defer_to_thread_delivers_result_and_error_on_the_loop_thread(reactor: Reactor) -> None:
    loop_thread = threading.get_ident()
    got: list[object] = []

    def work(x: int) -> tuple[int, int]:
        return x * 2, threading.get_ident()

    def fail() -> None:
        raise ValueError("from the worker")

    def on_result(value: tuple[int, int]) -> None:
        got.append(("result", value[0], value[1] != loop_thread, threading.get_ident()))

    def on_error(exc: BaseException) -> None:
        got.append(("error", repr(exc), threading.get_ident()))
        reactor.stop()

    def start() -> None:
        ok = reactor.defer_to_thread(work, 21)
        ok.add_callbacks(on_result)

        def then_fail(_: object) -> None:
            reactor.defer_to_thread(fail).add_callbacks(got.append, on_error)

        ok.add_callbacks(then_fail)

    reactor.call_soon(start)
    run(reactor)
    assert got == [
        ("result", 42, True, loop_thread),
        ("error", "ValueError('from the worker')", loop_thread),
    ]


def test_thread_result_callbacks_added_late_run_at_once(reactor: Reactor) -> None:
    got: list[object] = []

    def start() -> None:
        res = reactor.defer_to_thread(lambda: "v")

        def check(value: str) -> None:
            assert res.done() and res.result() == "v"
            res.add_callbacks(lambda v: got.append(("late", v)))
            reactor.stop()

        res.add_callbacks(check)

    reactor.call_soon(start)
    run(reactor)
    assert got == [("late", "v")]


def test_call_in_thread_runs_off_the_loop_thread_and_errors_are_logged(
    reactor: Reactor, caplog: pytest.LogCaptureFixture
) -> None:
    idents: list[int] = []

    def job() -> None:
        idents.append(threading.get_ident())
        reactor.call_from_thread(reactor.call_in_thread, bad)

    def bad() -> None:
        try:
            raise KeyError("worker failure")
        finally:
            reactor.call_from_thread(reactor.stop)

    reactor.call_soon(reactor.call_in_thread, job)
    with caplog.at_level(logging.ERROR, logger="eventhub.reactor"):
        run(reactor)
    assert idents and idents[0] != threading.get_ident()
    assert any("KeyError" in (r.exc_text or "") or r.exc_info for r in caplog.records)


def _threads_used(reactor: Reactor, jobs: int) -> set[int]:
    """Run ``jobs`` short jobs on the reactor's pool; the threads they ran on."""
    idents: set[int] = set()
    lock = threading.Lock()
    done = [0]

    def job() -> None:
        threading.Event().wait(0.002)
        with lock:
            idents.add(threading.get_ident())
            done[0] += 1
            if done[0] == jobs:
                reactor.call_from_thread(reactor.stop)

    for _ in range(jobs):
        reactor.call_in_thread(job)
    run(reactor)
    return idents


def test_thread_pool_is_bounded(backend: str) -> None:
    assert 1 <= len(_threads_used(Reactor(backend, max_threads=3), 30)) <= 3


def test_max_threads_is_settable_on_every_backend(backend: str) -> None:
    reactor = Reactor(backend)
    with pytest.raises(ValueError, match="max_threads must be >= 1"):
        reactor.max_threads = 0
    reactor.max_threads = 2
    assert 1 <= len(_threads_used(reactor, 20)) <= 2 and reactor.max_threads == 2


def test_system_event_triggers_fire_in_phase_order(reactor: Reactor) -> None:
    got: list[str] = []
    for event in ("shutdown", "startup"):
        for phase in ("after", "during", "before"):
            reactor.add_system_event_trigger(phase, event, got.append, f"{phase}-{event}")
    removed = reactor.add_system_event_trigger("before", "startup", got.append, "removed")
    reactor.remove_system_event_trigger(removed)
    reactor.add_system_event_trigger("after", "startup", reactor.stop)
    assert got == []
    run(reactor)
    assert got == [
        "before-startup",
        "during-startup",
        "after-startup",
        "before-shutdown",
        "during-shutdown",
        "after-shutdown",
    ]


def test_bad_trigger_phase_or_event_is_a_usage_error(reactor: Reactor) -> None:
    with pytest.raises(UsageError, match="'middle'"):
        reactor.add_system_event_trigger("middle", "startup", print)
    with pytest.raises(UsageError, match="'reboot'"):
        reactor.add_system_event_trigger("before", "reboot", print)


def test_stop_when_not_running_and_run_twice_are_usage_errors(reactor: Reactor) -> None:
    with pytest.raises(UsageError, match="not running"):
        reactor.stop()
    reactor.call_soon(reactor.stop)
    run(reactor)
    assert not reactor.running
    with pytest.raises(UsageError, match="runs once"):
        reactor.run()


def test_running_property_during_run(reactor: Reactor) -> None:
    seen: list[bool] = []
    reactor.call_soon(lambda: seen.append(reactor.running))
    reactor.call_soon(reactor.stop)
    run(reactor)
    assert seen == [True] and not reactor.running


@pytest.mark.skipif(not hasattr(signal, "SIGTERM"), reason="needs POSIX signals")
def test_sigterm_stops_gracefully_and_handlers_are_restored(reactor: Reactor) -> None:
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    before_fd = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(before_fd)
    got: list[str] = []
    reactor.add_system_event_trigger("after", "shutdown", got.append, "shutdown")
    reactor.call_later(0.01, os.kill, os.getpid(), signal.SIGTERM)
    run(reactor, install_signal_handlers=True)  # installs them: this is the main thread
    assert reactor.stopped_by_signal == signal.SIGTERM
    assert got == ["shutdown"]
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before
    assert signal.set_wakeup_fd(before_fd) == before_fd


def test_stopped_by_signal_is_none_after_a_plain_stop(reactor: Reactor) -> None:
    reactor.call_soon(reactor.stop)
    run(reactor)
    assert reactor.stopped_by_signal is None


def test_no_signal_handlers_off_the_main_thread(reactor: Reactor) -> None:
    before = signal.getsignal(signal.SIGTERM)
    seen: list[object] = []

    def body() -> None:
        reactor.call_soon(lambda: seen.append(signal.getsignal(signal.SIGTERM)))
        reactor.call_soon(reactor.stop)
        reactor.run()  # install_signal_handlers=True, but not the main thread

    t = threading.Thread(target=body)
    t.start()
    t.join(20)
    assert seen == [before]


def _read_after(s: socket.socket, delay: float) -> bytes:
    threading.Event().wait(delay)
    with s:
        return recv_all(s)


def test_second_stop_while_flushing_is_harmless(reactor: Reactor) -> None:
    """Code that calls stop() from connection_lost must not abort the others' flush."""
    payload = b"p" * (16 << 20)  # more than the kernel buffers: both flush during shutdown
    lost: list[BaseException | None] = []

    class Stuff(Protocol):
        def connection_made(self, transport: Transport) -> None:
            transport.write(payload)
            if transport.get_peer().port == second_port:
                reactor.call_soon(reactor.stop)

        def connection_lost(self, reason: BaseException | None) -> None:
            lost.append(reason)
            reactor.stop()  # again, during shutdown

    factory = ServerFactory()
    factory.protocol = Stuff
    port = reactor.listen_tcp(0, factory).get_host().port
    first, second = connect(port), connect(port)
    second_port = second.getsockname()[1]
    readers = [Background(_read_after, s, 0.05 * i) for i, s in enumerate([first, second])]
    run(reactor)
    assert [r.result() for r in readers] == [payload, payload]
    assert lost == [None, None]


@pytest.mark.skipif(not hasattr(signal, "SIGTERM"), reason="needs POSIX signals")
def test_second_signal_aborts_what_is_still_flushing(reactor: Reactor) -> None:
    lost: list[BaseException | None] = []

    class Stuck(Protocol):
        def connection_made(self, transport: Transport) -> None:
            transport.write(b"s" * (16 << 20))  # the client never reads
            os.kill(os.getpid(), signal.SIGTERM)
            reactor.call_later(0.05, os.kill, os.getpid(), signal.SIGTERM)

        def connection_lost(self, reason: BaseException | None) -> None:
            lost.append(reason)

    factory = ServerFactory()
    factory.protocol = Stuck
    port = reactor.listen_tcp(0, factory).get_host().port
    client = connect(port)
    try:
        run(reactor, install_signal_handlers=True)
    finally:
        client.close()
    assert reactor.stopped_by_signal == signal.SIGTERM
    assert len(lost) == 1 and isinstance(lost[0], ConnectionAbortedError)
    assert "SIGTERM" in str(lost[0])


@pytest.mark.skipif(not hasattr(signal, "SIGTERM"), reason="needs POSIX signals")
def test_a_signal_before_run_is_not_lost_once_handlers_are_installed(reactor: Reactor) -> None:
    """Services announce themselves before run(); a supervisor's SIGTERM may come right then."""
    before = signal.getsignal(signal.SIGTERM)
    got: list[str] = []
    assert reactor.install_signal_handlers()
    os.kill(os.getpid(), signal.SIGTERM)  # handled: we are still alive, the stop is queued
    reactor.add_system_event_trigger("after", "shutdown", got.append, "shut down")
    run(reactor, install_signal_handlers=True)
    assert reactor.stopped_by_signal == signal.SIGTERM
    assert got == ["shut down"]
    assert signal.getsignal(signal.SIGTERM) == before


def test_install_signal_handlers_off_the_main_thread_does_nothing(reactor: Reactor) -> None:
    result: list[bool] = []
    t = threading.Thread(target=lambda: result.append(reactor.install_signal_handlers()))
    t.start()
    t.join()
    assert result == [False]


def test_close_restores_handlers_of_a_reactor_that_never_ran(reactor: Reactor) -> None:
    before = signal.getsignal(signal.SIGINT)
    reactor.install_signal_handlers()
    assert signal.getsignal(signal.SIGINT) != before
    reactor.close()
    assert signal.getsignal(signal.SIGINT) == before
