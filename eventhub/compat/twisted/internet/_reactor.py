"""The compat ``reactor``: Twisted's reactor methods over an eventhub reactor.

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
import ssl
import threading
from collections.abc import Callable
from typing import Any, Protocol

from eventhub.compat.twisted.internet.address import IPv4Address, UNIXAddress, from_eventhub
from eventhub.compat.twisted.internet.defer import Deferred, succeed
from eventhub.compat.twisted.internet.error import CannotListenError
from eventhub.compat.twisted.internet.protocol import (
    ClientFactory,
    ClientFactoryBridge,
    DatagramProtocol,
    DatagramProtocolBridge,
    Factory,
    ServerFactoryBridge,
    TwistedConnector,
    TwistedDatagramPort,
)
from eventhub.errors import ServiceError, UsageError
from eventhub.reactor._api import ListenerAPI, ReactorAPI, TimerAPI

__all__ = [
    "INTERFACE_ENV",
    "DelayedCall",
    "ListeningPort",
    "ThreadPoolView",
    "TwistedReactor",
    "reactor",
    "ssl_context",
]

log = logging.getLogger("eventhub.compat.twisted")

INTERFACE_ENV = "EVENTHUB_TWISTED_INTERFACE"


DEFAULT_THREAD_POOL_SIZE = 10


class ListeningPort:
    """What ``listenTCP`` returns: Twisted's ``getHost()`` and ``stopListening()``."""

    __slots__ = ("eventhub_listener", "factory")

    def __init__(self, listener: ListenerAPI, factory: Factory) -> None:
        self.eventhub_listener = listener
        self.factory = factory

    def getHost(self) -> IPv4Address | UNIXAddress:
        return from_eventhub(self.eventhub_listener.get_host())

    def stopListening(self) -> Deferred[None]:
        """Close the listening socket (at once: the Deferred has fired already)."""
        self.eventhub_listener.stop_listening()
        return succeed(None)

    def startListening(self) -> None:
        """Listening started in ``listenTCP`` already: nothing to do."""

    def __repr__(self) -> str:
        return f"<ListeningPort {self.getHost()} {type(self.factory).__name__}>"


def ssl_context(contextFactory: object) -> ssl.SSLContext:
    """The ``ssl.SSLContext`` a ``listenSSL`` / ``connectSSL`` context factory stands for.

    Accepted: an ``ssl.SSLContext`` itself, or an object whose ``getContext()``
    returns one. pyOpenSSL contexts (what Twisted's own ``ssl.DefaultOpenSSLContextFactory``
    and ``CertificateOptions`` give) are not supported: ``TypeError`` says so.
    """
    if isinstance(contextFactory, ssl.SSLContext):
        return contextFactory
    get_context = getattr(contextFactory, "getContext", None)
    context = get_context() if callable(get_context) else None
    if isinstance(context, ssl.SSLContext):
        return context
    raise TypeError(
        f"context factory {contextFactory!r}: pass an ssl.SSLContext, or an object whose getContext() "
        "returns one (pyOpenSSL contexts are not supported by eventhub)"
    )


class _HasSeconds(Protocol):
    def seconds(self) -> float: ...


class DelayedCall:
    """What ``callLater`` returns (Twisted's names over a ``TimerHandle``).

    Unlike Twisted's, ``cancel()`` on a call that already ran or was cancelled
    does nothing instead of raising ``AlreadyCalled`` / ``AlreadyCancelled``.
    """

    __slots__ = ("_reactor", "handle")

    def __init__(self, handle: TimerAPI, reactor: _HasSeconds) -> None:
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

    def __init__(self, make_reactor: Callable[[], ReactorAPI] | None = None) -> None:
        self._make_reactor = make_reactor or self._default_reactor
        self._reactor: ReactorAPI | None = None
        self._lock = threading.Lock()
        self._pool_size = DEFAULT_THREAD_POOL_SIZE
        self._backend = "auto"

    def _default_reactor(self) -> ReactorAPI:
        from eventhub.reactor import Reactor

        return Reactor(self._backend, max_threads=self._pool_size)

    def use_backend(self, backend: str) -> None:
        """Choose the backend (``auto``, ``select``, ``poll``, ``epoll``) before the reactor exists."""
        if self._reactor is not None:
            raise UsageError("the reactor exists already: choose its backend before using it")
        self._backend = backend

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
        try:
            listener = self.eventhub_reactor.listen_tcp(port, ServerFactoryBridge(factory), backlog, chosen)
        except ServiceError as error:
            raise CannotListenError(chosen, port, error) from error
        _log_listening("listenTCP", chosen, listener.get_host())
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

    # -- TLS -----------------------------------------------------------------

    def listenSSL(
        self, port: int, factory: Factory, contextFactory: object, backlog: int = 50, interface: str = ""
    ) -> ListeningPort:
        """``listenTCP`` through TLS (``listen_tls``); ``interface=""`` as in ``listenTCP``.

        ``contextFactory`` is an ``ssl.SSLContext`` (server side, its certificate
        loaded) or an object whose ``getContext()`` returns one; pyOpenSSL
        contexts are not supported (``TypeError``).
        """
        context = ssl_context(contextFactory)
        chosen = interface or os.environ.get(INTERFACE_ENV, "")
        try:
            listener = self.eventhub_reactor.listen_tls(
                port, ServerFactoryBridge(factory), context, interface=chosen, backlog=backlog
            )
        except ServiceError as error:
            raise CannotListenError(chosen, port, error) from error
        _log_listening("listenSSL", chosen, listener.get_host())
        return ListeningPort(listener, factory)

    def connectSSL(
        self,
        host: str,
        port: int,
        factory: ClientFactory,
        contextFactory: object,
        timeout: float = 30,
        bindAddress: tuple[str, int] | None = None,
    ) -> TwistedConnector:
        """``connectTCP`` then a TLS handshake (``connect_tls``; the certificate is checked against ``host``).

        ``contextFactory`` as in ``listenSSL`` (client side: an ``ssl.SSLContext``,
        or ``getContext()`` returning one; pyOpenSSL contexts are not supported).
        A failed handshake reaches ``clientConnectionFailed``.
        """
        if bindAddress is not None:
            raise NotImplementedError("connectSSL(bindAddress=...) is not supported by eventhub")
        context = ssl_context(contextFactory)
        bridge = ClientFactoryBridge(factory)
        connector = self.eventhub_reactor.connect_tls(host, port, bridge, context, timeout=timeout)
        return bridge.twisted_connector(connector)

    # -- UNIX ----------------------------------------------------------------

    def listenUNIX(
        self, address: str, factory: Factory, backlog: int = 50, mode: int = 0o666, wantPID: int = 0
    ) -> ListeningPort:
        """Listen on the UNIX socket ``address`` (``listen_unix``); the file is removed on stop.

        ``mode`` defaults to Twisted's ``0o666`` (eventhub's own is ``0o600``).
        ``wantPID`` (Twisted's lock file) is not supported: ``NotImplementedError``.
        """
        if wantPID:
            raise NotImplementedError("listenUNIX(wantPID=...) is not supported by eventhub")
        try:
            listener = self.eventhub_reactor.listen_unix(
                address, ServerFactoryBridge(factory), mode=mode, backlog=backlog
            )
        except ServiceError as error:
            raise CannotListenError(address, 0, error) from error
        log.info("listenUNIX: listening on %s", listener.get_host())
        return ListeningPort(listener, factory)

    def connectUNIX(
        self, address: str, factory: ClientFactory, timeout: float = 30, checkPID: int = 0
    ) -> TwistedConnector:
        """Connect to the UNIX socket ``address`` (``connect_unix``); ``checkPID`` is not supported."""
        if checkPID:
            raise NotImplementedError("connectUNIX(checkPID=...) is not supported by eventhub")
        bridge = ClientFactoryBridge(factory)
        connector = self.eventhub_reactor.connect_unix(address, bridge, timeout)
        return bridge.twisted_connector(connector)

    # -- UDP -----------------------------------------------------------------

    def listenUDP(
        self, port: int, protocol: DatagramProtocol, interface: str = "", maxPacketSize: int = 8192
    ) -> TwistedDatagramPort:
        """Bind ``interface:port`` for ``protocol`` (``listen_udp``); ``""`` as in ``listenTCP``.

        Returns the port, which is also ``protocol.transport``. ``maxPacketSize``
        is accepted and ignored: eventhub reads each datagram whole, at its size.
        """
        chosen = interface or os.environ.get(INTERFACE_ENV, "")
        bridge = DatagramProtocolBridge(protocol)
        try:
            transport = self.eventhub_reactor.listen_udp(port, bridge, chosen)
        except ServiceError as error:
            raise CannotListenError(chosen, port, error) from error
        _log_listening("listenUDP", chosen, transport.get_host())
        return bridge.adopt(transport)

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

    def getDelayedCalls(self) -> list[DelayedCall]:
        """Not tracked by eventhub's reactor: always empty (see docs/migration-twisted.md)."""
        return []

    # -- threads ---------------------------------------------------------------

    def suggestThreadPoolSize(self, size: int) -> None:
        """The most threads ``callInThread`` / ``deferToThread`` use at once (10 by default)."""
        if size < 1:
            raise ValueError(f"thread pool size must be >= 1, got {size}")
        self._pool_size = size
        if self._reactor is not None:
            from eventhub.reactor import Reactor

            if isinstance(self._reactor, Reactor):
                self._reactor.max_threads = size

    def getThreadPool(self) -> ThreadPoolView:
        """Twisted's ``reactor.getThreadPool()``: ``callInThread``, ``max``, ``adjustPoolsize``."""
        return ThreadPoolView(self)

    # -- lifecycle -----------------------------------------------------------

    def run(self, installSignalHandlers: bool = True) -> None:
        """Serve until ``stop()`` or SIGINT/SIGTERM; a reactor runs once, as in Twisted."""
        self.eventhub_reactor.run(install_signal_handlers=bool(installSignalHandlers))

    def stop(self) -> None:
        self.eventhub_reactor.stop()

    def addSystemEventTrigger(
        self, phase: str, eventType: str, callable: Callable[..., object], *args: Any, **kw: Any
    ) -> int:
        """Call ``callable(*args, **kw)`` in ``phase`` (before|during|after) of ``eventType``.

        A shutdown trigger that returns a Deferred delays the end of the
        shutdown until it fires, as in Twisted: it is awaited by a task, and the
        reactor's shutdown waits for its tasks (up to its ``shutdown_timeout``).
        Unlike Twisted, the next phase starts meanwhile (listeners close).
        """
        fn = functools.partial(callable, *args, **kw) if kw else callable
        if eventType == "shutdown":
            fn = functools.partial(self._await_deferred, fn)
        call_args = () if kw else args
        return self.eventhub_reactor.add_system_event_trigger(phase, eventType, fn, *call_args)

    def _await_deferred(self, fn: Callable[..., object], *args: Any) -> None:
        result = fn(*args)
        if isinstance(result, Deferred) and not (result.called and not result.paused):
            self.eventhub_reactor.spawn(_until_fired(result, fn), name=f"shutdown trigger {fn!r}")

    def removeSystemEventTrigger(self, triggerID: int) -> None:
        self.eventhub_reactor.remove_system_event_trigger(triggerID)


def _log_listening(method: str, interface: str, host: object) -> None:
    if interface:
        log.info("%s: listening on %s", method, host)
    else:
        log.warning(
            "%s: listening on all interfaces (%s), as Twisted does for interface=''; "
            "pass interface='127.0.0.1' or set %s=127.0.0.1 for loopback only",
            method,
            host,
            INTERFACE_ENV,
        )


async def _until_fired(d: Deferred[Any], fn: Callable[..., object]) -> None:
    try:
        await d
    except Exception as error:
        log.error("shutdown trigger %r failed: %s", fn, error, exc_info=error)


class ThreadPoolView:
    """What ``getThreadPool()`` returns: the reactor's pool, seen with Twisted's names."""

    __slots__ = ("_reactor",)

    min = 0

    def __init__(self, reactor: TwistedReactor) -> None:
        self._reactor = reactor

    @property
    def max(self) -> int:
        return self._reactor._pool_size

    def callInThread(self, fn: Callable[..., object], *args: Any, **kw: Any) -> None:
        self._reactor.callInThread(fn, *args, **kw)

    def adjustPoolsize(self, minthreads: int | None = None, maxthreads: int | None = None) -> None:
        """Only ``maxthreads`` matters: eventhub starts threads on demand, keeps none in reserve."""
        if maxthreads is not None:
            self._reactor.suggestThreadPoolSize(maxthreads)


reactor = TwistedReactor()
