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
