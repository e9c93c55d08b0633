"""The one global compat reactor, and a way for tests to put another in its place.

``from eventhub.compat.twisted.internet import reactor`` is the default
``TwistedReactor``; the helpers that need a reactor without being given one
(``Deferred.fromCoroutine``, ``deferToThread``, ``LoopingCall``'s default clock,
endpoints built without a reactor) ask ``get()``, so that a test can
``install()`` a ``TwistedReactor`` over a ``MemoryReactor`` or a fresh
``Reactor`` and undo it afterwards.
"""

from __future__ import annotations

from collections.abc import Callable

from eventhub.compat.twisted.internet._reactor import TwistedReactor, reactor

__all__ = ["get", "install"]

_current: TwistedReactor = reactor


def get() -> TwistedReactor:
    """The compat reactor the helpers use (the global ``reactor`` unless a test installed one)."""
    return _current


def install(replacement: TwistedReactor) -> Callable[[], None]:
    """Make ``replacement`` the one ``get()`` returns; returns the undo."""
    global _current
    previous, _current = _current, replacement

    def undo() -> None:
        global _current
        _current = previous

    return undo
