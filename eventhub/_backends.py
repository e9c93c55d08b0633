"""Third-party reactor backends: the entry-point group ``eventhub.reactors``.

A distribution declares an entry point in that group whose value is a callable
(a class, usually) returning a ``Poller`` (``eventhub.reactor._pollers``);
``Reactor(backend=NAME)``, ``Hub(backend=NAME)`` and ``eventhub run --backend
NAME`` then find it. The lookup lives here, beside plugin discovery, and not in
the reactor: the reactor knows its built-in backends and asks the
``BackendFinder`` installed below for any other name, so it never imports a
layer above it. Importing ``eventhub`` (the hub) installs it.

Entries come from ``eventhub._discovery``'s cached scan (one ``stat`` per path
entry when nothing was installed), not ``importlib.metadata.entry_points``,
which reads every installed distribution's metadata on each call. Nothing is
imported until a backend is chosen. A name two distributions both declare is
refused, naming both.
"""

from __future__ import annotations

import functools
import logging

from eventhub._discovery import PluginEntry, discover
from eventhub.errors import UsageError
from eventhub.reactor._pollers import Poller, PollerFactory, set_backend_finder

__all__ = ["ENTRY_POINT_GROUP", "EntryPointBackends"]

log = logging.getLogger("eventhub.reactor")

ENTRY_POINT_GROUP = "eventhub.reactors"


class EntryPointBackends:
    """The ``BackendFinder`` over the entry-point group ``eventhub.reactors``."""

    def names(self) -> list[str]:
        entries, conflicts = discover(group=ENTRY_POINT_GROUP)
        for conflict in conflicts:
            log.warning("reactor backend %r is unusable: %s", conflict.name, conflict.describe())
        unusable = {c.name for c in conflicts}
        return [e.name for e in entries if e.name not in unusable]

    def find(self, name: str) -> PollerFactory | None:
        entries, conflicts = discover(group=ENTRY_POINT_GROUP)
        for conflict in conflicts:
            if conflict.name == name:
                raise UsageError(f"reactor backend {name!r} is ambiguous: {conflict.describe()}")
        for entry in entries:
            if entry.name == name:
                return functools.partial(_load, entry)
        return None


def _load(entry: PluginEntry) -> Poller:
    """Import the entry point and build its poller; a failure is a ``UsageError`` naming the distribution."""
    try:
        factory = entry.load()
        if not callable(factory):
            raise TypeError(f"{factory!r} is not callable")
        poller: Poller = factory()
        if not callable(getattr(poller, "dispatch", None)):  # a backend written before Poller.dispatch
            raise TypeError(
                f"{poller!r} has no dispatch(timeout, readers, writers) "
                "(subclass eventhub.reactor._pollers.PairsPoller for poll()'s shape)"
            )
    except Exception as exc:
        raise UsageError(
            f"reactor backend {entry.name!r} ({entry.value}, from {entry.dist} {entry.version}) "
            f"failed to load: {exc}"
        ) from exc
    return poller


set_backend_finder(EntryPointBackends())
