"""The execution chain: a compiled tuple of calls, the loop that runs it, the error policy.

This module is the one owner of two things: how an event is passed along the
handlers (``Chain.dispatch``) and what happens when one of them raises (the
``on_error`` policy). Ordering is decided elsewhere (``eventhub.ordering``);
the chain receives its links already in order.

Why not ``pm.hook.eventhub_execute(event=...)``: pluggy's caller builds keyword
arguments, walks hook implementations and wrappers, and aborts at the first
exception. The chain instead compiles each implementation to the plain callable
it would end up calling (a ``Handler``'s bound ``execute``), so dispatching is a
``for`` loop over a tuple: the same cost as the loop a user would write by hand.
The ``try`` around that loop is free in CPython 3.11+ until something raises;
the loop's iterator is shared with the recovery path, which resumes right after
the handler that failed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from eventhub.event import Event

log = logging.getLogger("eventhub.chain")

Call = Callable[[Event], object]
ErrorPolicy = Literal["continue", "stop"]
ERROR_POLICIES: tuple[ErrorPolicy, ...] = ("continue", "stop")

# Wraps one link's call for tracing or timing: (plugin name, call) -> call.
Monitor = Callable[[str, Call], Call]


@dataclass(frozen=True, slots=True)
class Link:
    """One handler in the chain: the plugin's name and what to call with the event."""

    plugin: str
    call: Call


@dataclass(frozen=True, slots=True)
class Failure:
    """A handler that raised while handling ``event``."""

    plugin: str
    event: Event
    error: Exception


NO_FAILURES: tuple[Failure, ...] = ()


class Chain:
    """The ordered handlers of ``eventhub_execute`` and the policy for their errors."""

    __slots__ = ("_calls", "_links", "_monitors", "_names", "_stop_on_error", "failures")

    def __init__(self, on_error: ErrorPolicy = "continue") -> None:
        self._links: tuple[Link, ...] = ()
        self._calls: tuple[Call, ...] = ()
        self._names: dict[Call, str] = {}
        self._monitors: list[Monitor] = []
        self._stop_on_error = False
        self.failures: list[Failure] = []
        self.set_policy(on_error)

    @property
    def plugins(self) -> tuple[str, ...]:
        """The plugin names, in the order the chain calls them."""
        return tuple(link.plugin for link in self._links)

    def set_policy(self, on_error: ErrorPolicy) -> None:
        if on_error not in ERROR_POLICIES:
            raise ValueError(f"on_error must be one of {ERROR_POLICIES}, not {on_error!r}")
        self._stop_on_error = on_error == "stop"

    def set_links(self, links: Sequence[Link]) -> None:
        """Replace the chain's handlers (already ordered) and compile the call tuple."""
        self._links = tuple(links)
        self._compile()

    def add_monitor(self, monitor: Monitor) -> Callable[[], None]:
        """Wrap every call of the chain with ``monitor``; returns a function that undoes it.

        This is the one seam for tracing and timing: handlers know nothing of it,
        and without a monitor the chain calls them directly.
        """
        self._monitors.append(monitor)
        self._compile()

        def undo() -> None:
            self._monitors.remove(monitor)
            self._compile()

        return undo

    def _compile(self) -> None:
        calls: list[Call] = []
        names: dict[Call, str] = {}
        for link in self._links:
            call = link.call
            for monitor in self._monitors:
                call = monitor(link.plugin, call)
            calls.append(call)
            names[call] = link.plugin
        self._calls = tuple(calls)
        self._names = names

    def dispatch(self, event: Event) -> tuple[Failure, ...]:
        """Run every handler on ``event``, in order; return the failures (usually none)."""
        remaining = iter(self._calls)
        try:
            for call in remaining:
                call(event)
        except Exception as error:
            return self._recover(remaining, call, event, error)
        return NO_FAILURES

    def _recover(
        self, remaining: Iterator[Call], failed: Call, event: Event, error: Exception
    ) -> tuple[Failure, ...]:
        """The error policy: log the failure, then go on with the rest or stop."""
        failures = [self._record(failed, event, error)]
        if not self._stop_on_error:
            for call in remaining:
                try:
                    call(event)
                except Exception as later_error:
                    failures.append(self._record(call, event, later_error))
        return tuple(failures)

    def _record(self, call: Call, event: Event, error: Exception) -> Failure:
        plugin = self._names.get(call, repr(call))
        log.error(
            "plugin %r failed on event %r: %s: %s",
            plugin,
            event.name,
            type(error).__name__,
            error,
            exc_info=error,
        )
        failure = Failure(plugin, event, error)
        self.failures.append(failure)
        return failure


def timing_monitor(report: Callable[[str, Event, float, BaseException | None], None]) -> Monitor:
    """A monitor that times each call and reports (plugin, event, seconds, error or None)."""

    def wrap(plugin: str, call: Call) -> Call:
        def timed(event: Event) -> object:
            start = time.perf_counter()
            try:
                result = call(event)
            except BaseException as error:
                report(plugin, event, time.perf_counter() - start, error)
                raise
            report(plugin, event, time.perf_counter() - start, None)
            return result

        return timed

    return wrap
