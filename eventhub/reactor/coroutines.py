"""The coroutine methods every reactor has: ``spawn``, ``sleep``, ``timeout``, streams.

One implementation, shared by the real ``Reactor`` and ``eventhub.testing.MemoryReactor``
(so that tasks run the same on real sockets and under a fake clock): both
inherit ``CoroutineMethods`` and own a ``tasks.Runner`` built on their own
``call_soon``/``call_later``.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from eventhub.reactor.streams import DEFAULT_LIMIT, Stream, StreamHandler, StreamServerFactory, open_stream
from eventhub.reactor.tasks import Future, Runner, Task, Timeout

if TYPE_CHECKING:
    import ssl

    from eventhub.protocol import ClientFactory, Connector, Factory
    from eventhub.reactor.api import ListenerAPI

__all__ = ["CoroutineMethods"]

T = TypeVar("T")


class CoroutineMethods:
    """Mixed into a reactor that sets ``self._runner`` and has ``listen_tcp``/``connect_tcp``."""

    _runner: Runner

    if TYPE_CHECKING:

        def listen_tcp(
            self, port: int, factory: Factory, backlog: int = 128, interface: str = "127.0.0.1"
        ) -> ListenerAPI: ...

        def connect_tcp(
            self, host: str, port: int, factory: ClientFactory, timeout: float | None = 30
        ) -> Connector: ...

        def listen_tls(
            self,
            port: int,
            factory: Factory,
            context: ssl.SSLContext,
            interface: str = "127.0.0.1",
            backlog: int = 128,
            handshake_timeout: float | None = 30.0,
        ) -> ListenerAPI: ...

        def connect_tls(
            self,
            host: str,
            port: int,
            factory: ClientFactory,
            context: ssl.SSLContext,
            server_hostname: str | None = None,
            timeout: float = 30,
            handshake_timeout: float | None = 30.0,
        ) -> Connector: ...

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
        factory = StreamServerFactory(self._runner, handler, limit)
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
