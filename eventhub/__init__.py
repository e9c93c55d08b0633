"""eventhub: pip-installed plugins handle named events, served by a select/poll/epoll reactor."""

from __future__ import annotations

from eventhub._bus import DeliveryDropped, Subscription
from eventhub._chain import Failure
from eventhub._event import Event, Handler, on
from eventhub._hub import Hub
from eventhub._markers import hookimpl, hookspec
from eventhub._plugins import PluginRecord
from eventhub._plugins import Status as PluginStatus
from eventhub.errors import (
    Cancelled,
    ConfigError,
    EventhubError,
    IncompleteReadError,
    PatternError,
    PluginError,
    ServiceError,
    UsageError,
)

__version__ = "0.1.0"

__all__ = [
    "Cancelled",
    "ConfigError",
    "DeliveryDropped",
    "Event",
    "EventhubError",
    "Failure",
    "Handler",
    "Hub",
    "IncompleteReadError",
    "PatternError",
    "PluginError",
    "PluginRecord",
    "PluginStatus",
    "ServiceError",
    "Subscription",
    "UsageError",
    "__version__",
    "hookimpl",
    "hookspec",
    "on",
]
