from __future__ import annotations

from pathlib import Path

import pytest
from support import PluginVenv


@pytest.fixture
def plugin_venv(tmp_path: Path) -> PluginVenv:
    """A fresh environment with eventhub and no plugins; install some with ``.install(path)``."""
    return PluginVenv(tmp_path / "venv")
