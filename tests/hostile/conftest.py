"""Hostile clients: each attack runs over every readiness backend, in-process and through ``eventhub run``.

The backends are the reactor suite's own fixtures (``tests/reactor/conftest.py``),
imported so that both suites always cover the same list. ``hostile_venv`` is
one environment with the first-party network plugins pip-installed (echo, chat,
connlog), shared read-only by the tests that start ``eventhub run``.
"""

from __future__ import annotations

import pytest
from reactor.conftest import BACKENDS, backend, reactor_backend
from support import PluginVenv, first_party

__all__ = ["BACKENDS", "backend", "reactor_backend"]


@pytest.fixture(scope="session")
def hostile_venv(tmp_path_factory: pytest.TempPathFactory) -> PluginVenv:
    venv = PluginVenv(tmp_path_factory.mktemp("hostile") / "venv")
    venv.install(first_party("echo"), first_party("chat"), first_party("connlog"))
    return venv

