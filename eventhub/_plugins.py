"""Turning objects into validated plugins: the plugin manager, registration, rollback.

An entry point (or ``Hub.register``) may name a module of hook functions, a
plugin class or object, or a ``Handler`` subclass. Registration here either
succeeds whole or leaves no trace: pluggy adds hook implementations one by one
and does not undo the ones before a failure, so we undo them.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Sequence
from enum import Enum
from types import ModuleType
from typing import Any

import pluggy

from eventhub import hookspecs
from eventhub._chain import EXECUTE, Call
from eventhub._event import ALL_EVENTS, ON_ATTRIBUTE, Event, Handler, HandlerOptions
from eventhub._markers import PROJECT_NAME
from eventhub._ordering import Placement
from eventhub.errors import PLUGIN_ERRORS, PluginError, is_user_interrupt

HOOK_PREFIX = "eventhub_"


# One hook implementation as the hub calls it: (plugin name, function, its argument names).
Impl = tuple[str, Callable[..., Any], tuple[str, ...]]


def describe(error: BaseException) -> str:
    """``Type: message``, or ``Type`` alone when the message is empty (``KeyboardInterrupt``)."""
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class Status(str, Enum):
    LOADED = "loaded"
    DISABLED = "disabled"
    FAILED = "failed"


class PluginRecord:
    """What ``eventhub plugins`` shows for one plugin; the hub fills it in as the plugin loads.

    A plain class rather than a dataclass: see ``eventhub._frozen`` for the start-up cost.
    """

    __slots__ = ("dist", "events", "file", "hooks", "name", "order", "reason", "status", "version")

    def __init__(self, name: str, dist: str = "", version: str = "") -> None:
        self.name = name
        self.dist = dist
        self.version = version
        self.status = Status.LOADED
        self.reason = ""
        self.hooks: list[str] = []
        self.events: list[str] = []
        self.order: int | None = None  # position in the plugin order (1 first), once registered
        self.file = ""  # where the plugin's code is

    def __repr__(self) -> str:
        return f"PluginRecord({self.name!r}, status={self.status.value!r}, dist={self.dist!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PluginRecord):
            return self.as_dict() == other.as_dict()
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable, as the dataclass was

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.dist,
            "version": self.version,
            "status": self.status.value,
            "reason": self.reason,
            "hooks": [hook.removeprefix(HOOK_PREFIX) for hook in self.hooks],
            "events": list(self.events),
            "order": self.order,
            "file": self.file,
        }


class PluginManager(pluggy.PluginManager):
    """pluggy's manager, also taking unmarked ``eventhub_*`` functions as hook implementations.

    pytest does the same for ``pytest_*``: a plugin module that forgets the
    decorator still works, and a misspelt hook name is caught by validation
    instead of being silently ignored.
    """

    def __init__(self) -> None:
        super().__init__(PROJECT_NAME)
        self.add_hookspecs(hookspecs)

    def parse_hookimpl_opts(self, plugin: object, name: str) -> Any:
        opts = super().parse_hookimpl_opts(plugin, name)
        if opts is None and name.startswith(HOOK_PREFIX):
            method = getattr(plugin, name, None)
            if inspect.isroutine(method):
                return {}
        return opts


def instantiate(obj: object, name: str) -> object:
    """The plugin object to register for ``obj`` (classes are instantiated with no arguments)."""
    if inspect.isclass(obj):
        _check_handler_class(obj, name)
        try:
            return obj()
        except PLUGIN_ERRORS as error:
            if is_user_interrupt(error):
                raise
            raise PluginError(f"plugin {name!r}: {obj.__qualname__}() raised {describe(error)}") from error
    if isinstance(obj, Handler):
        _check_handler_class(type(obj), name)
    return obj


def _check_handler_class(cls: type, name: str) -> None:
    if issubclass(cls, Handler) and cls.execute is Handler.execute:
        raise PluginError(
            f"plugin {name!r}: Handler subclass {cls.__module__}.{cls.__qualname__} "
            "does not override execute(self, event)"
        )


def register(pm: PluginManager, plugin: object, name: str) -> None:
    """Register ``plugin`` under ``name`` and validate it; on any failure, leave no trace."""
    if pm.has_plugin(name):
        raise PluginError(f"plugin {name!r}: a plugin of that name is already registered")
    try:
        pm.register(plugin, name)
        _check_hooks(pm, plugin, name)
    except PLUGIN_ERRORS as error:
        unregister(pm, name)
        if isinstance(error, PluginError) or is_user_interrupt(error):
            raise
        raise PluginError(f"plugin {name!r}: {_describe(error)}") from error


def _check_hooks(pm: PluginManager, plugin: object, name: str) -> None:
    callers = pm.get_hookcallers(plugin) or ()
    if inspect.ismodule(plugin) and not callers and not _marked_functions(plugin):
        _check_not_a_handler_module(plugin, name)
    for caller in callers:
        if not caller.has_spec():
            known = [n for n in vars(pm.hook) if n.startswith(HOOK_PREFIX) and getattr(pm.hook, n).has_spec()]
            import difflib  # for this error only: not on every start

            close = difflib.get_close_matches(caller.name, known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise PluginError(
                f"plugin {name!r}: unknown hook {caller.name!r} "
                f"({hint}see eventhub.hookspecs for the hooks there are)"
            )
        for impl in caller.get_hookimpls():
            if impl.plugin is plugin and (impl.hookwrapper or impl.wrapper):
                raise PluginError(
                    f"plugin {name!r}: {caller.name} cannot be a wrapper (the hub calls each "
                    "implementation itself); wrap calls with Hub.add_monitor instead"
                )


def _check_not_a_handler_module(module: ModuleType, name: str) -> None:
    """A module with no hooks that defines Handler subclasses: the module was named, not the class.

    Registered as it is, it would load and never run; say which object to name instead.
    """
    handlers = [
        value.__qualname__
        for value in vars(module).values()
        if inspect.isclass(value)
        and issubclass(value, Handler)
        and value is not Handler
        and value.__module__ == module.__name__
    ]
    if handlers:
        targets = " or ".join(f"{module.__name__}:{handler}" for handler in handlers)
        raise PluginError(
            f"plugin {name!r}: module {module.__name__!r} has no hooks and no @eventhub.on functions, "
            f"only Handler subclasses: name the one to run ({targets})"
        )


def unregister(pm: PluginManager, name: str) -> None:
    """Take plugin ``name`` out of ``pm`` with every trace of it (hook callers pluggy made for it)."""
    plugin = pm.get_plugin(name)
    if plugin is None:
        return
    pm.unregister(plugin, name)
    # pluggy leaves behind the hook callers it made for names without a spec.
    for hook_name in [n for n in vars(pm.hook) if n.startswith(HOOK_PREFIX)]:
        caller = getattr(pm.hook, hook_name)
        if not caller.has_spec() and not caller.get_hookimpls():
            delattr(pm.hook, hook_name)


def _describe(error: BaseException) -> str:
    if isinstance(error, pluggy.PluginValidationError):
        # pluggy's message spans lines and repeats the plugin's repr; keep the gist.
        return "invalid hook implementation: " + " ".join(str(error).split())
    return describe(error)


def file_of(plugin: object) -> str:
    """The file a plugin's code is in (its module's, or its class's module's), or ``""``."""
    module = plugin if inspect.ismodule(plugin) else sys.modules.get(type(plugin).__module__)
    return str(getattr(module, "__file__", "") or "")


def hooks_of(pm: PluginManager, name: str) -> list[str]:
    plugin = pm.get_plugin(name)
    return sorted(caller.name for caller in pm.get_hookcallers(plugin) or ())


def placement(pm: PluginManager, name: str) -> Placement:
    """Where plugin ``name`` asks to run in the chain (see eventhub.ordering)."""
    plugin = pm.get_plugin(name)
    rank = 1
    for impl in pm.hook.eventhub_execute.get_hookimpls():
        if impl.plugin_name == name:
            rank = hook_rank(impl)
    return Placement(
        after=_names(getattr(plugin, "eventhub_after", ())),
        before=_names(getattr(plugin, "eventhub_before", ())),
        rank=rank,
    )


def hook_rank(impl: pluggy.HookImpl) -> int:
    """0 for ``tryfirst``, 2 for ``trylast``, else 1."""
    return 0 if impl.tryfirst else 2 if impl.trylast else 1


def _names(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Sequence | set | frozenset):
        return tuple(str(item) for item in value)
    return ()


# One handler a plugin declares: (what it is called in reports, the function, its options).
HandlerDecl = tuple[str, Callable[..., Any], HandlerOptions]


def handlers_of(pm: PluginManager, name: str) -> list[HandlerDecl]:
    """The event handlers plugin ``name`` declares, in declaration order.

    A ``Handler``'s ``execute`` with the class's ``events`` and options; an
    ``eventhub_execute`` hook implementation (every event); and each function
    marked with ``@eventhub.on``. The bus checks them when they are added.
    """
    plugin = pm.get_plugin(name)
    handlers: list[HandlerDecl] = []
    if isinstance(plugin, Handler):
        handlers.append((EXECUTE, plugin.execute, plugin.handler_options()))
    else:
        for impl in pm.hook.eventhub_execute.get_hookimpls():
            if impl.plugin_name == name:
                handlers.append((EXECUTE, _plain_call(impl), HandlerOptions((ALL_EVENTS,))))
    for what, function in _marked_functions(plugin):
        for options in getattr(function, ON_ATTRIBUTE):
            handlers.append((what, function, options))
    return handlers


def _marked_functions(plugin: object) -> list[tuple[str, Callable[..., Any]]]:
    """The ``@eventhub.on`` functions of a module (defined there) or methods of an object's class."""
    found: list[tuple[str, Callable[..., Any]]] = []
    if inspect.ismodule(plugin):
        for attr, value in vars(plugin).items():
            # Defined in this module: a marked function imported from another one is that one's.
            if hasattr(value, ON_ATTRIBUTE) and getattr(value, "__module__", None) == plugin.__name__:
                found.append((attr, value))
        return found
    seen: set[str] = set()
    for klass in type(plugin).__mro__:
        for attr, value in vars(klass).items():
            # __func__: a staticmethod or classmethod carries the mark on the function it wraps.
            if attr not in seen and hasattr(getattr(value, "__func__", value), ON_ATTRIBUTE):
                seen.add(attr)
                found.append((attr, getattr(plugin, attr)))
    return found


def _plain_call(impl: pluggy.HookImpl) -> Call:
    function = impl.function
    if impl.argnames == ("event",):
        return function
    # pluggy lets an implementation take fewer arguments than the spec.

    def call_without_event(event: Event) -> object:
        return function()

    return call_without_event
