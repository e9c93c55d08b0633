"""eventhub: pip-installed plugins handle named events, served by a select/poll/epoll reactor."""

from __future__ import annotations

from eventhub._markers import hookimpl, hookspec
from eventhub.bus import DeliveryDropped, Subscription
from eventhub.chain import Failure
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
from eventhub.event import Event, Handler, on
from eventhub.hub import Hub
from eventhub.plugins import PluginRecord
from eventhub.plugins import Status as PluginStatus

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
