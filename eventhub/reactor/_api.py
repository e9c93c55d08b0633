"""``ReactorAPI``: what services may ask of a reactor, as a ``typing.Protocol``.

Code that is handed a reactor (a plugin's service, a factory that keeps
timers, the Twisted compatibility layer) should annotate it as ``ReactorAPI``
rather than ``Reactor``: the built-in ``eventhub.reactor.Reactor`` and the test
double ``eventhub.testing.MemoryReactor`` both satisfy it, so the same code
runs on real sockets and in fake time. A service that needs less (only
``call_later``, say) may still declare a narrower Protocol of its own; anything
it lists must match the signatures here.

    from eventhub.reactor import ReactorAPI

    def start(reactor: ReactorAPI) -> None:
        reactor.call_later(1.0, tick)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

if TYPE_CHECKING:
    import ssl
    from collections.abc import Coroutine

    from eventhub.protocol import (
        Address,
        ClientFactory,
        Connector,
        DatagramProtocol,
        DatagramTransport,
        Factory,
    )
    from eventhub.reactor._streams import Stream, StreamHandler
    from eventhub.reactor._tasks import Future, TaskAPI, Timeout
    from eventhub.reactor._threads import ThreadResult

__all__ = ["Inventory", "ListenerAPI", "ReactorAPI", "TimerAPI"]

T = TypeVar("T")


@runtime_checkable
class ListenerAPI(Protocol):
    """What ``ReactorAPI.listen_tcp`` returns: the bound address, and a way to stop."""

    def get_host(self) -> Address:
        """The address listened on (``.host``, ``.port``: the real port when 0 was asked)."""
        ...

    def stop_listening(self) -> None:
        """Close the listening socket; connections already accepted stay up."""
        ...


@runtime_checkable
class TimerAPI(Protocol):
    """What ``call_later`` returns (``TimerHandle``, or ``AsyncioTimer`` on the asyncio backends)."""

    @property
    def time(self) -> float:
        """When it is due, on the reactor's ``seconds()`` clock."""
        ...

    def active(self) -> bool:
        """True until it has been called or cancelled."""
        ...

    def cancel(self) -> None:
        """Make sure it never runs; does nothing once inactive."""
        ...

    def reset(self, delay: float) -> None:
        """Make it due ``delay`` seconds from now instead."""
        ...


@dataclass(frozen=True)
class Inventory:
    """What a reactor holds at one moment (``reactor.inventory()``): the leak-checking fixture reads it.

    Each field is a tuple of the objects themselves (their ``repr`` names them).
    ``calls`` are callbacks queued and not yet run (empty on the asyncio
    backends, whose ready queue is the loop's own).
    """

    listeners: tuple[object, ...] = ()
    connections: tuple[object, ...] = ()
    connectors: tuple[object, ...] = ()
    timers: tuple[object, ...] = ()
    calls: tuple[object, ...] = ()
    tasks: tuple[object, ...] = ()


@runtime_checkable
class ReactorAPI(Protocol):
    """The reactor as services see it (``Reactor`` and ``MemoryReactor`` both are one).

    Every method is to be called from the reactor's thread, except
    ``call_from_thread``; see ``eventhub.reactor.Reactor`` for each one's
    semantics.
    """

    @property
    def running(self) -> bool:
        """True while ``run()`` is serving."""
        ...

    def seconds(self) -> float:
        """The reactor's clock (monotonic seconds; what timers' ``time`` is on)."""
        ...

    def call_soon(self, fn: Callable[..., object], /, *args: Any, **kw: Any) -> None:
        """Run ``fn(*args, **kw)`` on the next pass of the loop."""
        ...

    def call_later(self, delay: float, fn: Callable[..., object], /, *args: Any, **kw: Any) -> TimerAPI:
        """Run ``fn(*args, **kw)`` in ``delay`` seconds; the handle cancels or resets it."""
        ...

    def call_from_thread(self, fn: Callable[..., object], /, *args: Any, **kw: Any) -> None:
        """Run ``fn(*args, **kw)`` on the reactor's thread soon; safe from any thread."""
        ...

    def call_in_thread(self, fn: Callable[..., object], /, *args: Any, **kw: Any) -> None:
        """Run ``fn(*args, **kw)`` on the reactor's thread pool."""
        ...

    def defer_to_thread(self, fn: Callable[..., T], /, *args: Any, **kw: Any) -> ThreadResult[T]:
        """Run ``fn`` on the thread pool; its outcome comes back on the reactor's thread."""
        ...

    def listen_tcp(
        self,
        port: int,
        factory: Factory,
        backlog: int = 128,
        interface: str = "127.0.0.1",
        *,
        socket_buffer: int = 0,
    ) -> ListenerAPI:
        """Listen on ``interface:port`` (port 0: any free one, read it from ``get_host()``)."""
        ...

    def connect_tcp(
        self, host: str, port: int, factory: ClientFactory, timeout: float | None = 30
    ) -> Connector:
        """Connect to ``host:port`` (each resolved address in turn); the outcome reaches ``factory``.

        ``timeout`` covers all the attempts; ``None`` waits as long as the system does.
        """
        ...

    def listen_tls(
        self,
        port: int,
        factory: Factory,
        context: ssl.SSLContext,
        interface: str = "127.0.0.1",
        backlog: int = 128,
        handshake_timeout: float | None = 30.0,
    ) -> ListenerAPI:
        """``listen_tcp`` with every connection served through TLS (see ``eventhub.reactor._tls``)."""
        ...

    def connect_tls(
        self,
        host: str,
        port: int,
        factory: ClientFactory,
        context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float = 30,
        handshake_timeout: float | None = 30.0,
    ) -> Connector:
        """``connect_tcp`` then a TLS handshake; a failed handshake is a failed connection."""
        ...

    def listen_udp(
        self, port: int, protocol: DatagramProtocol, interface: str = "127.0.0.1", reuse_address: bool = False
    ) -> DatagramTransport:
        """Bind a UDP port and serve ``protocol`` (see ``eventhub.reactor._udp``)."""
        ...

    def listen_unix(self, path: str, factory: Factory, mode: int = 0o600, backlog: int = 128) -> ListenerAPI:
        """Listen on the UNIX socket ``path`` (``"\\0name"``: a Linux abstract name)."""
        ...

    def connect_unix(self, path: str, factory: ClientFactory, timeout: float | None = 30) -> Connector:
        """Connect to the UNIX socket ``path``; the outcome reaches ``factory``."""
        ...

    def spawn(self, coro: Coroutine[Any, Any, T], name: str | None = None) -> TaskAPI[T]:
        """Run ``coro`` as a task (see ``eventhub.reactor._tasks``)."""
        ...

    def sleep(self, seconds: float, result: T | None = None) -> Future[T | None]:
        """``await reactor.sleep(seconds)``."""
        ...

    def timeout(self, seconds: float | None) -> Timeout:
        """``async with reactor.timeout(seconds):`` ``TimeoutError`` at the pending await when due."""
        ...

    def current_task(self) -> TaskAPI[Any]:
        """The task running now."""
        ...

    @property
    def tasks(self) -> frozenset[TaskAPI[Any]]:
        """The tasks spawned and not yet finished."""
        ...

    def serve_tcp(
        self,
        handler: StreamHandler,
        port: int,
        interface: str = "127.0.0.1",
        backlog: int = 128,
        limit: int = ...,
        tls: ssl.SSLContext | None = None,
    ) -> ListenerAPI:
        """Serve ``await handler(stream)`` per connection (see ``eventhub.reactor._streams``)."""
        ...

    async def open_tcp_stream(
        self,
        host: str,
        port: int,
        timeout: float = 30,
        limit: int = ...,
        tls: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
    ) -> Stream:
        """Connect to ``host:port`` (TLS with ``tls``) and return the ``Stream``."""
        ...

    def add_reader(self, fd: int, handler: Callable[[], None]) -> None:
        """Call ``handler()`` whenever the descriptor ``fd`` is readable."""
        ...

    def remove_reader(self, fd: int) -> None:
        """Stop watching ``fd`` for reading."""
        ...

    def add_signal_handler(self, signum: int, fn: Callable[[], object]) -> None:
        """Call ``fn()`` on the loop when ``signum`` arrives while serving (not SIGINT/SIGTERM)."""
        ...

    @property
    def thread_results(self) -> frozenset[ThreadResult[Any]]:
        """The ``defer_to_thread`` calls whose outcome has not come back yet."""
        ...

    def install_signal_handlers(self) -> bool:
        """Make SIGINT/SIGTERM stop this reactor gracefully from now on (before ``run()``)."""
        ...

    def run(self, install_signal_handlers: bool = True) -> None:
        """Serve until ``stop()``, then shut down gracefully."""
        ...

    def stop(self, drain: float = 0.0) -> None:
        """Stop serving after the current pass (``drain``: let connections end by themselves first)."""
        ...

    def close(self) -> None:
        """Release what a reactor that never ran holds (``run()`` does this on its way out)."""
        ...

    def add_system_event_trigger(
        self, phase: str, event: str, fn: Callable[..., object], /, *args: Any
    ) -> int:
        """Call ``fn(*args)`` in ``phase`` (before|during|after) of ``event`` (startup|shutdown)."""
        ...

    def remove_system_event_trigger(self, trigger_id: int) -> None:
        """Forget a trigger by the id ``add_system_event_trigger`` returned."""
        ...


if TYPE_CHECKING:
    # Checked by mypy, never run: both reactors must keep satisfying the Protocol.
    from eventhub.reactor._aio import AsyncioReactor
    from eventhub.reactor._loop import Reactor
    from eventhub.testing import MemoryReactor

    def _conforms(real: Reactor, fake: MemoryReactor) -> tuple[ReactorAPI, ReactorAPI]:
        return real, fake

    def _conforms_too(aio: AsyncioReactor) -> ReactorAPI:
        return aio
