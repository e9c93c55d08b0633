"""The Hub: owns the plugin manager, the event bus and the reactor, and runs their lifecycle.

``Hub()`` loads nothing; ``Hub(autoload=True)`` loads the entry points of group
``eventhub.plugins``. ``register`` adds one plugin by hand (the seed's
``event_list.append``); ``emit``/``dispatch``/``subscribe``/``publish`` are the
event bus (``eventhub._bus``); ``run`` is the whole lifecycle described in
``eventhub.hookspecs``.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeGuard, cast

import eventhub._backends  # noqa: F401  # reactor backends of other distributions, by name (eventhub.reactors)
from eventhub import _plugins
from eventhub._bus import Bus, Subscription
from eventhub._chain import Failure, Monitor, report_failure
from eventhub._discovery import PluginEntry, discover
from eventhub._event import DropPolicy, Event, HandlerOptions
from eventhub._ordering import order
from eventhub._plugins import Impl, PluginManager, PluginRecord, Status
from eventhub.config import Config, env_flag, env_list
from eventhub.errors import (
    PLUGIN_ERRORS,
    EventhubError,
    OrderingError,
    PluginError,
    UsageError,
    is_user_interrupt,
    reraise_user_interrupt,
)
from eventhub.reactor._tasks import Future

if TYPE_CHECKING:
    from eventhub.protocol import Factory
    from eventhub.reactor._api import ReactorAPI
    from eventhub.reactor._sharing import SharedSockets
    from eventhub.reactor._tasks import TaskAPI

log = logging.getLogger("eventhub.hub")

# Wraps one call the hub makes to a plugin: (plugin name, hook name, function) -> function.
HookMonitor = Monitor

#: Emitted by ``run()`` once the services listen, as it begins to stop, and on SIGHUP.
STARTED, STOPPING, RELOAD = "eventhub.started", "eventhub.stopping", "eventhub.reload"

#: Entry points naming modules of hook specifications that plugins add for other plugins.
HOOKSPECS_GROUP = "eventhub.hookspecs"

DISABLE_ENV = "EVENTHUB_DISABLE_PLUGINS"
NO_AUTOLOAD_ENV = "EVENTHUB_DISABLE_AUTOLOAD"


class Hub:
    """The framework object: register plugins, emit and subscribe to events, run.

    ``emit(name, payload=None, source=None)`` emits event ``name`` from
    anywhere (the loop, another thread, a signal handler) and returns at once;
    on the reactor's thread, outside a delivery, the plain handlers have run
    when it returns. ``source`` names the emitting plugin; an invalid name
    raises ``PatternError``. ``dispatch(event)`` does the same for an ``Event``
    built by hand and returns the plain handlers' failures (an empty tuple when
    every one succeeded). See ``eventhub._bus`` for the guarantees. Both are
    the bus's own methods, bound here, so that emitting costs no extra call.

    ``reactor``: what the hub runs on, any ``ReactorAPI`` (a
    ``eventhub.testing.MemoryReactor`` in tests), or a zero-argument factory
    (a class counts) called for each ``run()``; by default a ``Reactor`` of
    ``backend`` (or the configured one), made on first use.
    """

    dispatch: Callable[[Event], tuple[Failure, ...]]
    emit: Callable[..., None]

    def __init__(
        self,
        *,
        autoload: bool = False,
        config: Config | None = None,
        backend: str | None = None,
        disable: Collection[str] = (),
        only: Collection[str] | None = None,
        shared_sockets: SharedSockets | None = None,
        reactor: ReactorAPI | Callable[[], ReactorAPI] | None = None,
    ) -> None:
        self.config = config if config is not None else Config()
        self.pm = PluginManager()
        self.bus = Bus(lambda: self.reactor, self.config.core.on_error)
        self.dispatch = self.bus.dispatch
        self.emit = self.bus.emit
        self.records: dict[str, PluginRecord] = {}
        self.hook_failures: list[Failure] = []
        self._order: list[str] = []
        self._monitors: list[HookMonitor] = []
        self._backend = backend or self.config.core.backend
        if reactor is not None and (backend is not None or shared_sockets is not None):
            raise UsageError("Hub(reactor=...) takes no backend or shared_sockets: it runs on that reactor")
        if self._backend != "auto" and reactor is None:
            _check_backend(self._backend)
        self._given_reactor = reactor
        self._reactor: ReactorAPI | None = None
        self._shared_sockets = shared_sockets
        #: This hub's index among the workers of ``eventhub run --workers N`` (None: the only one).
        self.worker: int | None = None
        self._configured = False
        self._report_failures = True
        if autoload:
            self.load_entry_points(disable=disable, only=only)

    # -- plugins ---------------------------------------------------------------

    def register(self, obj: object, name: str | None = None) -> str:
        """Register a Handler subclass or instance, a module, or an object with hook functions.

        Returns the name it was registered under. Raises ``PluginError`` naming
        the plugin and the reason; a failed registration leaves no trace.
        """
        plugin_name = name or _default_name(obj)
        self._register(obj, plugin_name)
        try:
            self._rebuild()
        except OrderingError as error:
            self._unregister(plugin_name)
            self._rebuild()
            raise PluginError(f"plugin {plugin_name!r}: {error}") from error
        record = PluginRecord(plugin_name)
        self._describe(record)
        self.records[plugin_name] = record
        return plugin_name

    def _register(self, obj: object, name: str) -> None:
        plugin = _plugins.instantiate(obj, name)
        _plugins.register(self.pm, plugin, name)
        try:
            for what, function, options in _plugins.handlers_of(self.pm, name):
                self.bus.add(name, what, function, options)
        except UsageError as error:
            self._unregister(name)
            raise PluginError(f"plugin {name!r}: {error}") from None

    def _unregister(self, name: str) -> None:
        self.bus.remove_plugin(name)
        _plugins.unregister(self.pm, name)

    def _describe(self, record: PluginRecord) -> None:
        record.file = _plugins.file_of(self.pm.get_plugin(record.name))
        record.hooks = _plugins.hooks_of(self.pm, record.name)
        record.events = sorted(
            {p for s in self.bus.subscriptions_of(record.name) for p in s.options.patterns}
        )

    def load_entry_points(
        self, disable: Collection[str] = (), only: Collection[str] | None = None, *, report: bool = True
    ) -> None:
        """Load the plugins of group ``eventhub.plugins``; a broken one is reported, not fatal.

        ``disable`` and ``only`` come from the caller (the command line) and must
        name installed plugins; ``[eventhub] disable`` and ``$EVENTHUB_DISABLE_PLUGINS``
        may name plugins that are not installed. Disabled plugins are never imported.
        ``report=False``: failures are only recorded (``eventhub plugins`` shows
        them in its table), not logged.
        """
        self._report_failures = report
        if env_flag(NO_AUTOLOAD_ENV):
            log.debug("%s is set: no plugin is loaded", NO_AUTOLOAD_ENV)
            return
        self._add_plugin_hookspecs()
        entries, conflicts = discover()
        installed = {e.name for e in entries} | {c.name for c in conflicts}
        unknown = sorted({*disable, *(only or ())} - installed)
        if unknown:
            known = ", ".join(sorted(installed)) or "none"
            raise UsageError(
                f"no installed plugin named {', '.join(map(repr, unknown))} (installed: {known})"
            )
        off = {*disable, *self.config.core.disable, *env_list(DISABLE_ENV)}
        for conflict in conflicts:
            self._fail(PluginRecord(conflict.name), conflict.describe())
        for entry in entries:
            record = PluginRecord(entry.name, entry.dist, entry.version)
            if entry.name in off or (only is not None and entry.name not in only):
                record.status = Status.DISABLED
                self.records[entry.name] = record
                continue
            self._load(entry, record)
        self._rebuild_dropping_cycles()

    def _add_plugin_hookspecs(self) -> None:
        """Add the hook specifications plugins declare (group ``eventhub.hookspecs``) before any plugin loads.

        A plugin may define hooks for other plugins to implement (the http
        plugin's ``eventhub_http_routes``); their specifications must exist
        before those plugins are validated, whatever the order they load in.
        A module that cannot be imported is reported; its hooks stay unknown.
        """
        specs, conflicts = discover(group=HOOKSPECS_GROUP)
        for conflict in conflicts:
            log.error("hook specifications: %s", conflict.describe())
        for spec in specs:
            try:
                self.pm.add_hookspecs(spec.load())  # type: ignore[arg-type]  # pluggy checks it
            except Exception as error:
                log.error("cannot add the hook specifications %s (%s): %s", spec.value, spec.dist, error)

    def _rebuild_dropping_cycles(self) -> None:
        """Rebuild the chain; plugins whose constraints form a cycle fail to load, the rest run."""
        while True:
            try:
                return self._rebuild()
            except OrderingError as error:
                for name in error.cycle:
                    self._unregister(name)
                    record = self.records.get(name) or PluginRecord(name)
                    self._fail(record, str(error))

    def _load(self, entry: PluginEntry, record: PluginRecord) -> None:
        try:
            obj = entry.load()
        except ImportError as error:
            missing = f" (missing module {error.name!r})" if error.name else ""
            return self._fail(record, f"cannot import {entry.value}{missing}: {error}")
        except PLUGIN_ERRORS as error:
            if is_user_interrupt(error):
                raise
            return self._fail(record, f"raised while loading {entry.value}: {_plugins.describe(error)}")
        try:
            self._register(obj, entry.name)
        except PluginError as error:
            return self._fail(record, str(error).removeprefix(f"plugin {entry.name!r}: "))
        self._describe(record)
        self.records[entry.name] = record

    def _fail(self, record: PluginRecord, reason: str) -> None:
        record.status = Status.FAILED
        record.reason = reason
        self.records[record.name] = record
        origin = f" ({record.dist} {record.version})" if record.dist else ""
        if self._report_failures:
            log.error("plugin %r%s failed to load: %s", record.name, origin, reason)

    @property
    def load_failures(self) -> list[PluginRecord]:
        return [r for r in self.records.values() if r.status is Status.FAILED]

    @property
    def plugin_order(self) -> list[str]:
        """Every registered plugin's name, in the order its hooks are called."""
        return list(self._order)

    def _rebuild(self) -> None:
        names = [name for name, _ in self.pm.list_name_plugin()]
        placements = {name: _plugins.placement(self.pm, name) for name in names}
        self._order = order(placements, self.config.core.order)
        self.bus.set_order(self._order)
        for position, name in enumerate(self._order, 1):
            if name in self.records:
                self.records[name].order = position

    # -- lifecycle -------------------------------------------------------------

    @property
    def reactor(self) -> ReactorAPI:
        """The hub's reactor: the one given to ``Hub(reactor=...)``, or made on first use."""
        if self._reactor is None:
            reactor = self._new_reactor()
            # While it runs, emits from other threads are handed to its thread.
            reactor.add_system_event_trigger("before", "startup", self._bind_thread)
            reactor.add_system_event_trigger("after", "shutdown", self.bus.bind_thread, None)
            self._reactor = reactor
        return self._reactor

    def _new_reactor(self) -> ReactorAPI:
        given = self._given_reactor
        if given is None:
            from eventhub.reactor import Reactor

            return Reactor(backend=self._backend, shared_sockets=self._shared_sockets)
        if _is_reactor(given) and not isinstance(given, type):  # a class has a reactor's methods too
            return given
        return cast("Callable[[], ReactorAPI]", given)()

    def _bind_thread(self) -> None:
        self.bus.bind_thread(threading.get_ident())

    @property
    def failures(self) -> list[Failure]:
        """The hook failures and the most recent handler failures (``failure_count`` counts them all)."""
        return [*self.hook_failures, *self.bus.failures]

    @property
    def failure_count(self) -> int:
        """How many hook and handler failures there were (``eventhub run`` exits 1 when any)."""
        return len(self.hook_failures) + self.bus.failures.total

    # -- events ----------------------------------------------------------------

    async def publish(
        self, name: str, payload: Any = None, *, source: str | None = None
    ) -> tuple[Failure, ...]:
        """Emit, then wait until every handler (plain, async, blocking) is done; returns the failures."""
        return await self.bus.publish(name, payload, source)

    def subscribe(
        self,
        patterns: str | Sequence[str],
        callback: Callable[[Event], Any],
        *,
        blocking: bool = False,
        max_concurrency: int = 100,
        max_pending: int = 1000,
        drop: DropPolicy = "drop-oldest",
    ) -> Subscription:
        """Call ``callback(event)`` for every event matching ``patterns``; ``.cancel()`` the result to stop.

        ``callback`` may be ``async def`` (a task per delivery) or plain with
        ``blocking=True`` (the thread pool). Subscribers run after the plugins'
        handlers of the same event, in the order they subscribed. A bad pattern
        or option raises ``UsageError`` naming it.
        """
        names = (patterns,) if isinstance(patterns, str) else tuple(patterns)
        options = HandlerOptions(names, blocking, max_concurrency, max_pending, drop)
        what = getattr(callback, "__qualname__", None) or repr(callback)
        return self.bus.add(None, what, callback, options)

    def wants(self, name: str) -> bool:
        """True when some handler subscribes to ``name``: emitters may skip building a payload."""
        return self.bus.wants(name)

    def configure(self) -> None:
        """Give each plugin its own settings table (once).

        A ``ConfigError`` (any ``EventhubError``) propagates; anything else a
        plugin raises becomes a ``PluginError`` naming it: a plugin that cannot
        take its settings stops the run before it starts.
        """
        if self._configured:
            return
        self._configured = True
        for name, table in self.config.plugins.items():
            if name not in self.records:
                given = self.config.overrides.get(name, {})
                if given and set(table) <= set(given):
                    key = next(iter(given))
                    log.warning("--set %s.%s: no loaded plugin is named %r", name, key, name)
                else:
                    log.warning("%s: [plugins.%s] configures no loaded plugin", self.config.source, name)
        for name in self.config.core.order:
            if name not in self.records:
                log.warning(
                    "%s: eventhub.order names %r, which is no loaded plugin",
                    self.config.origin("eventhub", "order"),
                    name,
                )
        for plugin_name, function, argnames in self._impls("eventhub_configure"):
            kwargs = {"settings": self.config.plugin_settings(plugin_name), "hub": self}
            _, error = _call_hook(function, argnames, kwargs)
            if error is not None:
                raise _configure_failed(plugin_name, error) from error

    def run(self) -> None:
        """Configure, start up, dispatch ``Event("run")``, serve if a service started, shut down.

        Serving (until SIGINT/SIGTERM, or ``stop()``) happens when a plugin
        started a service or the configuration schedules events; then
        ``eventhub.started`` is emitted once everything listens,
        ``eventhub.stopping`` as the hub begins to stop, and ``eventhub.reload``
        on SIGHUP. Otherwise ``run()`` returns after the ``run`` event, once the
        tasks it started (async handlers) are done.
        """
        self.configure()
        self._call_each("eventhub_startup", {"hub": self})
        try:
            self.dispatch(Event("run"))
            serving = self._start_services()
            serving = self._start_schedules() or serving
            if serving:
                self._serve()
            elif self._reactor is not None and (self._reactor.tasks or self._reactor.thread_results):
                self._reactor.spawn(self._stop_when_idle(), name="eventhub: wait for tasks")
                self._reactor.run()
        finally:
            self._call_each("eventhub_shutdown", {"hub": self})
            self.close()  # a reactor runs once: the next run() gets a new one

    def _serve(self) -> None:
        reactor = self.reactor
        if hasattr(signal, "SIGHUP"):
            reactor.add_signal_handler(signal.SIGHUP, lambda: self.emit(RELOAD))
        reactor.add_system_event_trigger("before", "shutdown", self.emit, STOPPING)
        reactor.call_soon(self.emit, STARTED, {"worker": self.worker})
        reactor.run()

    # -- embedded in an asyncio application (backend asyncio or uvloop) ------------

    async def __aenter__(self) -> Hub:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def serve(self) -> None:
        """``run()`` inside a running asyncio application, on its loop (no second loop, no thread).

        The hub's backend must be ``asyncio`` or ``uvloop``; signals stay the
        application's: stop with ``hub.stop()``, ``await hub.aclose()`` or by
        cancelling the task that awaits this (the hub then shuts down gracefully).
        """
        from eventhub.reactor._aio import AsyncioReactor

        reactor = self.reactor
        if not isinstance(reactor, AsyncioReactor):
            raise UsageError(f"Hub.serve() runs on an asyncio loop: backend='asyncio', not {self._backend!r}")
        self.configure()
        self._call_each("eventhub_startup", {"hub": self})
        try:
            self.dispatch(Event("run"))
            self._start_services()
            self._start_schedules()
            reactor.add_system_event_trigger("before", "shutdown", self.emit, STOPPING)
            reactor.call_soon(self.emit, STARTED)
            await reactor.serve()
        finally:
            self._call_each("eventhub_shutdown", {"hub": self})
            self._reactor = None  # it closed itself; a next serve() gets a new one

    async def aclose(self) -> None:
        """Stop serving (if ``serve()`` runs) and wait until the hub has shut down."""
        reactor = self._reactor
        if reactor is None:
            return
        if reactor.running:
            done: Future[None] = Future()
            reactor.add_system_event_trigger("after", "shutdown", done.set_result, None)
            reactor.stop()
            await done
        else:
            self.close()

    async def _stop_when_idle(self) -> None:
        reactor = self.reactor
        current = reactor.current_task()
        # Async handlers' tasks and blocking handlers' threads, and whatever they start in turn.
        while others := _unfinished(reactor, current):
            for future in others:
                await _finished(future)
        reactor.stop()

    def _start_schedules(self) -> bool:
        from eventhub.schedule import start

        schedules = self.config.core.schedule
        return start(schedules, self.reactor, self.emit) if schedules else False

    def close(self) -> None:
        """Release the reactor if one was created and is not running (``run()`` does this itself)."""
        if self._reactor is not None and not self._reactor.running:
            self._reactor.close()
            self._reactor = None

    def stop(self, drain: float = 0.0) -> None:
        """Stop serving (from the loop thread; use ``reactor.call_from_thread`` elsewhere).

        ``drain``: let connections end by themselves for up to that many seconds first.
        """
        if self._reactor is not None:
            self._reactor.stop(drain)

    def _start_services(self) -> bool:
        impls = self._impls("eventhub_start_services")
        if not impls:
            return False
        reactor = self.reactor
        # Services announce themselves as they start: from then on SIGINT/SIGTERM
        # must stop them gracefully, even before reactor.run() is reached.
        reactor.install_signal_handlers()
        kwargs = {"hub": self, "reactor": reactor}
        started = False
        for plugin_name, function, argnames in impls:
            result, error = _call_hook(function, argnames, kwargs)
            if error is not None:
                self._hook_failed(plugin_name, "eventhub_start_services", error)
            started = bool(result) or started
        return started

    def _call_each(self, hook_name: str, kwargs: Mapping[str, Any]) -> None:
        """Call every implementation of a lifecycle hook; one failing does not stop the others."""
        for plugin_name, function, argnames in self._impls(hook_name):
            _, error = _call_hook(function, argnames, kwargs)
            if error is not None:
                self._hook_failed(plugin_name, hook_name, error)

    def _hook_failed(self, plugin_name: str, hook_name: str, error: BaseException) -> None:
        self.hook_failures.append(report_failure(plugin_name, hook_name, error))

    def _impls(self, hook_name: str) -> list[Impl]:
        """A hook's implementations in plugin order (``eventhub._ordering``), through the monitors.

        The one place that lists what to call for a hook: the lifecycle hooks and
        the network hooks (``eventhub._netevents``) both come through here.
        """
        position = {name: index for index, name in enumerate(self._order)}
        impls = getattr(self.pm.hook, hook_name).get_hookimpls()
        impls = sorted(impls, key=lambda impl: (_plugins.hook_rank(impl), position[impl.plugin_name]))
        return [
            (
                impl.plugin_name,
                self._monitored(impl.plugin_name, hook_name, impl.function),
                tuple(impl.argnames),
            )
            for impl in impls
        ]

    def _monitored(self, plugin: str, hook_name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        for monitor in self._monitors:
            function = monitor(plugin, hook_name, function)
        return function

    def add_monitor(self, monitor: HookMonitor) -> Callable[[], None]:
        """Wrap every call the hub makes to a plugin; returns a function that undoes it.

        The one seam for tracing and timing: event handlers (``eventhub_execute``
        or the ``@on`` function's name, called with the event), the lifecycle
        hooks and the network hooks of services built after this call (each
        called with the arguments its implementation takes, by position) all
        pass through ``monitor``. Handlers know nothing of it.
        """
        self._monitors.append(monitor)
        undo_bus = self.bus.add_monitor(monitor)

        def undo() -> None:
            self._monitors.remove(monitor)
            undo_bus()

        return undo

    # -- network events --------------------------------------------------------

    def observe_factory(self, factory: Factory, service: str) -> Factory:
        """``factory`` as served: wrapped to report connections to the network hooks.

        When no plugin implements an ``eventhub_connection_*`` hook, ``factory``
        itself is returned, so an unobserved service pays nothing per event.
        """
        from eventhub._netevents import observe_factory

        return observe_factory(self._impls, factory, service)


def _unfinished(reactor: ReactorAPI, current: TaskAPI[Any]) -> list[TaskAPI[Any] | Future[Any]]:
    return [*(t for t in reactor.tasks if t is not current), *reactor.thread_results]


async def _finished(task: TaskAPI[Any] | Future[Any]) -> None:
    """Wait for ``task`` to end without taking its outcome (whoever started it reports that)."""
    done: Future[None] = Future()
    task.add_done_callback(lambda _: done.set_result(None))
    await done


def _configure_failed(plugin: str, error: BaseException) -> PluginError:
    """The one line for a plugin failing in ``eventhub_configure``; its traceback is logged at DEBUG."""
    message = f"plugin {plugin!r} failed in eventhub_configure: {_plugins.describe(error)}"
    log.debug("%s", message, exc_info=error)
    return PluginError(message)


def _check_backend(name: str) -> None:
    """Fail early (``UsageError``) on a backend the reactor would refuse, even if none is needed."""
    from eventhub.reactor._pollers import check_backend

    check_backend(name)


def _is_reactor(obj: object) -> TypeGuard[ReactorAPI]:
    from eventhub.reactor._api import ReactorAPI

    return isinstance(obj, ReactorAPI)


def _call_with(function: Callable[..., Any], argnames: Iterable[str], kwargs: Mapping[str, Any]) -> Any:
    return function(*[kwargs[name] for name in argnames])


def _call_hook(
    function: Callable[..., Any], argnames: Iterable[str], kwargs: Mapping[str, Any]
) -> tuple[Any, BaseException | None]:
    """Call a lifecycle hook's implementation: ``(its result, None)``, or ``(None, what the plugin raised)``.

    The hub's own refusals (``EventhubError``) and the user's Ctrl-C go on up.
    """
    try:
        return _call_with(function, argnames, kwargs), None
    except EventhubError:
        raise
    except PLUGIN_ERRORS as error:
        reraise_user_interrupt(error)
        return None, error


def _default_name(obj: object) -> str:
    name = getattr(obj, "__name__", None)
    return name if isinstance(name, str) else type(obj).__name__


__all__ = ["Hub"]
