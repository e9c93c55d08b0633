from __future__ import annotations

from collections.abc import Iterator

import pytest

from .http_support import PARSERS, ServedHub


@pytest.fixture(params=PARSERS)
def parser(request: pytest.FixtureRequest) -> str:
    """Each protocol test runs over both parsers."""
    return str(request.param)


@pytest.fixture
def served(parser: str) -> Iterator[ServedHub]:
    with ServedHub(parser=parser) as running:
        yield running
