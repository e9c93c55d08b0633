"""A plugin's protocol or timer that calls sys.exit() or raises KeyboardInterrupt ends only itself."""

from __future__ import annotations

import socket
import sys

import pytest

from eventhub.protocol import Protocol, ServerFactory
from eventhub.reactor import Reactor
from eventhub.testing import run_until_stopped


@pytest.mark.parametrize(
    "exit_with", [SystemExit(3), KeyboardInterrupt()], ids=["sys.exit", "KeyboardInterrupt"]
)
def test_a_protocol_that_exits_closes_its_connection_and_the_reactor_serves_on(
    reactor: Reactor, exit_with: BaseException, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Serving, the reactor owns SIGINT: a KeyboardInterrupt can only be a plugin's.
    monkeypatch.setattr("signal.getsignal", lambda signum: None)

    class Exits(Protocol):
        def data_received(self, data: bytes) -> None:
            if data == b"exit":
                raise exit_with
            assert self.transport is not None
            self.transport.write(data)

    factory = ServerFactory()
    factory.protocol = Exits
    listener = reactor.listen_tcp(0, factory)
    port = listener.get_host().port
    replies: list[bytes] = []

    def clients() -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as doomed:
            doomed.sendall(b"exit")
            replies.append(doomed.recv(10))  # closed by the reactor: b""
        with socket.create_connection(("127.0.0.1", port), timeout=10) as fine:
            fine.sendall(b"still")
            replies.append(fine.recv(10))
        reactor.call_from_thread(listener.stop_listening)
        reactor.call_from_thread(reactor.stop)

    reactor.call_in_thread(clients)
    reactor.call_later(0, lambda: None)
    run_until_stopped(reactor)
    assert replies == [b"", b"still"]


def test_a_timer_that_exits_is_logged_and_the_loop_goes_on(
    reactor: Reactor, caplog: pytest.LogCaptureFixture
) -> None:
    ran: list[str] = []
    reactor.call_soon(sys.exit, 4)
    reactor.call_later(0.01, ran.append, "after")
    reactor.call_later(0.02, reactor.stop)
    run_until_stopped(reactor)
    assert ran == ["after"] and "SystemExit: 4" in caplog.text
