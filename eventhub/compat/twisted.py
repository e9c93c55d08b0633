"""Run Twisted-style code on eventhub: ``from eventhub.compat.twisted import reactor, protocol``.

The seed's echo server runs with only its import line changed::

    from eventhub.compat.twisted import reactor, protocol

    class Echo(protocol.Protocol):
        def dataReceived(self, data):
            self.transport.write(data)

    factory = protocol.ServerFactory()
    factory.protocol = Echo
    reactor.listenTCP(8000, factory)
    reactor.run()

``reactor`` is the one import-time global reactor in eventhub (it exists to
mimic Twisted's). It is a ``TwistedReactor``: Twisted's method names over an
``eventhub.reactor.Reactor`` that is created on first use, so importing this
module opens nothing. Like Twisted's, it runs once.

``listenTCP``'s ``interface=""`` means all interfaces, as in Twisted (eventhub's
own ``listen_tcp`` defaults to loopback). Because that exposes the port, a
warning names the bound address; set ``EVENTHUB_TWISTED_INTERFACE=127.0.0.1`` to
make ``""`` mean loopback without editing the program. What else differs is in
``docs/migration-twisted.md``.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from eventhub.compat import twisted_protocol as protocol
from eventhub.compat.twisted_protocol import (
    ClientFactory,
    ClientFactoryBridge,
    Factory,
    ServerFactoryBridge,
    TwistedConnector,
)
from eventhub.protocol import Address
from eventhub.reactor.api import ListenerAPI, ReactorAPI, TimerAPI

__all__ = ["DelayedCall", "ListeningPort", "TwistedReactor", "protocol", "reactor"]

log = logging.getLogger("eventhub.compat.twisted")

INTERFACE_ENV = "EVENTHUB_TWISTED_INTERFACE"


def _default_reactor() -> ReactorAPI:
    from eventhub.reactor import Reactor

    return Reactor()


class ListeningPort:
    """What ``listenTCP`` returns: Twisted's ``getHost()`` and ``stopListening()``."""

    __slots__ = ("eventhub_listener", "factory")

    def __init__(self, listener: ListenerAPI, factory: Factory) -> None:
        self.eventhub_listener = listener
        self.factory = factory

    def getHost(self) -> Address:
        return self.eventhub_listener.get_host()

    def stopListening(self) -> None:
        self.eventhub_listener.stop_listening()

    def __repr__(self) -> str:
        return f"<ListeningPort {self.getHost()} {type(self.factory).__name__}>"


class DelayedCall:
    """What ``callLater`` returns (Twisted's names over a ``TimerHandle``).

    Unlike Twisted's, ``cancel()`` on a call that already ran or was cancelled
    does nothing instead of raising ``AlreadyCalled`` / ``AlreadyCancelled``.
    """

    __slots__ = ("_reactor", "handle")

    def __init__(self, handle: TimerAPI, reactor: ReactorAPI) -> None:
        self.handle = handle
        self._reactor = reactor

    def getTime(self) -> float:
        return self.handle.time

    def active(self) -> bool:
        return self.handle.active()

    def cancel(self) -> None:
        self.handle.cancel()

    def reset(self, secondsFromNow: float) -> None:
        self.handle.reset(secondsFromNow)

    def delay(self, secondsLater: float) -> None:
        """Push the call ``secondsLater`` further away."""
        remaining = self.handle.time - self._reactor.seconds()
        self.handle.reset(max(0.0, remaining + secondsLater))


class TwistedReactor:
    """Twisted's reactor API over an eventhub reactor made by ``make_reactor`` on first use.

    ``make_reactor`` returns any ``eventhub.reactor.ReactorAPI``: a ``Reactor``
    (the default) or, in tests, an ``eventhub.testing.MemoryReactor``.
    """

    def __init__(self, make_reactor: Callable[[], ReactorAPI] = _default_reactor) -> None:
        self._make_reactor = make_reactor
        self._reactor: ReactorAPI | None = None
        self._lock = threading.Lock()

    @property
    def eventhub_reactor(self) -> ReactorAPI:
        """The eventhub reactor underneath (created now if it was not yet)."""
        if self._reactor is None:
            with self._lock:  # callFromThread may be the first use, from another thread
                if self._reactor is None:
                    self._reactor = self._make_reactor()
        return self._reactor

    @property
    def running(self) -> bool:
        return self._reactor is not None and self._reactor.running

    # -- TCP -----------------------------------------------------------------

    def listenTCP(self, port: int, factory: Factory, backlog: int = 50, interface: str = "") -> ListeningPort:
        """Listen on ``interface:port``; ``""`` is all interfaces, as in Twisted (see module doc)."""
        chosen = interface or os.environ.get(INTERFACE_ENV, "")
        listener = self.eventhub_reactor.listen_tcp(port, ServerFactoryBridge(factory), backlog, chosen)
        if chosen:
            log.info("listenTCP: listening on %s", listener.get_host())
        else:
            log.warning(
                "listenTCP: listening on all interfaces (%s), as Twisted does for interface=''; "
                "pass interface='127.0.0.1' or set %s=127.0.0.1 for loopback only",
                listener.get_host(),
                INTERFACE_ENV,
            )
        return ListeningPort(listener, factory)

    def connectTCP(
        self,
        host: str,
        port: int,
        factory: ClientFactory,
        timeout: float = 30,
        bindAddress: tuple[str, int] | None = None,
    ) -> TwistedConnector:
        """Connect to ``host:port``; the factory hears how it ends, as in Twisted."""
        if bindAddress is not None:
            raise NotImplementedError("connectTCP(bindAddress=...) is not supported by eventhub")
        bridge = ClientFactoryBridge(factory)
        connector = self.eventhub_reactor.connect_tcp(host, port, bridge, timeout)
        return bridge.twisted_connector(connector)

    # -- calls ---------------------------------------------------------------

    def callLater(self, delay: float, fn: Callable[..., object], *args: Any, **kw: Any) -> DelayedCall:
        reactor = self.eventhub_reactor
        return DelayedCall(reactor.call_later(delay, fn, *args, **kw), reactor)

    def callFromThread(self, fn: Callable[..., object], *args: Any, **kw: Any) -> None:
        self.eventhub_reactor.call_from_thread(fn, *args, **kw)

    def callInThread(self, fn: Callable[..., object], *args: Any, **kw: Any) -> None:
        self.eventhub_reactor.call_in_thread(fn, *args, **kw)

    def callWhenRunning(self, fn: Callable[..., object], *args: Any, **kw: Any) -> int | None:
        """Call now-ish if running, else once startup is complete (Twisted's order)."""
        reactor = self.eventhub_reactor
        if reactor.running:
            reactor.call_soon(fn, *args, **kw)
            return None
        return self.addSystemEventTrigger("after", "startup", fn, *args, **kw)

    def seconds(self) -> float:
        """The reactor's clock: monotonic (Twisted's is ``time.time()``)."""
        return self.eventhub_reactor.seconds()

    # -- lifecycle -----------------------------------------------------------

    def run(self, installSignalHandlers: bool = True) -> None:
        """Serve until ``stop()`` or SIGINT/SIGTERM; a reactor runs once, as in Twisted."""
        self.eventhub_reactor.run(install_signal_handlers=bool(installSignalHandlers))

    def stop(self) -> None:
        self.eventhub_reactor.stop()

    def addSystemEventTrigger(
        self, phase: str, eventType: str, callable: Callable[..., object], *args: Any, **kw: Any
    ) -> int:
        fn = functools.partial(callable, *args, **kw) if kw else callable
        call_args = () if kw else args
        return self.eventhub_reactor.add_system_event_trigger(phase, eventType, fn, *call_args)

    def removeSystemEventTrigger(self, triggerID: int) -> None:
        self.eventhub_reactor.remove_system_event_trigger(triggerID)


reactor = TwistedReactor()
