"""Hub.run(): the lifecycle of hookspecs, with a real reactor when a plugin starts a service."""

from __future__ import annotations

import socket
from collections.abc import Mapping
from typing import Any

import pytest

import eventhub
from eventhub.config import Config
from eventhub.protocol import Protocol, ServerFactory


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


def test_run_without_services_returns_after_the_chain() -> None:
    log: list[str] = []
    hub = eventhub.Hub(config=Config(plugins={"life": {"k": 1}}))
    hub.register(Lifecycle(log), "life")
    hub.run()
    assert log == ["configure {'k': 1}", "startup", "execute run", "shutdown"]
    assert hub.failures == []


class Upper(Protocol):
    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data.upper())


def test_run_serves_until_stopped() -> None:
    log: list[str] = []
    replies: list[bytes] = []

    class Service:
        @eventhub.hookimpl
        def eventhub_start_services(self, hub: eventhub.Hub, reactor: Any) -> object:
            factory = ServerFactory()
            factory.protocol = Upper
            listener = reactor.listen_tcp(0, factory)
            port = listener.get_host().port

            def client() -> None:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                    sock.sendall(b"hello")
                    replies.append(sock.recv(100))
                reactor.call_from_thread(hub.stop)

            reactor.call_in_thread(client)
            return listener

    hub = eventhub.Hub()
    hub.register(Lifecycle(log), "life")
    hub.register(Service(), "service")
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


def test_a_failing_lifecycle_hook_is_isolated_and_counted() -> None:
    log: list[str] = []

    class Broken:
        @eventhub.hookimpl
        def eventhub_startup(self) -> None:
            raise RuntimeError("startup broke")

    hub = eventhub.Hub()
    hub.register(Lifecycle(log), "life")
    hub.register(Broken(), "broken")
    hub.run()
    assert "execute run" in log and "shutdown" in log
    assert [(f.plugin, f.hook, str(f.error)) for f in hub.failures] == [
        ("broken", "eventhub_startup", "startup broke")
    ]


def test_a_service_error_stops_the_run_and_still_shuts_down() -> None:
    log: list[str] = []

    class Unstartable:
        @eventhub.hookimpl
        def eventhub_start_services(self) -> object:
            raise eventhub.ServiceError("cannot listen on 127.0.0.1:1: permission denied")

    hub = eventhub.Hub()
    hub.register(Lifecycle(log), "life")
    hub.register(Unstartable(), "unstartable")
    with pytest.raises(eventhub.ServiceError, match="cannot listen"):
        hub.run()
    assert log[-1] == "shutdown"


def test_configure_error_names_the_key() -> None:
    class Picky:
        @eventhub.hookimpl
        def eventhub_configure(self, settings: Mapping[str, Any]) -> None:
            raise eventhub.ConfigError("plugins.picky.size", "must be positive")

    hub = eventhub.Hub()
    hub.register(Picky(), "picky")
    with pytest.raises(eventhub.ConfigError, match=r"plugins\.picky\.size: must be positive"):
        hub.run()


def test_unknown_backend_is_refused_early() -> None:
    with pytest.raises(eventhub.UsageError, match="unknown reactor backend 'nope'"):
        eventhub.Hub(backend="nope")
