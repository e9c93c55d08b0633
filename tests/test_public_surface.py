"""The public surface: README's table of what plugins may import, and the first-party plugins held to it.

The table in README.md ("What a plugin may import") is the one statement of
the surface; this test parses it, checks that every name it declares exists,
and reads every first-party plugin's imports (``ast``, type-checking imports
included) to fail on anything else: an implementation module
(``eventhub.reactor._tcp``), a private one (``eventhub._logging``), or a name a
public module does not export.
"""

from __future__ import annotations

import ast
import importlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Packages only: installing a plugin from its folder leaves an eventhub_NAME.egg-info beside it.
PLUGINS = sorted(p.parent for p in ROOT.glob("plugins/*/eventhub_*/__init__.py"))
TABLE = re.compile(r"<!-- public-surface:.*?-->\n(.*?)<!-- /public-surface -->", re.S)


def declared_surface() -> dict[str, frozenset[str]]:
    """README's table: module -> the names plugins may import from it."""
    match = TABLE.search((ROOT / "README.md").read_text(encoding="utf-8"))
    assert match, "README.md lost its public-surface table"
    surface: dict[str, frozenset[str]] = {}
    for row in match.group(1).splitlines()[2:]:
        module_cell, names_cell = (cell.strip() for cell in row.strip("|").split("|"))
        module = module_cell.strip("`")
        named = frozenset(re.findall(r"`([^`]+)`", names_cell)) - {"__all__"}
        if names_cell.startswith("its `__all__`"):
            surface[module] = frozenset(importlib.import_module(module).__all__)
            assert named <= surface[module], f"README names {sorted(named - surface[module])} in {module}"
        else:
            surface[module] = named
    return surface


def core_imports(source: str) -> Iterator[tuple[int, str, str]]:
    """``(line, module, name)`` per import of eventhub's own modules (``name`` empty for ``import m``)."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] == "eventhub":
                for alias in node.names:
                    yield node.lineno, node.module, alias.name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "eventhub":
                    yield node.lineno, alias.name, ""


def outside(surface: dict[str, frozenset[str]], source: str) -> list[str]:
    """The imports of ``source`` the surface does not allow, as ``line: what``."""
    wrong = []
    for line, module, name in core_imports(source):
        if module not in surface:
            wrong.append(f"{line}: {module} is not public")
        elif name and name not in surface[module] and f"{module}.{name}" not in surface:
            wrong.append(f"{line}: {module}.{name} is not part of the public surface")
    return wrong


def test_every_declared_name_exists() -> None:
    surface = declared_surface()
    assert {"eventhub", "eventhub.reactor", "eventhub.protocol", "eventhub.testing"} <= set(surface)
    for module, names in surface.items():
        imported = importlib.import_module(module)
        missing = sorted(name for name in names if not hasattr(imported, name))
        assert not missing, f"README declares {module}: {missing}, which it does not have"


@pytest.mark.parametrize("package", PLUGINS, ids=[p.name for p in PLUGINS])
def test_first_party_plugins_import_only_the_public_surface(package: Path) -> None:
    surface = declared_surface()
    wrong = [
        f"{path.relative_to(ROOT)}:{problem}"
        for path in sorted(package.rglob("*.py"))
        for problem in outside(surface, path.read_text(encoding="utf-8"))
    ]
    assert not wrong, "imports outside README's public surface:\n" + "\n".join(wrong)


def test_the_check_catches_what_is_not_public() -> None:
    surface = declared_surface()
    source = (
        "import eventhub\n"
        "from eventhub.reactor import ReactorAPI\n"
        "from eventhub.reactor._tcp import HIGH_WATER\n"
        "from eventhub._logging import RateLimitedLog\n"
        "from eventhub.config import load\n"
        "import eventhub._hub\n"
        "if TYPE_CHECKING:\n"
        "    from eventhub._plugins import Status\n"
        "from . import sibling\n"
    )
    assert outside(surface, source) == [
        "3: eventhub.reactor._tcp is not public",
        "4: eventhub._logging is not public",
        "5: eventhub.config.load is not part of the public surface",
        "6: eventhub._hub is not public",
        "8: eventhub._plugins is not public",
    ]
