"""The exceptions eventhub raises, and the exit status each one means to the CLI."""

from __future__ import annotations


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


class UserInterrupt(KeyboardInterrupt):
    """The user's Ctrl-C (SIGINT), raised by ``eventhub run``'s own handler before serving.

    It stops the hub (exit status 130). A plain ``KeyboardInterrupt`` raised by
    a plugin's code does not: a plugin cannot end the process, so that one is
    reported as the plugin's failure (see ``eventhub.plugins.raised_by_plugin``).
    While serving, the reactor handles SIGINT itself and nothing is raised.
    """
