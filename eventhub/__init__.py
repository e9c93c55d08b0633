"""eventhub: pip-installed plugins run as an execution chain, served by a select/poll/epoll reactor."""

from __future__ import annotations

from eventhub._markers import hookimpl, hookspec
from eventhub.errors import ConfigError, EventhubError, PluginError, ServiceError, UsageError
from eventhub.event import Event, Handler
from eventhub.hub import Hub

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "Event",
    "EventhubError",
    "Handler",
    "Hub",
    "PluginError",
    "ServiceError",
    "UsageError",
    "__version__",
    "hookimpl",
    "hookspec",
]
