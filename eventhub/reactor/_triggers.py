"""System event triggers: the calls a reactor makes at each phase of its startup and shutdown.

One class for the real reactor (``_loop.Reactor``) and its test double
(``eventhub.testing.MemoryReactor``), so that both accept the same phase and
event names, hand out ids the same way and run the triggers in the same order.
What to do when a trigger raises stays each one's own policy: ``fire`` runs
every trigger and returns the exceptions, the reactor logs them, the test
double raises the first one into the test.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eventhub.errors import PLUGIN_ERRORS, UsageError, reraise_user_interrupt

__all__ = ["EVENTS", "PHASES", "SystemTriggers"]

PHASES = ("before", "during", "after")  # the order a reactor fires them in
EVENTS = ("startup", "shutdown")

_Trigger = tuple[int, Callable[..., object], tuple[Any, ...]]


class SystemTriggers:
    """Triggers by ``(phase, event)``; each fires at most once, in the order it was added."""

    __slots__ = ("_last_id", "_triggers")

    def __init__(self) -> None:
        self._triggers: dict[tuple[str, str], list[_Trigger]] = {}
        self._last_id = 0

    def add(self, phase: str, event: str, fn: Callable[..., object], /, *args: Any) -> int:
        """Call ``fn(*args)`` when ``phase`` of ``event`` fires; returns an id for ``remove``."""
        if phase not in PHASES:
            raise UsageError(f"unknown trigger phase {phase!r}; use one of {', '.join(PHASES)}")
        if event not in EVENTS:
            raise UsageError(f"unknown system event {event!r}; use one of {', '.join(EVENTS)}")
        self._last_id += 1
        self._triggers.setdefault((phase, event), []).append((self._last_id, fn, args))
        return self._last_id

    def remove(self, trigger_id: int) -> None:
        """Forget the trigger ``add`` returned ``trigger_id`` for; an unknown id does nothing."""
        for triggers in self._triggers.values():
            triggers[:] = [t for t in triggers if t[0] != trigger_id]

    def fire(
        self, phase: str, event: str, results: list[object] | None = None
    ) -> list[tuple[Callable[..., object], BaseException]]:
        """Run (and forget) the triggers of ``phase`` ``event``; returns ``(fn, exception)`` per failure.

        One that raises does not keep the others from running. Triggers added
        for this same phase while it fires wait for a next time, which never
        comes: a reactor fires each phase once. What the triggers return (other
        than ``None``) is appended to ``results`` when it is given.
        """
        failures = []
        for _, fn, args in self._triggers.pop((phase, event), []):
            try:
                result = fn(*args)
            except PLUGIN_ERRORS as exc:
                reraise_user_interrupt(exc)
                failures.append((fn, exc))
            else:
                if results is not None and result is not None:
                    results.append(result)
        return failures
