"""eventhub's built-in reactor: an event loop over select, poll or epoll.

    from eventhub.reactor import Reactor

    reactor = Reactor()                      # epoll on Linux; or backend="poll" / "select"
                                             # or "asyncio" / "uvloop" (aio.py)
    listener = reactor.listen_tcp(0, factory)
    print(listener.get_host().port)
    reactor.run()                            # until stop(), SIGINT or SIGTERM

The loop is in ``_loop.py`` (read its opening comment first), the backends in
``pollers.py``, timers in ``timers.py``, the thread pool in ``threads.py`` and
TCP (listeners, connections, connectors) in ``tcp.py``, UNIX sockets in
``unix.py`` (the same connections), TLS in ``tls.py`` (a layer between a
connection and its protocol, over ``ssl.MemoryBIO``), UDP in ``udp.py``, coroutines in
``tasks.py`` (``spawn``, ``sleep``, ``timeout``) and ``streams.py``. Code handed a reactor
should annotate it as ``ReactorAPI`` (``api.py``), which ``MemoryReactor`` of
``eventhub.testing`` satisfies too.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from eventhub.reactor._loop import Reactor
    from eventhub.reactor._output import HIGH_WATER
    from eventhub.reactor.api import Inventory, ListenerAPI, ReactorAPI, TimerAPI
    from eventhub.reactor.pollers import (
        DescriptorLimitError,
        Poller,
        available_backends,
        backend_availability,
        make_poller,
    )
    from eventhub.reactor.streams import Stream
    from eventhub.reactor.tasks import Future, Task, TaskAPI, Timeout
    from eventhub.reactor.tcp import Connection, Connector, Listener
    from eventhub.reactor.threads import ThreadResult
    from eventhub.reactor.timers import TimerHandle

# Imported on first use (PEP 562): the bus needs ``tasks`` without the loop,
# and every pytest run where eventhub is installed imports the hub.
_WHERE = {
    "Reactor": "_loop",
    "HIGH_WATER": "_output",
    "Inventory": "api",
    "ListenerAPI": "api",
    "ReactorAPI": "api",
    "TimerAPI": "api",
    "DescriptorLimitError": "pollers",
    "Poller": "pollers",
    "available_backends": "pollers",
    "backend_availability": "pollers",
    "make_poller": "pollers",
    "Stream": "streams",
    "Future": "tasks",
    "Task": "tasks",
    "TaskAPI": "tasks",
    "Timeout": "tasks",
    "Connection": "tcp",
    "Connector": "tcp",
    "Listener": "tcp",
    "ThreadResult": "threads",
    "TimerHandle": "timers",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'eventhub.reactor' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"eventhub.reactor.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "HIGH_WATER",
    "Connection",
    "Connector",
    "DescriptorLimitError",
    "Future",
    "Inventory",
    "Listener",
    "ListenerAPI",
    "Poller",
    "Reactor",
    "ReactorAPI",
    "Stream",
    "Task",
    "TaskAPI",
    "ThreadResult",
    "Timeout",
    "TimerAPI",
    "TimerHandle",
    "available_backends",
    "backend_availability",
    "make_poller",
]
