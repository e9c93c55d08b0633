"""Every reactor test runs once per readiness backend this platform has.

The ``reactor`` fixture is eventhub's shipped one (``eventhub.pytest_plugin``):
after each test it fails the test that left a listener, a connection, a
connection attempt, a timer, a queued call or a descriptor behind. Only the
backend is chosen here, by parametrizing ``reactor_backend``.
"""

from __future__ import annotations

import pytest

from eventhub.reactor import available_backends

BACKENDS = [b for b in ("select", "poll", "epoll", "asyncio", "uvloop") if b in available_backends()]


@pytest.fixture(params=BACKENDS)
def reactor_backend(request: pytest.FixtureRequest) -> str:
    """The backend of the shipped ``reactor`` fixture, one test run per backend."""
    name: str = request.param
    return name


@pytest.fixture
def backend(reactor_backend: str) -> str:
    """The same backend, for the tests that build a ``Reactor`` of their own."""
    return reactor_backend


# TLS, UDP and UNIX sockets came to the built-in reactor after the asyncio
# backends; there they are refused with a clear error for now (see
# eventhub.reactor.aio), so their suites run on the built-in backends only.
BUILT_IN_ONLY = frozenset({"test_tls", "test_udp", "test_unix"})
ASYNCIO = frozenset({"asyncio", "uvloop"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("reactor_backend") if callspec is not None else None
        module = item.module.__name__.rpartition(".")[2] if isinstance(item, pytest.Function) else ""
        if backend in ASYNCIO and module in BUILT_IN_ONLY:
            item.add_marker(
                pytest.mark.skip(reason=f"{module[5:].upper()} is not on the {backend} backend yet")
            )
