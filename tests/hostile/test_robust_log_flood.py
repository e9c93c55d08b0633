"""A flood of clients cannot become a flood of log lines (eventhub._logging.RateLimitedLog).

Each line below is one a client can trigger: a connection refused because an
access-control hook failed, or an observer hook failing on every chunk.
"""

from __future__ import annotations

import logging

import pytest

import eventhub
from eventhub._hub import Hub
from eventhub._logging import RateLimitedLog
from eventhub._netevents import ObservedFactory
from eventhub.protocol import Address, Protocol, ServerFactory
from eventhub.testing import StringTransport

FLOOD = 1_000


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _observed(plugin: object, clock: _Clock) -> ObservedFactory:
    hub = Hub()
    hub.register(plugin, name="gate")
    service = ServerFactory()
    service.protocol = Protocol
    factory = hub.observe_factory(service, "echo")
    assert isinstance(factory, ObservedFactory)
    factory.hooks.rate_limited = RateLimitedLog(logging.getLogger("eventhub.netevents"), clock=clock)
    return factory


def _lines(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


def test_refusals_by_a_failing_accept_hook_are_rate_limited(caplog: pytest.LogCaptureFixture) -> None:
    class BrokenGate:
        @eventhub.hookimpl
        def eventhub_connection_accept(self) -> bool:
            raise OSError("deny list unreadable")

    clock = _Clock()
    factory = _observed(BrokenGate(), clock)
    for n in range(FLOOD):
        assert factory.build_protocol(Address("127.0.0.1", 10_000 + n)) is None
    refused = _lines(caplog, "refused the connection")
    assert refused == ["echo: refused the connection from 127.0.0.1:10000: plugin 'gate' failed"]
    clock.now = 60.0
    factory.build_protocol(Address("127.0.0.1", 9))
    assert _lines(caplog, "refused the connection")[-1] == (
        f"echo: refused the connection from 127.0.0.1:9: plugin 'gate' failed "
        f"(and {FLOOD - 1} more since the last such line)"
    )


def test_a_hook_failing_on_every_chunk_is_logged_once_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        @eventhub.hookimpl
        def eventhub_connection_data(self, data: bytes) -> None:
            raise RuntimeError("data broke")

    caplog.set_level(logging.DEBUG, logger="eventhub.netevents")
    factory = _observed(Broken(), _Clock())
    protocol = factory.build_protocol(Address("127.0.0.1", 10_000))
    assert protocol is not None
    protocol.connection_made(StringTransport())
    for _ in range(FLOOD):
        protocol.data_received(b"x")
    assert len(_lines(caplog, "data broke")) == 2  # the first with its traceback, then one line
