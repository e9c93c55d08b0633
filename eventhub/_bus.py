"""The event bus: subscriptions by pattern, a compiled chain per event name, FIFO delivery.

``Hub.emit``/``dispatch``/``subscribe``/``publish`` delegate here.

Routing
-------

Each subscription names patterns (``eventhub.names``). The first time an
event name is seen, the bus picks the subscriptions whose patterns match it,
orders them (the plugins' order, ``eventhub._ordering``, then subscriptions
made with ``subscribe`` in the order they were made) and compiles them into a
``Chain``: a tuple of plain calls. That chain is cached per name and rebuilt
only when subscriptions, the plugin order or the monitors change, so
delivering an event costs one dict lookup plus the loop over its handlers,
and an event nobody subscribes to costs the lookup alone (no ``Event`` is
even built by ``emit``).

Delivery guarantees
-------------------

- **FIFO, never re-entrant.** An event emitted while another is being
  delivered (a handler that emits) is queued and delivered after it, so every
  handler sees events in emission order and a handler that emits cannot
  recurse without bound.
- **Synchronous when it can be.** Outside a delivery, on the reactor's thread
  or while no reactor runs, ``emit`` delivers to the plain (sync) handlers
  before it returns. From another thread while the reactor runs, the event
  is handed to the reactor's thread (``call_from_thread``) and delivered there.
  From a signal handler, it is delivered at once or queued, as above.
- **Async handlers** (``async def``) get each delivery as a task on the
  hub's reactor; at most ``max_concurrency`` run at once per handler, the
  rest wait in a queue of ``max_pending``; when that is full the oldest or
  the newest waiting delivery is dropped (``drop``), counted and logged.
- **Blocking handlers** (``blocking=True``) run on the reactor's thread pool.
- **Isolation.** A handler that raises (``SystemExit`` included) is reported
  in one line naming its plugin, counted in the hub's failures, and the
  others still get the event; ``on_error = "stop"`` ends the chain of that
  event instead (for the sync handlers after the failing one: async and
  blocking deliveries already started run on).
"""

from __future__ import annotations

import inspect
import itertools
import logging
import threading
from collections import deque
from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal

from eventhub._chain import (
    NO_FAILURES,
    Call,
    Chain,
    ErrorPolicy,
    Failure,
    FailureLog,
    Link,
    Monitor,
    report_failure,
)
from eventhub._event import Event, HandlerOptions
from eventhub._frozen import Frozen
from eventhub.errors import PLUGIN_ERRORS, PatternError, UsageError
from eventhub.names import check_name, check_pattern, compile_pattern
from eventhub.reactor._tasks import Future

if TYPE_CHECKING:
    from eventhub.reactor._api import ReactorAPI

__all__ = ["Bus", "DeliveryDropped", "Subscription", "check_options"]

log = logging.getLogger("eventhub.bus")

Kind = Literal["sync", "async", "blocking"]
DROP_POLICIES = ("drop-oldest", "drop-newest")

# How many distinct event names keep a compiled chain; past it the cache starts
# over (names with ids in them must not grow memory without bound).
MAX_ROUTES = 10_000

_get_ident = threading.get_ident


class DeliveryDropped(Exception):
    """An async handler's queue was full and this delivery was dropped (``drop`` policy)."""


class Subscription(Frozen):
    """One handler subscribed to some patterns: who, what to call, how."""

    __slots__ = ("bus", "function", "kind", "matches", "options", "plugin", "seq", "what")
    __match_args__ = ("plugin", "what", "function", "options", "kind", "seq")

    plugin: str | None  # None: made with Hub.subscribe
    what: str
    function: Callable[..., Any]
    options: HandlerOptions
    kind: Kind
    seq: int
    matches: Callable[[str], bool]
    bus: Bus

    def __init__(
        self,
        plugin: str | None,
        what: str,
        function: Callable[..., Any],
        options: HandlerOptions,
        kind: Kind,
        seq: int,
        matches: Callable[[str], bool],
        bus: Bus,
    ) -> None:
        fields = {"plugin": plugin, "what": what, "function": function, "options": options, "kind": kind}
        self._init(**fields, seq=seq, matches=matches, bus=bus)

    @property
    def owner(self) -> str:
        """Who to name in reports: the plugin, or "subscriber" for ``Hub.subscribe``."""
        return self.plugin or "subscriber"

    def cancel(self) -> None:
        """Unsubscribe (what ``Hub.subscribe`` hands back; nothing if already gone)."""
        self.bus.remove(self)


def _matcher(patterns: Sequence[str]) -> Callable[[str], bool]:
    tests = [compile_pattern(pattern) for pattern in patterns]
    if len(tests) == 1:
        return tests[0]
    return lambda name: any(test(name) for test in tests)


def check_options(options: HandlerOptions, function: Callable[..., Any], what: str) -> Kind:
    """Validate a handler's options and function; returns how it runs. ``UsageError`` saying why."""
    if not options.patterns:
        raise UsageError(f"{what}: subscribes to no event (give at least one pattern)")
    for pattern in options.patterns:
        try:
            check_pattern(pattern)
        except PatternError as error:
            raise UsageError(f"{what}: {error}") from None
    if not isinstance(options.max_concurrency, int) or options.max_concurrency < 1:
        raise UsageError(f"{what}: max_concurrency must be an integer >= 1, not {options.max_concurrency!r}")
    if not isinstance(options.max_pending, int) or options.max_pending < 0:
        raise UsageError(f"{what}: max_pending must be an integer >= 0, not {options.max_pending!r}")
    if options.drop not in DROP_POLICIES:
        raise UsageError(f"{what}: drop must be one of {DROP_POLICIES}, not {options.drop!r}")
    if not callable(function):
        raise UsageError(f"{what}: {function!r} is not callable")
    try:
        inspect.signature(function).bind(None)
    except TypeError:
        raise UsageError(f"{what}: a handler takes one argument, the event") from None
    except ValueError:  # no signature to inspect (some builtins): trust it
        pass
    is_async = inspect.iscoroutinefunction(function)
    if is_async and options.blocking:
        raise UsageError(f"{what}: an async handler cannot also be blocking (it never blocks the loop)")
    return "async" if is_async else "blocking" if options.blocking else "sync"


class Bus:
    """Subscriptions, the compiled chain per event name, the FIFO queue."""

    def __init__(self, reactor: Callable[[], ReactorAPI], on_error: ErrorPolicy = "continue") -> None:
        self._reactor = reactor
        self._on_error: ErrorPolicy = on_error
        self._subscriptions: list[Subscription] = []
        self._calls: dict[int, Call] = {}  # subscription seq -> what the chain calls
        self._positions: dict[str, int] = {}
        self._monitors: list[Monitor] = []
        self._routes: dict[str, Chain] = {}
        self._seq = itertools.count()
        self._queue: deque[tuple[Event, _Tracker | None]] = deque()
        self._busy = False
        self._loop_thread: int | None = None
        self.failures = FailureLog()
        self.dropped = 0

    # -- subscriptions ----------------------------------------------------------

    def add(
        self, plugin: str | None, what: str, function: Callable[..., Any], options: HandlerOptions
    ) -> Subscription:
        """Subscribe ``function`` (checked first: ``UsageError`` naming ``what``)."""
        kind = check_options(options, function, what)
        matches = _matcher(options.patterns)
        subscription = Subscription(plugin, what, function, options, kind, next(self._seq), matches, self)
        # One call per subscription, shared by every route it is in: an async
        # handler's max_concurrency counts its deliveries of every event name.
        self._calls[subscription.seq] = self._call_for(subscription)
        self._subscriptions.append(subscription)
        self._routes.clear()
        return subscription

    def remove(self, subscription: Subscription) -> None:
        """Unsubscribe (nothing if already gone)."""
        if subscription in self._subscriptions:
            self._subscriptions.remove(subscription)
            del self._calls[subscription.seq]
            self._routes.clear()

    def remove_plugin(self, plugin: str) -> None:
        """Unsubscribe every handler of ``plugin``."""
        for subscription in self.subscriptions_of(plugin):
            del self._calls[subscription.seq]
        self._subscriptions = [s for s in self._subscriptions if s.plugin != plugin]
        self._routes.clear()

    def subscriptions_of(self, plugin: str) -> list[Subscription]:
        return [s for s in self._subscriptions if s.plugin == plugin]

    def set_order(self, plugins: Sequence[str]) -> None:
        """The plugins' order (``eventhub._ordering``): handlers of one name run in it."""
        self._positions = {name: index for index, name in enumerate(plugins)}
        self._routes.clear()

    def set_policy(self, on_error: ErrorPolicy) -> None:
        Chain(on_error)  # checks the value
        self._on_error = on_error
        self._routes.clear()

    def add_monitor(self, monitor: Monitor) -> Callable[[], None]:
        """Wrap every handler call with ``monitor``; returns a function that undoes it."""
        self._monitors.append(monitor)
        self._routes.clear()

        def undo() -> None:
            self._monitors.remove(monitor)
            self._routes.clear()

        return undo

    # -- routing ------------------------------------------------------------------

    def route(self, name: str) -> Chain:
        """The compiled chain of event ``name`` (``PatternError`` for an invalid name)."""
        chain = self._routes.get(name)
        if chain is None:
            chain = self._compile(check_name(name))
        return chain

    def wants(self, name: str) -> bool:
        """True when some handler subscribes to event ``name``: skip building a payload otherwise."""
        return bool(self.route(name))

    def _compile(self, name: str) -> Chain:
        last = len(self._positions)
        matching = [s for s in self._subscriptions if s.matches(name)]
        matching.sort(key=lambda s: (self._positions.get(s.plugin, last) if s.plugin else last, s.seq))
        chain = Chain(self._on_error, self.failures)
        chain.set_links([Link(s.owner, self._calls[s.seq], s.what) for s in matching])
        for monitor in self._monitors:
            chain.add_monitor(monitor)
        if len(self._routes) >= MAX_ROUTES:
            self._routes.clear()
        self._routes[name] = chain
        return chain

    def _call_for(self, subscription: Subscription) -> Call:
        if subscription.kind == "sync":
            call: Call = subscription.function
            return call
        delivery = _AsyncDelivery(self, subscription) if subscription.kind == "async" else None
        if delivery is not None:
            return delivery
        return _BlockingDelivery(self, subscription)

    # -- delivery -----------------------------------------------------------------

    def bind_thread(self, ident: int | None) -> None:
        """The reactor's thread while it runs (``None`` when it stops): other threads hand over."""
        self._loop_thread = ident

    def emit(self, name: str, payload: Any = None, source: str | None = None) -> None:
        """Emit event ``name``; see the module docstring for when handlers run."""
        chain = self._routes.get(name)
        if chain is None:
            chain = self._compile(check_name(name))
        if chain.calls:  # nobody subscribes: not even an Event is built
            self.dispatch(Event(name, payload, source=source))

    def dispatch(self, event: Event) -> tuple[Failure, ...]:
        """Deliver ``event``; returns the sync handlers' failures (none when it was queued)."""
        loop = self._loop_thread
        if loop is not None and loop != _get_ident():
            self._reactor().call_from_thread(self.dispatch, event)
            return NO_FAILURES
        if self._busy:
            self._queue.append((event, None))
            return NO_FAILURES
        chain = self._routes.get(event.name)
        if chain is None:
            chain = self._compile(check_name(event.name))
        # Chain.dispatch's loop, inlined: one call fewer per event (the hot path),
        # and nothing on the way but the loop until something raises.
        calls = chain.calls
        self._busy = True
        try:
            for call in calls:
                call(event)
        except BaseException as error:
            failed = error
        else:
            self._busy = False
            if self._queue:
                self._drain()
            return NO_FAILURES
        # Outside the except block, so later failures' tracebacks do not chain onto this one.
        try:
            if not isinstance(failed, PLUGIN_ERRORS):
                raise failed  # Cancelled, the user's interrupt: not a plugin's failure
            failures = chain.recover(calls, chain.compiled[1], call, event, failed)
        finally:
            self._busy = False
        if self._queue:
            self._drain()
        return failures

    def _drain(self) -> None:
        queue = self._queue
        # Re-checked after clearing ``_busy``: an event a signal handler queued
        # in between is delivered here, not left for the next emit.
        while queue:
            self._busy = True
            try:
                while queue:
                    event, tracker = queue.popleft()
                    self._deliver(event, tracker)
            finally:
                self._busy = False

    def _deliver(self, event: Event, tracker: _Tracker | None) -> None:
        chain = self.route(event.name)
        if tracker is None:
            chain.dispatch(event)
        else:
            results: list[object] = []
            tracker.start(chain.dispatch_collect(event, results), results)

    async def publish(self, name: str, payload: Any = None, source: str | None = None) -> tuple[Failure, ...]:
        """Emit, then wait until every handler (sync, async, blocking) is done with it; the failures."""
        return await self.publish_event(Event(check_name(name), payload, source=source))

    async def publish_event(self, event: Event) -> tuple[Failure, ...]:
        """``publish`` for an ``Event`` built by hand (a bridge keeps the id and time it received)."""
        check_name(event.name)
        tracker = _Tracker()
        self._queue.append((event, tracker))
        if not self._busy:
            self._drain()
        return await tracker.finished

    def record(self, subscription: Subscription, error: BaseException, event: Event) -> Failure:
        """Report an async or blocking handler's failure, as the chain does a sync one's."""
        return self.failures.add(report_failure(subscription.owner, subscription.what, error, event))

    def drop(self, subscription: Subscription, event: Event) -> DeliveryDropped:
        self.dropped += 1
        count = self.dropped
        if count & (count - 1) == 0:  # 1, 2, 4, 8...: a flood logs a few lines, not one per event
            log.warning(
                "%s of plugin %r: %d deliveries waiting, %s policy: dropped event %r (%d dropped so far)",
                subscription.what,
                subscription.plugin,
                subscription.options.max_pending,
                subscription.options.drop,
                event.name,
                count,
            )
        return DeliveryDropped(f"{subscription.what}: queue full, event {event.name!r} dropped")


class _Tracker:
    """What ``publish`` waits on: the sync failures, then each async/blocking delivery's outcome."""

    __slots__ = ("failures", "finished")

    def __init__(self) -> None:
        self.finished: Future[tuple[Failure, ...]] = Future()
        self.failures: list[Failure] = []

    def start(self, failures: Iterable[Failure], results: list[object]) -> None:
        self.failures.extend(failures)
        pending = [r for r in results if isinstance(r, _Outcome)]
        remaining = len(pending)
        if not remaining:
            self.finished.set_result(tuple(self.failures))
            return

        def one_done(outcome: Future[Failure | None]) -> None:
            nonlocal remaining
            failure = outcome.result()
            if failure is not None:
                self.failures.append(failure)
            remaining -= 1
            if not remaining:
                self.finished.set_result(tuple(self.failures))

        for outcome in pending:
            outcome.add_done_callback(one_done)


class _Outcome(Future["Failure | None"]):
    """One async or blocking delivery's end: its failure, or None."""

    __slots__ = ()


class _AsyncDelivery:
    """Calls an async handler: one task per delivery, at most ``max_concurrency`` at once."""

    __slots__ = ("_bus", "_options", "_waiting", "running", "subscription")

    def __init__(self, bus: Bus, subscription: Subscription) -> None:
        self._bus = bus
        self.subscription = subscription
        self._options = subscription.options
        self._waiting: deque[tuple[Event, _Outcome]] = deque()
        self.running = 0

    def __call__(self, event: Event) -> _Outcome:
        outcome = _Outcome()
        if self.running < self._options.max_concurrency:
            self._start(event, outcome)
            return outcome
        if len(self._waiting) >= self._options.max_pending:
            if self._options.drop == "drop-newest" or not self._waiting:
                self._dropped(event, outcome)
                return outcome
            self._dropped(*self._waiting.popleft())
        self._waiting.append((event, outcome))
        return outcome

    def _dropped(self, event: Event, outcome: _Outcome) -> None:
        error = self._bus.drop(self.subscription, event)
        outcome.set_result(Failure(self.subscription.owner, self.subscription.what, error, event))

    def _start(self, event: Event, outcome: _Outcome) -> None:
        coro: Coroutine[Any, Any, object] = self.subscription.function(event)
        self.running += 1
        task = self._bus._reactor().spawn(coro, name=f"{self.subscription.what}({event.name})")
        task.add_done_callback(lambda done: self._finished(event, outcome, done))

    def _finished(self, event: Event, outcome: _Outcome, task: Future[object]) -> None:
        self.running -= 1
        failure = None
        if not task.cancelled() and (error := task.exception()) is not None:
            failure = self._bus.record(self.subscription, error, event)
        outcome.set_result(failure)
        if self._waiting and self.running < self._options.max_concurrency:
            self._start(*self._waiting.popleft())


class _BlockingDelivery:
    """Calls a blocking handler on the reactor's thread pool."""

    __slots__ = ("_bus", "subscription")

    def __init__(self, bus: Bus, subscription: Subscription) -> None:
        self._bus = bus
        self.subscription = subscription

    def __call__(self, event: Event) -> _Outcome:
        outcome = _Outcome()
        result = self._bus._reactor().defer_to_thread(self.subscription.function, event)
        result.add_done_callback(lambda done: self._finished(event, outcome, done))
        return outcome

    def _finished(self, event: Event, outcome: _Outcome, result: Future[object]) -> None:
        failure = None
        if not result.cancelled() and (error := result.exception()) is not None:
            failure = self._bus.record(self.subscription, error, event)
        outcome.set_result(failure)
