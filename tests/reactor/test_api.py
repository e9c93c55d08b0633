"""``ReactorAPI``: the real reactor and the test double both satisfy it (mypy checks the signatures)."""

from __future__ import annotations

from eventhub.protocol import ServerFactory
from eventhub.reactor import ListenerAPI, Reactor, ReactorAPI
from eventhub.testing import MemoryReactor


def test_the_real_reactor_and_its_listener_are_reactor_api(reactor: Reactor) -> None:
    assert isinstance(reactor, ReactorAPI)
    listener = reactor.listen_tcp(0, _factory())
    assert isinstance(listener, ListenerAPI)
    listener.stop_listening()


def test_memory_reactor_is_reactor_api() -> None:
    reactor = MemoryReactor()
    assert isinstance(reactor, ReactorAPI)
    assert isinstance(reactor.listen_tcp(0, _factory()), ListenerAPI)


def test_an_object_missing_a_method_is_not_reactor_api() -> None:
    class OnlyTimers:
        def call_later(self, delay: float, fn: object) -> None: ...

    assert not isinstance(OnlyTimers(), ReactorAPI)


def _factory() -> ServerFactory:
    return ServerFactory()
