"""The files ``eventhub new-plugin`` writes (``string.Template`` text; see ``eventhub._scaffold``).

Placeholders: ``$dist`` (distribution name), ``$entry`` (entry-point and plugin
name), ``$module`` (import name), ``$cls`` (the Handler class), ``$version``
(the eventhub that wrote it).
"""

from __future__ import annotations

PYPROJECT = """\
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "$dist"
version = "0.1.0"
description = "An eventhub plugin: $entry."
readme = "README.md"
requires-python = ">=3.10"
dependencies = ["eventhub>=$version"]

[project.optional-dependencies]
test = ["pytest>=7"]

# What makes this distribution a plugin: `eventhub` finds the entry point
# `$entry` in the group `eventhub.plugins` and registers what it names.
[project.entry-points."eventhub.plugins"]
$entry = "$module:$cls"

[tool.setuptools]
packages = ["$module"]

[tool.setuptools.package-data]
$module = ["py.typed"]

[tool.pytest.ini_options]
testpaths = ["tests"]
"""

MODULE = '''\
"""$entry: an eventhub plugin.

eventhub finds it through the entry point ``$entry`` (see pyproject.toml) and
registers an instance of ``$cls``. Then, on ``eventhub run``:

1. ``eventhub_configure`` receives this plugin's own settings: the
   ``[plugins.$entry]`` table of ``eventhub.toml``, with any
   ``--set $entry.key=value`` applied;
2. ``execute`` is called with ``Event("run")``, and with every other event the
   hub dispatches.

The hooks a plugin may implement are listed in ``eventhub.hookspecs``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import eventhub
from eventhub.config import read_settings

__all__ = ["$cls", "${cls}Settings"]


@dataclass(frozen=True)
class ${cls}Settings:
    """The ``[plugins.$entry]`` table: one field per key, with its default."""

    greeting: str = "Hello"
    name: str = "world"


class $cls(eventhub.Handler):
    """Prints a greeting when ``eventhub run`` runs the chain."""

    def __init__(self) -> None:
        self.settings = ${cls}Settings()

    @eventhub.hookimpl
    def eventhub_configure(
        self, settings: Mapping[str, Any], hub: eventhub.Hub
    ) -> None:
        """Check and keep this plugin's settings (called once, before anything runs).

        A value of the wrong type raises ``eventhub.ConfigError`` naming the key:
        ``eventhub run`` prints that one line and exits with status 2. An unknown
        key is a warning naming the config file.
        """
        self.settings = read_settings(
            ${cls}Settings, settings, "$entry"
        )

    def execute(self, event: eventhub.Event) -> None:
        """Handle one event: greet on ``run``, ignore the others.

        An exception raised here is logged with this plugin's name; the rest of
        the chain still runs and ``eventhub run`` exits with status 1.
        """
        if event.name == "run":
            greeting = f"{self.settings.greeting}, {self.settings.name}!"
            print(greeting, "(from $entry)", flush=True)
'''

TESTS = '''\
"""Tests of the $entry plugin, with the pytest fixtures eventhub ships."""

from __future__ import annotations

import eventhub
import pytest
from eventhub.pytest_plugin import RunEventhub

from $module import $cls

Capture = pytest.CaptureFixture[str]


def test_greets_when_the_hub_runs(hub: eventhub.Hub, capsys: Capture) -> None:
    hub.register($cls, "$entry")
    hub.run()
    assert capsys.readouterr().out == "Hello, world! (from $entry)\\n"


def test_ignores_other_events(hub: eventhub.Hub, capsys: Capture) -> None:
    hub.register($cls, "$entry")
    assert hub.dispatch(eventhub.Event("tick")) == ()
    assert capsys.readouterr().out == ""


def test_settings_are_checked(hub: eventhub.Hub) -> None:
    plugin = $cls()
    plugin.eventhub_configure({"greeting": "Hi"}, hub)
    assert plugin.settings.greeting == "Hi"
    with pytest.raises(eventhub.ConfigError, match=r"$entry\\.name: must be a string"):
        plugin.eventhub_configure({"name": 42}, hub)


def test_eventhub_run_runs_the_installed_plugin(run_eventhub: RunEventhub) -> None:
    # Needs the plugin installed (pip install -e .): eventhub finds its entry point.
    result = run_eventhub("run", "--only", "$entry", "--set", "$entry.name=tests")
    assert result.status == 0, result.stderr
    assert result.stdout == "Hello, tests! (from $entry)\\n"
'''

README = """\
# $dist

An [eventhub](https://pypi.org/project/eventhub/) plugin. The plugin's name (its
entry point) is `$entry`; its code is in `$module/__init__.py`.

## Use it

```sh
pip install -e .            # from this folder; or: pip install $dist
eventhub plugins            # lists $entry
eventhub run --only $entry  # prints "Hello, world! (from $entry)"
```

## Configure it

In `eventhub.toml`, in the folder you run `eventhub` from:

```toml
[plugins.$entry]
greeting = "Hi"
name = "you"
```

or for one run: `eventhub run --set $entry.name=you`.

## Test it

```sh
pip install -e ".[test]"
python -m pytest
```

The tests use the fixtures eventhub ships with pytest: `hub`, `run_eventhub`,
`clock`, `memory_reactor`, `string_transport` and `reactor`.
"""

GITIGNORE = """\
__pycache__/
*.egg-info/
build/
dist/
.venv/
.pytest_cache/
.mypy_cache/
.ruff_cache/
"""

FILES = {
    ".gitignore": GITIGNORE,
    "pyproject.toml": PYPROJECT,
    "README.md": README,
    "$module/__init__.py": MODULE,
    "$module/py.typed": "",
    "tests/test_$entry.py": TESTS,
}
