"""eventhub's built-in reactor: an event loop over select, poll or epoll.

    from eventhub.reactor import Reactor

    reactor = Reactor()                      # epoll on Linux; or backend="poll" / "select"
                                             # or "asyncio" / "uvloop" (_aio.py)
    listener = reactor.listen_tcp(0, factory)
    print(listener.get_host().port)
    reactor.run()                            # until stop(), SIGINT or SIGTERM

The loop is in ``_loop.py`` (read its opening comment first), the backends in
``_pollers.py``, timers in ``_timers.py``, the thread pool in ``_threads.py`` and
TCP connections in ``_tcp.py`` (listeners in ``_listener.py``, connectors in
``_connector.py``), UNIX sockets in
``_unix.py`` (the same connections), TLS in ``_tls.py`` (a layer between a
connection and its protocol, over ``ssl.MemoryBIO``), UDP in ``_udp.py``, coroutines in
``_tasks.py`` (``spawn``, ``sleep``, ``timeout``) and ``_streams.py``. Code handed a reactor
should annotate it as ``ReactorAPI`` (``_api.py``), which ``MemoryReactor`` of
``eventhub.testing`` satisfies too.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from eventhub.reactor._api import Inventory, ListenerAPI, ReactorAPI, TimerAPI
    from eventhub.reactor._connector import Connector
    from eventhub.reactor._listener import Listener
    from eventhub.reactor._loop import Reactor
    from eventhub.reactor._output import HIGH_WATER
    from eventhub.reactor._pollers import (
        DescriptorLimitError,
        Poller,
        available_backends,
        backend_availability,
        make_poller,
    )
    from eventhub.reactor._streams import Stream
    from eventhub.reactor._tasks import Future, Task, TaskAPI, Timeout
    from eventhub.reactor._tcp import Connection
    from eventhub.reactor._threads import ThreadResult
    from eventhub.reactor._timers import TimerHandle

# Imported on first use (PEP 562): the bus needs ``tasks`` without the loop,
# and every pytest run where eventhub is installed imports the hub.
_WHERE = {
    "Reactor": "_loop",
    "HIGH_WATER": "_output",
    "Inventory": "_api",
    "ListenerAPI": "_api",
    "ReactorAPI": "_api",
    "TimerAPI": "_api",
    "DescriptorLimitError": "_pollers",
    "Poller": "_pollers",
    "available_backends": "_pollers",
    "backend_availability": "_pollers",
    "make_poller": "_pollers",
    "Stream": "_streams",
    "Future": "_tasks",
    "Task": "_tasks",
    "TaskAPI": "_tasks",
    "Timeout": "_tasks",
    "Connection": "_tcp",
    "Connector": "_connector",
    "Listener": "_listener",
    "ThreadResult": "_threads",
    "TimerHandle": "_timers",
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
