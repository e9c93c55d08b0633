"""``eventhub new-plugin NAME``: write a ready-to-install plugin distribution.

``create("eventhub-greeter", ".")`` writes ``./eventhub-greeter/``::

    pyproject.toml                   the entry point greeter = "eventhub_greeter:Greeter"
    README.md
    eventhub_greeter/__init__.py     a Handler with a hook implementation (eventhub_configure)
    eventhub_greeter/py.typed
    tests/test_greeter.py            tests using eventhub's pytest fixtures

Right after ``pip install`` of that folder its tests pass, ``eventhub plugins``
lists it and ``eventhub run`` runs it. The names derive from ``NAME``: the
plugin (entry-point) name drops an ``eventhub-`` prefix, and the module is
``eventhub_`` + the plugin name, so it never shadows another top-level module.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from string import Template

from eventhub import __version__
from eventhub._plugin_template import FILES
from eventhub.errors import UsageError

__all__ = ["PluginNames", "create", "plugin_names"]

# PEP 508 / the core metadata spec: ASCII letters and digits, with ".", "_", "-" inside.
_DIST_NAME = re.compile(r"[A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9]", re.IGNORECASE | re.ASCII)


@dataclass(frozen=True)
class PluginNames:
    """Every name a new plugin needs, derived from its distribution name."""

    dist: str  # as given: eventhub-greeter
    entry: str  # the entry point and plugin name: greeter
    module: str  # the import name: eventhub_greeter
    cls: str  # the Handler subclass: Greeter


def plugin_names(dist: str) -> PluginNames:
    """The names for distribution ``dist``; ``UsageError`` naming it if it is not a valid name."""
    if not _DIST_NAME.fullmatch(dist):
        raise UsageError(
            f"invalid distribution name {dist!r}: use ASCII letters, digits, '-', '_' and '.', "
            "starting and ending with a letter or digit (PEP 508), e.g. eventhub-greeter"
        )
    normalized = re.sub(r"[-_.]+", "-", dist).lower()  # PEP 503 normalization
    if normalized == "eventhub":
        raise UsageError(f"invalid distribution name {dist!r}: that is eventhub itself")
    entry = normalized.removeprefix("eventhub-").replace("-", "_")
    cls = "".join(part.capitalize() for part in entry.split("_"))
    if not cls[0].isalpha():
        cls = "Plugin" + cls
    return PluginNames(dist=dist, entry=entry, module=f"eventhub_{entry}", cls=cls)


def _refuse_taken(names: PluginNames) -> None:
    """Installing a plugin whose names are taken would replace or shadow what is there."""
    try:
        taken = metadata.distribution(names.dist)
    except metadata.PackageNotFoundError:
        pass
    else:
        raise UsageError(
            f"a distribution named {names.dist!r} is installed already ({taken.metadata['Name']} "
            f"{taken.version}); installing the new plugin would replace it: choose another name"
        )
    if importlib.util.find_spec(names.module) is not None:
        raise UsageError(
            f"a module named {names.module!r} is importable already; the new plugin's package would "
            "clash with it: choose another name"
        )


def create(name: str, directory: str | Path = ".") -> Path:
    """Write the distribution ``name`` in a new folder ``directory/name``; return that folder.

    ``UsageError`` (exit status 2) for an invalid name or a folder that exists.
    """
    names = plugin_names(name)
    _refuse_taken(names)
    folder = Path(directory) / name
    try:
        folder.mkdir(parents=True)
    except FileExistsError:
        raise UsageError(f"{folder} already exists; choose another name or another --dir") from None
    except OSError as error:
        raise UsageError(f"cannot create {folder}: {error.strerror}") from None
    try:
        _write_files(folder, names)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)  # no half-written plugin left behind
        raise
    return folder


def _write_files(folder: Path, names: PluginNames) -> None:
    values = {
        "dist": names.dist,
        "entry": names.entry,
        "module": names.module,
        "cls": names.cls,
        "version": __version__,
    }
    for relative, text in FILES.items():
        path = folder / Template(relative).substitute(values)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(Template(text).substitute(values), encoding="utf-8")
