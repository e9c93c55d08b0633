"""Tracing: one log line per call the hub makes to a plugin (``eventhub run --trace``).

``install(hub)`` hooks into ``Hub.add_monitor``, the seam through which every
call the hub makes to a plugin passes: the chain's handlers
(``eventhub_execute``), the lifecycle hooks (``eventhub_configure``,
``eventhub_startup``, ``eventhub_start_services``, ``eventhub_shutdown``) and the
network hooks (``eventhub_connection_*``) of the services started afterwards;
one line per plugin and call.

Each line goes to the logger ``eventhub.trace`` at INFO (shown by default by the
``eventhub`` command) and reads::

    hello: eventhub_execute(event=Event(name='run', payload=None)) -> None [0.004 ms]
    audit: eventhub_startup(hub=<Hub>) raised RuntimeError('disk full') [0.020 ms]

Handlers know nothing of it, and without ``install`` nothing is wrapped: the
chain calls each handler directly.
"""

from __future__ import annotations

import functools
import logging
import reprlib
import time
from collections.abc import Callable, Mapping
from inspect import Parameter, signature
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from eventhub._hub import Hub

__all__ = ["install", "summarize"]

log = logging.getLogger("eventhub.trace")

# Bytes shown of a bytes argument before eliding the rest.
_BYTES_SHOWN = 32

_short = reprlib.Repr()
_short.maxstring = 60
_short.maxother = 80
_short.maxlevel = 2
_short.maxdict = 4
_short.maxlist = 4
_short.maxtuple = 4


def install(hub: Hub) -> Callable[[], None]:
    """Trace every plugin call of ``hub``; returns a function that stops tracing."""
    return hub.add_monitor(_monitor)


def summarize(value: object) -> str:
    """A short, one-line description of ``value`` for a trace line."""
    if isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
        if len(data) <= _BYTES_SHOWN:
            return repr(data)
        return f"{data[:_BYTES_SHOWN]!r}... ({len(data)} bytes)"
    if isinstance(value, BaseException):
        return f"{type(value).__name__}({_short.repr(str(value))})"
    if isinstance(value, Mapping) and not isinstance(value, dict):
        value = dict(value)  # a settings mappingproxy reads better as the dict it wraps
    cls = type(value)
    if cls.__module__ != "builtins" and cls.__str__ is not object.__str__:
        return _clip(str(value))  # such as Address: 127.0.0.1:8000
    if cls.__repr__ is object.__repr__:
        return f"<{cls.__name__}>"  # the default repr's address says nothing
    return _short.repr(value)


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _monitor(plugin: str, hook_name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """The ``Hub.add_monitor`` monitor: wrap one plugin's implementation of one hook."""
    names = _argnames(function)

    # wraps() keeps the signature visible to monitors added after this one.
    @functools.wraps(function)
    def traced(*args: Any) -> Any:
        start = time.perf_counter()
        try:
            result = function(*args)
        except BaseException as error:
            _log(plugin, hook_name, _pairs(names, args), start, f"raised {summarize(error)}")
            raise
        _log(plugin, hook_name, _pairs(names, args), start, f"-> {summarize(result)}")
        return result

    return traced


def _log(
    plugin: str, hook_name: str, arguments: list[tuple[str, object]], start: float, outcome: str
) -> None:
    elapsed_ms = (time.perf_counter() - start) * 1000
    args = ", ".join(f"{name}={summarize(value)}" for name, value in arguments)
    log.info("%s: %s(%s) %s [%.3f ms]", plugin, hook_name, args, outcome, elapsed_ms)


def _argnames(function: Callable[..., Any]) -> tuple[str, ...]:
    """The names of ``function``'s positional parameters (empty when it cannot tell)."""
    try:
        parameters = signature(function).parameters.values()
    except (TypeError, ValueError):
        return ()
    positional = (Parameter.POSITIONAL_ONLY, Parameter.POSITIONAL_OR_KEYWORD)
    return tuple(p.name for p in parameters if p.kind in positional)


def _pairs(names: tuple[str, ...], args: tuple[Any, ...]) -> list[tuple[str, object]]:
    if len(names) != len(args):  # another monitor's (*args) wrapper, say
        names = tuple(f"arg{index}" for index in range(len(args)))
    return list(zip(names, args, strict=True))
