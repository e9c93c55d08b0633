from __future__ import annotations

from pathlib import Path

import pytest
from support import PluginVenv, first_party


@pytest.fixture
def plugin_venv(tmp_path: Path) -> PluginVenv:
    """A fresh environment with eventhub and no plugins; install some with ``.install(path)``."""
    return PluginVenv(tmp_path / "venv")


@pytest.fixture(scope="session")
def echo_venv(tmp_path_factory: pytest.TempPathFactory) -> PluginVenv:
    """One environment with the echo plugin pip-installed, shared by the echo tests (read-only)."""
    venv = PluginVenv(tmp_path_factory.mktemp("echo") / "venv")
    venv.install(first_party("echo"))
    return venv
