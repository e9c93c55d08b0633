"""The exceptions eventhub raises, and the exit status each one means to the CLI."""

from __future__ import annotations

import logging
import signal


class EventhubError(Exception):
    """Base of every error eventhub raises on purpose."""

    exit_status = 1


class UsageError(EventhubError):
    """A wrong command line, config file or setting: exit status 2, one line, no traceback."""

    exit_status = 2


class ConfigError(UsageError):
    """A config value is wrong. ``key`` names it, as ``section.key``."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


class PluginError(EventhubError):
    """A plugin could not be loaded or registered; the message names it and why."""


class OrderingError(UsageError):
    """The plugins' order constraints form a cycle; ``cycle`` names the plugins in it."""

    def __init__(self, message: str, cycle: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.cycle = cycle


class ServiceError(EventhubError):
    """A service could not start (a port in use, say): exit status 1, one line."""


class PatternError(UsageError, ValueError):
    """An event name or subscription pattern is malformed; the message says which and why."""


class Cancelled(BaseException):
    """Raised inside a task at the ``await`` where it was cancelled (``Task.cancel``, shutdown).

    A ``BaseException``, as ``asyncio.CancelledError`` is since 3.8, so that an
    ``except Exception`` in the task does not swallow it; ``finally`` blocks run.
    """


class IncompleteReadError(EOFError):
    """``Stream.readexactly(n)`` met EOF first; ``partial`` holds the bytes read before it."""

    def __init__(self, partial: bytes, expected: int) -> None:
        super().__init__(f"{len(partial)} bytes read of {expected} expected before EOF")
        self.partial = partial
        self.expected = expected


# What a plugin's code may raise that the hub catches, reports and survives:
# SystemExit and KeyboardInterrupt included, since a plugin may not end the
# process (only the user's signals stop a hub).
PLUGIN_ERRORS: tuple[type[BaseException], ...] = (Exception, SystemExit, KeyboardInterrupt)


class UserInterrupt(BaseException):
    """The user's Ctrl-C (SIGINT), raised by the ``eventhub`` command's own handler before serving.

    It stops the hub (exit status 130). A ``KeyboardInterrupt`` raised by a
    plugin's code does not: a plugin cannot end the process, so that one is
    the plugin's failure (``PLUGIN_ERRORS``). Not a ``KeyboardInterrupt``, so
    that no seam catching ``PLUGIN_ERRORS`` can take the user's Ctrl-C for a
    plugin's (the chain, the bus, the hooks), as ``Cancelled`` is not an
    ``Exception``. While serving, the reactor handles SIGINT itself and raises
    nothing. Where Python's default handler is in place (a ``Hub`` run by
    hand), see ``is_user_interrupt``.
    """


def is_user_interrupt(error: BaseException) -> bool:
    """True for what may be the user's Ctrl-C, which must go past a plugin seam.

    ``eventhub run`` raises ``UserInterrupt`` from its own SIGINT handler (not
    one of ``PLUGIN_ERRORS``: no seam catches it), and while serving, the
    reactor handles SIGINT without raising, so there a ``KeyboardInterrupt``
    is a plugin's. Under Python's default handler (a ``Hub`` run by hand) the
    two cannot be told apart: a ``KeyboardInterrupt`` is taken as the user's.
    """
    if isinstance(error, UserInterrupt):
        return True
    return (
        isinstance(error, KeyboardInterrupt) and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    )


def reraise_user_interrupt(error: BaseException) -> None:
    """Raise ``error`` again if it is the user's Ctrl-C; a seam catching ``PLUGIN_ERRORS`` calls it first."""
    if is_user_interrupt(error):
        raise error


def call_plugin(log: logging.Logger, obj: object, method: str, *args: object) -> None:
    """Call ``obj.method(*args)``: plugin code (a factory's or protocol's callback, a signal handler).

    What it raises (``PLUGIN_ERRORS``) is logged with its traceback as
    ``Type.method raised`` and goes no further, but the user's Ctrl-C.
    """
    try:
        getattr(obj, method)(*args)
    except PLUGIN_ERRORS as failure:
        reraise_user_interrupt(failure)
        what = (
            getattr(obj, "__qualname__", repr(obj))
            if method == "__call__"
            else f"{type(obj).__name__}.{method}"
        )
        log.exception("%s raised", what)
