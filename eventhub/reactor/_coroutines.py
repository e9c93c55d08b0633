"""The reactor methods written once for every reactor, on top of what each one implements.

``ComposedMethods``: TLS, streams and ``serve_tcp`` are ``listen_tcp``/
``connect_tcp``/``spawn`` with a wrapping factory, so the built-in
``Reactor`` and the ``AsyncioReactor`` share one body of each (and one
default for each argument). ``CoroutineMethods`` adds the coroutine methods
of the reactors that run tasks on a ``tasks.Runner``: the real ``Reactor``
and ``eventhub.testing.MemoryReactor`` (so that tasks run the same on real
sockets and under a fake clock); the asyncio reactor runs asyncio tasks instead.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar, cast

from eventhub.reactor._streams import DEFAULT_LIMIT, Stream, StreamHandler, StreamServerFactory, open_stream
from eventhub.reactor._tasks import Future, Runner, Task, TaskAPI, Timeout

if TYPE_CHECKING:
    import ssl

    from eventhub.protocol import ClientFactory, Connector, Factory
    from eventhub.reactor._aio import AsyncioReactor
    from eventhub.reactor._api import ListenerAPI
    from eventhub.reactor._loop import Reactor

__all__ = ["ComposedMethods", "CoroutineMethods"]

T = TypeVar("T")

# tls.HANDSHAKE_TIMEOUT: _tls.py (and ssl) are imported only by a reactor that uses TLS.
_HANDSHAKE_TIMEOUT = 30.0


class ComposedMethods:
    """Mixed into a reactor that has ``listen_tcp``, ``connect_tcp`` and ``spawn``."""

    if TYPE_CHECKING:

        def listen_tcp(
            self, port: int, factory: Factory, backlog: int = 128, interface: str = "127.0.0.1"
        ) -> ListenerAPI: ...

        def connect_tcp(
            self, host: str, port: int, factory: ClientFactory, timeout: float | None = 30
        ) -> Connector: ...

        def spawn(self, coro: Coroutine[Any, Any, T], name: str | None = None) -> TaskAPI[T]: ...

    def _as_reactor(self) -> Reactor | AsyncioReactor:
        # The TLS layer reads into the reactor's buffer and schedules on it: a real reactor only.
        return cast("Reactor | AsyncioReactor", self)

    def listen_tls(
        self,
        port: int,
        factory: Factory,
        context: ssl.SSLContext,
        interface: str = "127.0.0.1",
        backlog: int = 128,
        handshake_timeout: float | None = _HANDSHAKE_TIMEOUT,
    ) -> ListenerAPI:
        """``listen_tcp``, each connection served through TLS (``context``; see ``_tls.py``).

        The protocols ``factory`` builds see plaintext and get ``connection_made``
        once the handshake has completed; a failed handshake closes that
        connection with one log line.
        """
        from eventhub.reactor._tls import TLSServerFactory

        wrapper = TLSServerFactory(self._as_reactor(), factory, context, handshake_timeout)
        return self.listen_tcp(port, wrapper, backlog, interface)

    def connect_tls(
        self,
        host: str,
        port: int,
        factory: ClientFactory,
        context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float = 30,
        handshake_timeout: float | None = _HANDSHAKE_TIMEOUT,
    ) -> Connector:
        """``connect_tcp`` then a TLS handshake (``server_hostname`` defaults to ``host``).

        A handshake that fails (a certificate not verified, say) reaches
        ``factory.client_connection_failed`` as a failed connection does.
        """
        from eventhub.reactor._tls import TLSClientFactory

        name = server_hostname if server_hostname is not None else host
        wrapper = TLSClientFactory(self._as_reactor(), factory, context, name, handshake_timeout)
        return self.connect_tcp(host, port, wrapper, timeout)

    def serve_tcp(
        self,
        handler: StreamHandler,
        port: int,
        interface: str = "127.0.0.1",
        backlog: int = 128,
        limit: int = DEFAULT_LIMIT,
        tls: ssl.SSLContext | None = None,
    ) -> ListenerAPI:
        """Listen on ``interface:port``; each connection runs ``await handler(stream)`` as a task.

        The stream is closed when the handler returns (aborted if it raised,
        with the error logged). Returns the listener (``get_host().port``).
        With ``tls`` (a server context), the handler starts after the handshake.
        """
        factory = StreamServerFactory(self, handler, limit)
        if tls is not None:
            return self.listen_tls(port, factory, tls, interface, backlog)
        return self.listen_tcp(port, factory, backlog, interface)

    async def open_tcp_stream(
        self,
        host: str,
        port: int,
        timeout: float = 30,
        limit: int = DEFAULT_LIMIT,
        tls: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
    ) -> Stream:
        """Connect to ``host:port`` (over TLS with ``tls``, a client context); returns the ``Stream``.

        Raises the connection error, or the TLS one (``ssl.SSLCertVerificationError``, say).
        """
        return await open_stream(self, host, port, timeout, limit, tls, server_hostname)


class CoroutineMethods(ComposedMethods):
    """Mixed into a reactor that sets ``self._runner`` and has ``listen_tcp``/``connect_tcp``."""

    _runner: Runner

    def spawn(self, coro: Coroutine[Any, Any, T], name: str | None = None) -> Task[T]:
        """Run ``coro`` as a task, from the next pass of the loop on; returns the ``Task``."""
        return self._runner.spawn(coro, name)

    def sleep(self, seconds: float, result: T | None = None) -> Future[T | None]:
        """``await reactor.sleep(seconds)``: resume after ``seconds`` (with ``result``)."""
        return self._runner.sleep(seconds, result)

    def timeout(self, seconds: float | None) -> Timeout:
        """``async with reactor.timeout(seconds):`` raise ``TimeoutError`` at the pending await when due."""
        return self._runner.timeout(seconds)

    def current_task(self) -> Task[Any]:
        """The task running now (``UsageError`` outside one)."""
        return self._runner.current_task()

    @property
    def tasks(self) -> frozenset[Task[Any]]:
        """The tasks spawned and not yet finished."""
        return frozenset(self._runner.tasks)
