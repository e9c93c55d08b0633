from __future__ import annotations

from collections.abc import Iterator

import pytest

from eventhub.reactor import Reactor, available_backends

BACKENDS = [b for b in ("select", "poll", "epoll") if b in available_backends()]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Every reactor test runs once per readiness backend this platform has."""
    name: str = request.param
    return name


@pytest.fixture
def reactor(backend: str) -> Iterator[Reactor]:
    r = Reactor(backend)
    yield r
    r.close()
