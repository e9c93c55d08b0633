"""eventhub's built-in reactor: an event loop over select, poll or epoll.

    from eventhub.reactor import Reactor

    reactor = Reactor()                      # epoll on Linux; or backend="poll" / "select"
    listener = reactor.listen_tcp(0, factory)
    print(listener.get_host().port)
    reactor.run()                            # until stop(), SIGINT or SIGTERM

The loop is in ``_loop.py`` (read its opening comment first), the backends in
``pollers.py``, timers in ``timers.py``, the thread pool in ``threads.py`` and
TCP (listeners, connections, connectors) in ``tcp.py``. Code handed a reactor
should annotate it as ``ReactorAPI`` (``api.py``), which ``MemoryReactor`` of
``eventhub.testing`` satisfies too.
"""

from __future__ import annotations

from eventhub.reactor._loop import Reactor
from eventhub.reactor.api import ListenerAPI, ReactorAPI
from eventhub.reactor.pollers import DescriptorLimitError, Poller, available_backends, make_poller
from eventhub.reactor.tcp import Connection, Connector, Listener
from eventhub.reactor.threads import ThreadResult
from eventhub.reactor.timers import TimerHandle

__all__ = [
    "Connection",
    "Connector",
    "DescriptorLimitError",
    "Listener",
    "ListenerAPI",
    "Poller",
    "Reactor",
    "ReactorAPI",
    "ThreadResult",
    "TimerHandle",
    "available_backends",
    "make_poller",
]
