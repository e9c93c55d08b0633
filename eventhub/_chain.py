"""The execution chain: a compiled tuple of calls, the loop that runs it, the error policy.

This module is the one owner of two things: how an event is passed along the
handlers of one event name (``Chain.dispatch``) and what happens when one of
them raises (the ``on_error`` policy, and the bounded ``FailureLog``).
Ordering is decided elsewhere (``eventhub._ordering``), routing by name in
``eventhub._bus``; the chain receives its links already in order.

Why not ``pm.hook.eventhub_execute(event=...)``: pluggy's caller builds keyword
arguments, walks hook implementations and wrappers, and aborts at the first
exception. The chain instead compiles each implementation to the plain callable
it would end up calling (a ``Handler``'s bound ``execute``), so dispatching is a
``for`` loop over a tuple: the same cost as the loop a user would write by hand.
The ``try`` around that loop is free in CPython 3.11+ until something raises;
the recovery path then finds the failed call's position (the compiled calls
are distinct objects) and resumes right after it.
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal

from eventhub._event import Event
from eventhub._frozen import Frozen
from eventhub.errors import PLUGIN_ERRORS, is_user_interrupt

log = logging.getLogger("eventhub.chain")

EXECUTE = "eventhub_execute"

Call = Callable[[Event], object]
ErrorPolicy = Literal["continue", "stop"]
ERROR_POLICIES: tuple[ErrorPolicy, ...] = ("continue", "stop")

# Wraps one call the hub makes to a plugin, for tracing or timing:
# (plugin name, hook or handler name, function) -> function.
Monitor = Callable[[str, str, Callable[..., Any]], Callable[..., Any]]


class Link(Frozen):
    """One handler in the chain: the plugin's name, what to call with the event, and what it is.

    ``what`` names the handler in reports: the hook (``eventhub_execute``) or
    the function subscribed with ``@eventhub.on``.
    """

    plugin: str
    call: Call
    what: str = EXECUTE


class Failure(Frozen):
    """A plugin that raised: in ``hook``, and for the chain, while handling ``event``."""

    plugin: str
    hook: str
    error: BaseException
    event: Event | None = None


def report_failure(plugin: str, hook: str, error: BaseException, event: Event | None = None) -> Failure:
    """Log a plugin's failure with its traceback, the one way the hub does (chain and lifecycle)."""
    on = f" on event {event.name!r}" if event is not None else ""
    log.error(
        "plugin %r failed in %s%s: %s: %s", plugin, hook, on, type(error).__name__, error, exc_info=error
    )
    return Failure(plugin, hook, error, event)


NO_FAILURES: tuple[Failure, ...] = ()


class FailureLog:
    """The failures of handlers: a count per plugin and the last ``keep`` of them, no more.

    A handler failing on every event must not grow memory without bound (each
    failure holds a traceback and its frames): older failures are forgotten,
    their counts are not. Iterating gives the kept ones, oldest first.
    """

    __slots__ = ("counts", "recent", "total")

    def __init__(self, keep: int = 100) -> None:
        self.recent: deque[Failure] = deque(maxlen=keep)
        self.counts: Counter[str] = Counter()
        self.total = 0

    def add(self, failure: Failure) -> Failure:
        self.recent.append(failure)
        self.counts[failure.plugin] += 1
        self.total += 1
        return failure

    def __iter__(self) -> Iterator[Failure]:
        return iter(self.recent)

    def __len__(self) -> int:
        return len(self.recent)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, list | tuple):
            return list(self.recent) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<FailureLog total={self.total} by plugin={dict(self.counts)}>"


class Chain:
    """The ordered handlers of ``eventhub_execute`` and the policy for their errors."""

    __slots__ = ("_links", "_monitors", "_stop_on_error", "calls", "compiled", "failures")

    def __init__(self, on_error: ErrorPolicy = "continue", failures: FailureLog | None = None) -> None:
        self._links: tuple[Link, ...] = ()
        # The calls to make and the links they came from, swapped together (the bus
        # runs the loop over them itself, then hands a failure to ``recover``).
        self.compiled: tuple[tuple[Call, ...], tuple[Link, ...]] = ((), ())
        self.calls: tuple[Call, ...] = ()  # compiled[0], for the bus's loop
        self._monitors: list[Monitor] = []
        self._stop_on_error = False
        self.failures = failures if failures is not None else FailureLog()
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
        for link in self._links:
            call = link.call
            for monitor in self._monitors:
                call = monitor(link.plugin, link.what, call)
            if call in calls:
                call = _distinct(call)  # recovery finds a failed call by its position: keep them apart
            calls.append(call)
        self.compiled = (tuple(calls), self._links)
        self.calls = self.compiled[0]

    def __bool__(self) -> bool:
        return bool(self._links)

    def dispatch(self, event: Event) -> tuple[Failure, ...]:
        """Run every handler on ``event``, in order; return the failures (usually none).

        What a plugin raises, ``SystemExit`` and ``KeyboardInterrupt`` included
        (``PLUGIN_ERRORS``), is its failure: reported, and the policy decides.
        """
        calls, links = self.compiled
        try:
            for call in calls:
                call(event)
        except PLUGIN_ERRORS as error:
            failed = error
        else:
            return NO_FAILURES
        # Outside the except block, so later failures' tracebacks do not chain onto this one.
        return self.recover(calls, links, call, event, failed)

    def dispatch_collect(self, event: Event, results: list[object]) -> tuple[Failure, ...]:
        """``dispatch``, also appending what each handler returned to ``results`` (for ``publish``)."""
        calls, links = self.compiled
        failures: list[Failure] = []
        for index, call in enumerate(calls):
            try:
                results.append(call(event))
            except PLUGIN_ERRORS as error:
                if is_user_interrupt(error):
                    raise
                failures.append(self._record(links[index], event, error))
                if self._stop_on_error:
                    break
        return tuple(failures)

    def recover(
        self,
        calls: tuple[Call, ...],
        links: tuple[Link, ...],
        failed_call: Call,
        event: Event,
        error: BaseException,
    ) -> tuple[Failure, ...]:
        """The error policy: log the failure, then go on with the rest or stop.

        The user's Ctrl-C is no plugin's failure: it goes on up (``is_user_interrupt``).
        """
        if is_user_interrupt(error):
            raise error
        failed = calls.index(failed_call)  # the calls are distinct (see _compile)
        failures = [self._record(links[failed], event, error)]
        if not self._stop_on_error:
            for index in range(failed + 1, len(calls)):
                try:
                    calls[index](event)
                except PLUGIN_ERRORS as later_error:
                    if is_user_interrupt(later_error):
                        raise
                    failures.append(self._record(links[index], event, later_error))
        return tuple(failures)

    def _record(self, link: Link, event: Event, error: BaseException) -> Failure:
        return self.failures.add(report_failure(link.plugin, link.what, error, event))


def _distinct(call: Call) -> Call:
    """A new callable doing what ``call`` does (for a function two plugins share)."""

    def same(event: Event) -> object:
        return call(event)

    return same
