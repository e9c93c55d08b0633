"""The asyncio backends: ``Reactor(backend="asyncio")`` and ``Reactor(backend="uvloop")``.

    reactor = Reactor(backend="asyncio")     # an AsyncioReactor: the same ReactorAPI
    reactor.listen_tcp(0, factory)
    reactor.run()

Why it is shaped this way
-------------------------

The built-in reactor owns its loop; this one hands every piece of work to an
asyncio loop (asyncio's own, or uvloop's) and keeps only eventhub's meaning on
top: timers are the loop's ``call_at`` handles behind ``cancel``/``reset``/
``active``; TCP and UNIX sockets use the loop's own transports, each wrapped
once in an adapter that is eventhub's ``Transport`` (``_aio_tcp.py``,
``_aio_unix.py``); UDP is read by the loop's datagram transport
(``_aio_udp.py``); TLS is ``_tls.py``'s layer over that TCP adapter, the same
code as on the built-in backends; ``spawn`` makes an
asyncio task, so a coroutine may await ``asyncio.sleep`` or an httpx request
beside ``reactor.sleep`` and ``defer_to_thread`` (eventhub's futures speak
asyncio's future protocol, see ``_tasks.py``). Triggers, the thread pool and the
graceful shutdown are the built-in reactor's, step for step.

Cancellation. A task is cancelled the asyncio way (``task.cancel()``, by
eventhub at shutdown or by ``reactor.timeout`` too). At an asyncio await
(``asyncio.sleep``) the coroutine sees ``asyncio.CancelledError``; at an
eventhub await (``reactor.sleep``, a thread result, a stream read) it sees
``AsyncioCancelled``, which is both ``asyncio.CancelledError`` and
``eventhub.Cancelled``, so that code written for the built-in backends keeps
catching it. Code meant for every backend catches
``(eventhub.Cancelled, asyncio.CancelledError)``, or better uses ``finally``.

Two ways to run:

- owned: ``Reactor(backend=...)`` built where no asyncio loop runs creates a
  loop of its own; ``run()`` serves on it (SIGINT/SIGTERM stop it gracefully)
  and closes it at the end;
- embedded: built inside a running asyncio application, it adopts that loop;
  ``await reactor.serve()`` serves until ``stop()`` and shuts down gracefully,
  leaving the loop and the signals to the application (``run()`` refuses).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from eventhub.errors import PLUGIN_ERRORS, Cancelled, UsageError, reraise_user_interrupt
from eventhub.reactor._aio_tcp import AsyncioConnection, AsyncioConnector, AsyncioListener
from eventhub.reactor._aio_udp import AsyncioUDPPort
from eventhub.reactor._aio_unix import AsyncioUNIXConnector, AsyncioUNIXListener
from eventhub.reactor._api import Inventory
from eventhub.reactor._connector import ConnectorBase
from eventhub.reactor._coroutines import ComposedMethods
from eventhub.reactor._loop import RECV_BUFFER_SIZE
from eventhub.reactor._output import MAX_BUFFERED_OUTPUT, OutputBound
from eventhub.reactor._shutdown import Shutdown, Step
from eventhub.reactor._signals import SignalStops
from eventhub.reactor._tasks import Future, Timeout
from eventhub.reactor._threads import PoolMethods, ThreadPool, ThreadResult
from eventhub.reactor._timers import NO_KWARGS, _check_delay
from eventhub.reactor._triggers import PHASES, SystemTriggers
from eventhub.reactor._udp import UDPPort, listen_udp

if TYPE_CHECKING:
    from eventhub.protocol import ClientFactory, DatagramProtocol, Factory
    from eventhub.reactor._sharing import SharedSockets

__all__ = ["ASYNCIO_BACKENDS", "AsyncioCancelled", "AsyncioReactor", "AsyncioTask", "AsyncioTimer"]

log = logging.getLogger("eventhub.reactor")
tasks_log = logging.getLogger("eventhub.tasks")

T = TypeVar("T")

#: The backend names this module serves (``auto`` never picks them).
ASYNCIO_BACKENDS = ("asyncio", "uvloop")

_HANDLED_SIGNALS: tuple[signal.Signals, ...] = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


class AsyncioCancelled(Cancelled, asyncio.CancelledError):
    """A cancellation at an eventhub await inside an asyncio task: both kinds at once."""


class AsyncioTask(asyncio.Task[T]):
    """An asyncio task with eventhub's ``Task`` API too (``name``)."""

    @property
    def name(self) -> str:
        return self.get_name()


def uvloop_available() -> bool:
    """True when uvloop is installed (``backend="uvloop"`` needs it)."""
    import importlib.util

    return importlib.util.find_spec("uvloop") is not None


def new_loop(backend: str) -> asyncio.AbstractEventLoop:
    """A new event loop for ``backend`` (``asyncio`` or ``uvloop``)."""
    if backend == "uvloop":
        try:
            import uvloop
        except ImportError:
            raise UsageError("reactor backend 'uvloop' needs uvloop: pip install uvloop") from None
        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
        return loop
    if backend == "asyncio":
        return asyncio.new_event_loop()
    raise UsageError(f"{backend!r} is not an asyncio backend; use one of {', '.join(ASYNCIO_BACKENDS)}")


def _run_guarded(fn: Callable[..., object], args: tuple[Any, ...], kw: dict[str, Any]) -> None:
    try:
        fn(*args, **kw)
    except PLUGIN_ERRORS as failure:
        reraise_user_interrupt(failure)
        log.exception("callback %r raised", fn)


class AsyncioTimer:
    """What ``call_later`` returns: ``cancel()``, ``reset(delay)``, ``active()``, ``time``."""

    __slots__ = ("_args", "_fn", "_handle", "_kw", "_reactor", "time")

    def __init__(
        self, reactor: AsyncioReactor, delay: float, fn: Callable[..., object], args: tuple[Any, ...], kw: Any
    ) -> None:
        self._reactor = reactor
        self._fn, self._args, self._kw = fn, args, kw
        self._handle: asyncio.TimerHandle | None = None
        self._schedule(_check_delay(delay))

    def __repr__(self) -> str:
        state = "pending" if self._handle is not None else "done"
        return f"<AsyncioTimer {state} when={self.time:.6f} {self._fn!r}>"

    def _schedule(self, delay: float) -> None:
        loop = self._reactor._loop
        self.time = loop.time() + delay
        self._handle = loop.call_at(self.time, self._fire)
        self._reactor._timers.add(self)

    def _fire(self) -> None:
        self._handle = None
        self._reactor._timers.discard(self)
        _run_guarded(self._fn, self._args, self._kw)

    def active(self) -> bool:
        """True until it has been called or cancelled."""
        return self._handle is not None

    def cancel(self) -> None:
        """Make sure it never runs. Cancelling an inactive timer does nothing."""
        handle, self._handle = self._handle, None
        if handle is not None:
            handle.cancel()
            self._reactor._timers.discard(self)

    def reset(self, delay: float) -> None:
        """Make it due ``delay`` seconds from now instead."""
        if self._handle is None:
            raise UsageError("cannot reset a timer that was already called or cancelled")
        delay = _check_delay(delay)
        self._handle.cancel()
        self._schedule(delay)


class AsyncioTimeout(Timeout):
    """``reactor.timeout`` on an asyncio task: cancels the task at whatever it awaits."""

    __slots__ = ()
    cancelled = asyncio.CancelledError


class AsyncioReactor(SignalStops, Shutdown, ComposedMethods, PoolMethods):
    """The ``ReactorAPI`` on an asyncio (or uvloop) loop; built by ``Reactor(backend="asyncio")``."""

    #: How long stopping waits for connections to flush and tasks to end before aborting them.
    shutdown_timeout: float = 5.0
    #: How long a graceful close waits for the peer's EOF.
    linger_timeout: float = 2.0

    def __init__(
        self,
        backend: str = "asyncio",
        *,
        max_threads: int = 10,
        loop: asyncio.AbstractEventLoop | None = None,
        max_buffered_output: int = MAX_BUFFERED_OUTPUT,
        shared_sockets: SharedSockets | None = None,
    ) -> None:
        if backend not in ASYNCIO_BACKENDS:
            raise UsageError(
                f"{backend!r} is not an asyncio backend; use one of {', '.join(ASYNCIO_BACKENDS)}"
            )
        if loop is None:
            with contextlib.suppress(RuntimeError):
                loop = asyncio.get_running_loop()
        self._owns_loop = loop is None
        self._loop: asyncio.AbstractEventLoop = new_loop(backend) if loop is None else loop
        if self._owns_loop:
            self._loop.set_exception_handler(_log_unretrieved)
        self.backend: str = backend
        # In a worker of `eventhub run --workers N`: where listening sockets come from.
        self.shared_sockets = shared_sockets
        #: The server-wide bound on output buffered toward peers (``_output.py``).
        self.output_bound = OutputBound(self, max_buffered_output, self._recount_output)
        self._recv_view = memoryview(bytearray(RECV_BUFFER_SIZE))  # TLSLayer and UDPPort read into it
        self._max_threads = max_threads
        self._pool: ThreadPool | None = None
        self._thread_results: set[ThreadResult[Any]] = set()
        self._triggers = SystemTriggers()
        self._listeners: set[AsyncioListener | UDPPort] = set()
        self._connections: set[AsyncioConnection] = set()
        self._connectors: set[ConnectorBase] = set()
        self._timers: set[AsyncioTimer] = set()
        self._tasks: set[AsyncioTask[Any]] = set()
        self._running = False
        self._stopping = False
        self._finished = False
        self._stop_requested: asyncio.Future[None] | None = None
        self._change: asyncio.Future[None] | None = None
        self.stopped_by_signal: int | None = None
        self._restore_signals: Callable[[], None] | None = None
        self._signal_handlers: dict[int, Callable[[], object]] = {}
        self._previous_handlers: dict[int, Any] = {}
        self._signals_armed = False
        self._early_signals: list[int] = []

    def __repr__(self) -> str:
        state = "running" if self._running else "finished" if self._finished else "idle"
        return f"<Reactor backend={self.backend} {state}>"

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The asyncio loop this reactor runs on."""
        return self._loop

    def _recount_output(self) -> None:
        """Make ``output_bound.buffered`` exact: each connection looks at its loop buffer again."""
        for conn in self._connections:
            conn._count(conn.get_write_buffer_size())

    # -- time and calls -------------------------------------------------------

    def seconds(self) -> float:
        """The reactor's clock: the loop's ``time()`` (monotonic)."""
        return self._loop.time()

    def call_soon(self, fn: Callable[..., object], /, *args: Any, **kw: Any) -> None:
        """Run ``fn(*args, **kw)`` on the next pass of the loop (reactor thread only)."""
        self._loop.call_soon(_run_guarded, fn, args, kw or NO_KWARGS)

    def call_later(self, delay: float, fn: Callable[..., object], /, *args: Any, **kw: Any) -> AsyncioTimer:
        """Run ``fn(*args, **kw)`` in ``delay`` seconds; returns a handle to cancel/reset it."""
        return AsyncioTimer(self, delay, fn, args, kw or NO_KWARGS)

    def call_from_thread(self, fn: Callable[..., object], /, *args: Any, **kw: Any) -> None:
        """Run ``fn(*args, **kw)`` on the reactor's thread soon; safe from any thread."""
        with contextlib.suppress(RuntimeError):  # the loop is closed: dropped, as on the built-in one
            self._loop.call_soon_threadsafe(_run_guarded, fn, args, kw or NO_KWARGS)

    # -- threads: PoolMethods (_threads.py) ------------------------------------

    # -- descriptors (the loop's own) ------------------------------------------

    def add_reader(self, fd: int, handler: Callable[[], None]) -> None:
        """Call ``handler()`` whenever ``fd`` is readable."""
        self._loop.add_reader(fd, handler)

    def add_writer(self, fd: int, handler: Callable[[], None]) -> None:
        """Call ``handler()`` whenever ``fd`` is writable."""
        self._loop.add_writer(fd, handler)

    def remove_reader(self, fd: int) -> None:
        self._loop.remove_reader(fd)

    def remove_writer(self, fd: int) -> None:
        self._loop.remove_writer(fd)

    # -- TCP ------------------------------------------------------------------

    def listen_tcp(
        self,
        port: int,
        factory: Factory,
        backlog: int = 128,
        interface: str = "127.0.0.1",
        *,
        socket_buffer: int = 0,
    ) -> AsyncioListener:
        """Listen on ``interface:port`` (port 0: any free one, see ``get_host()``)."""
        return AsyncioListener(self, port, factory, backlog, interface, socket_buffer)

    # -- UNIX sockets (_aio_unix.py), UDP (_aio_udp.py); TLS: coroutines.ComposedMethods --
    #
    # TLS is eventhub's TLSLayer (ssl.MemoryBIO, as asyncio's own sslproto is)
    # over the loop's TCP transport, not the loop's ssl=: one owner for what
    # TLS means here (handshake timeout, truncation as SSLEOFError, STARTTLS,
    # renegotiation refused, get_extra), the same on every backend.

    def listen_unix(
        self, path: str, factory: Factory, mode: int = 0o600, backlog: int = 128
    ) -> AsyncioUNIXListener:
        """Listen on the UNIX socket ``path`` (file mode ``mode``; ``"\\0name"``: abstract)."""
        return AsyncioUNIXListener(self, path, factory, backlog, mode)

    def connect_unix(
        self, path: str, factory: ClientFactory, timeout: float | None = 30
    ) -> AsyncioUNIXConnector:
        """Connect to the UNIX socket ``path``; the outcome reaches ``factory`` as with ``connect_tcp``."""
        connector = AsyncioUNIXConnector(self, path, factory, timeout)
        connector.connect()
        return connector

    def listen_udp(
        self, port: int, protocol: DatagramProtocol, interface: str = "127.0.0.1", reuse_address: bool = False
    ) -> UDPPort:
        """Bind a UDP port on ``interface`` and serve ``protocol`` (see ``_udp.py``, ``_aio_udp.py``)."""
        return listen_udp(self, port, protocol, interface, reuse_address, AsyncioUDPPort)

    def connect_tcp(
        self, host: str, port: int, factory: ClientFactory, timeout: float | None = 30
    ) -> AsyncioConnector:
        """Connect to ``host:port``; failures reach ``factory.client_connection_failed``."""
        connector = AsyncioConnector(self, host, port, factory, timeout)
        connector.connect()
        return connector

    # -- coroutines -----------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, T], name: str | None = None) -> AsyncioTask[T]:
        """Run ``coro`` as an asyncio task on the loop; returns it."""
        if not isinstance(coro, Coroutine):
            raise TypeError(f"spawn() takes a coroutine (call the async function), not {type(coro).__name__}")
        name = name or getattr(coro, "__qualname__", None) or repr(coro)
        task: AsyncioTask[T] = AsyncioTask(coro, loop=self._loop, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: AsyncioTask[Any]) -> None:
        self._tasks.discard(task)
        self._changed()

    def sleep(self, seconds: float, result: T | None = None) -> Future[T | None]:
        """``await reactor.sleep(seconds)``: a future completing after ``seconds`` (with ``result``)."""
        timer: AsyncioTimer | None = None

        def cancel_timer() -> None:
            if timer is not None:
                timer.cancel()

        future: Future[T | None] = Future(cancel_timer)
        timer = self.call_later(max(0.0, seconds), _set_if_pending, future, result)
        return future

    def timeout(self, seconds: float | None) -> AsyncioTimeout:
        """``async with reactor.timeout(seconds):`` ``TimeoutError`` at the pending await when due."""
        return AsyncioTimeout(self.current_task, self.call_later, seconds)

    def current_task(self) -> AsyncioTask[Any]:
        """The task running now (``UsageError`` outside one)."""
        task = asyncio.current_task(self._loop) if self._loop.is_running() else None
        if task is None:
            raise UsageError("not inside a task: this must be awaited from a coroutine the reactor runs")
        return task  # type: ignore[return-value]  # a host's own task too: the same API but ``name``

    @property
    def tasks(self) -> frozenset[AsyncioTask[Any]]:
        """The tasks spawned and not yet finished."""
        return frozenset(task for task in self._tasks if not task.done())

    # -- system event triggers: _shutdown.Shutdown ---------------------------

    async def _grace(self, futures: list[Any]) -> None:
        """Wait until ``futures`` (what "before shutdown" triggers returned) are done: bounded."""
        if not futures:
            return
        done: asyncio.Future[None] = self._loop.create_future()
        remaining = len(futures)

        def one_done(_: object) -> None:
            nonlocal remaining
            remaining -= 1
            if not remaining:
                _set_if_pending(done, None)

        for future in futures:
            future.add_done_callback(one_done)
        timer = self._loop.call_later(self.shutdown_timeout, _set_if_pending, done, None)
        await done
        timer.cancel()
        if remaining:
            log.warning("the shutdown's grace period (%.1fs) expired", self.shutdown_timeout)

    # -- running --------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True while serving (startup triggers included)."""
        return self._running

    def inventory(self) -> Inventory:
        """What the reactor holds now: what a finished test should have closed."""
        return Inventory(
            listeners=tuple(self._listeners),
            connections=tuple(self._connections),
            connectors=tuple(self._connectors),
            timers=tuple(t for t in self._timers if t.active()),
            calls=(),  # the loop's own ready queue is not inspectable
            tasks=tuple(self.tasks),
        )

    def run(self, install_signal_handlers: bool = True) -> None:
        """Serve on the reactor's own loop until ``stop()``; then shut down and close everything."""
        if not self._owns_loop:
            raise UsageError("this reactor runs on the application's asyncio loop: await reactor.serve()")
        self._start()
        try:
            if install_signal_handlers:
                self.install_signal_handlers()
            self._loop.run_until_complete(self._serve_started())
        finally:
            self._running = False
            self.close()

    async def serve(self) -> None:
        """Serve until ``stop()``, then shut down gracefully; the loop stays the application's."""
        self._start()
        try:
            await self._serve_started()
        finally:
            self._running = False
            self.close()

    def _start(self) -> None:
        if self._running:
            raise UsageError("the reactor is already running")
        if self._finished:
            raise UsageError("a reactor runs once; this one has finished, create a new one")
        self._running = True
        self._stop_requested = self._loop.create_future()
        for phase in PHASES:
            self._fire(phase, "startup")

    async def _serve_started(self) -> None:
        self._arm_signals()
        try:
            if not self._stopping:
                assert self._stop_requested is not None
                await self._stop_requested
        finally:  # cancelled by the host application: shut down all the same
            self._stopping = True
            await self._shutdown()

    def stop(self, drain: float = 0.0) -> None:
        """Stop serving; ``run()``/``serve()`` then shuts down gracefully and returns.

        ``drain`` is accepted as ``ReactorAPI`` has it (a worker replaced by a
        rolling restart passes it) and not honoured yet: connections flush and close.
        """
        if not self._running:
            raise UsageError("the reactor is not running")
        self._stopping = True
        if self._stop_requested is not None and not self._stop_requested.done():
            self._stop_requested.set_result(None)

    def _changed(self) -> None:
        change, self._change = self._change, None
        if change is not None and not change.done():
            change.set_result(None)

    async def _shutdown(self) -> None:
        for step, waits in self._shutdown_steps():
            if step is Step.GRACE:
                await self._grace([w for w in waits if isinstance(w, Future | asyncio.Future)])
            elif step is Step.CLOSE:
                await self._wait_closed()
            # Step.DRAIN: stop(drain=...) is not honoured yet (see stop)

    async def _wait_closed(self) -> None:
        loop = self._loop
        deadline = loop.time() + self.shutdown_timeout
        while self._connections or self.tasks:
            if loop.time() >= deadline:
                self._shutdown_timed_out()
                break
            change = self._change = loop.create_future()
            timer = loop.call_at(deadline, _set_if_pending, change, None)
            await change
            timer.cancel()
        await self._settle()  # connection_lost of the last ones to close

    def _abandon_tasks(self) -> None:
        """End the tasks that ignored cancellation: close their coroutines (``finally`` runs)."""
        current = asyncio.current_task(self._loop) if self._loop.is_running() else None
        for task in list(self._tasks):
            if task.done() or task is current:
                continue
            try:
                task.get_coro().close()
            except RuntimeError:  # it awaited again inside finally: nothing more can be done
                log.warning("task %r ignored being closed", task.get_name())
            asyncio.Future.cancel(task)  # the Future's own cancel: the coroutine is gone, the task is done
            self._tasks.discard(task)

    async def _settle(self, passes: int = 100) -> None:
        """Let the loop deliver what was just closed or cancelled (a few passes, bounded)."""
        for _ in range(passes):
            await asyncio.sleep(0)
            if not self._connections and not self.tasks:
                break
        await asyncio.sleep(0)

    # -- signals --------------------------------------------------------------
    #
    # Two steps, because a loop sees signals only while it runs (uvloop sets its
    # wakeup descriptor in run_forever): until then a plain Python handler
    # records the signal; once serving, the loop's own add_signal_handler takes
    # over and the recorded ones are handled first. So a SIGTERM between a
    # service announcing itself and run() still stops the reactor.

    def install_signal_handlers(self) -> bool:
        """Make SIGINT and SIGTERM stop this reactor gracefully (own loop, main thread only)."""
        if self._restore_signals is not None:
            return True
        if not self._owns_loop or threading.current_thread() is not threading.main_thread():
            return False  # an embedded reactor leaves the signals to its application
        self._previous_handlers = {}
        for sig in _HANDLED_SIGNALS:
            self._watch_signal(sig)
        self._restore_signals = self._unwatch_signals
        return True

    def _watch_signal(self, signum: int) -> None:
        self._previous_handlers[signum] = signal.getsignal(signum)
        if self._signals_armed:
            self._loop.add_signal_handler(signum, self._handle_signal, signum)
        else:
            signal.signal(signum, self._early_signal)

    def _early_signal(self, signum: int, frame: object) -> None:
        self._early_signals.append(signum)  # between two bytecodes: only record it

    def _arm_signals(self) -> None:
        """On the running loop: hand the signals to it; handle those that came before."""
        if self._restore_signals is None or self._signals_armed:
            return
        self._signals_armed = True
        for signum in self._previous_handlers:
            self._loop.add_signal_handler(signum, self._handle_signal, signum)
        early, self._early_signals = self._early_signals, []
        for signum in early:
            self._handle_signal(signum)

    def _unwatch_signals(self) -> None:
        for signum, previous in self._previous_handlers.items():
            if self._signals_armed and not self._loop.is_closed():
                self._loop.remove_signal_handler(signum)
            signal.signal(signum, previous)
        self._previous_handlers = {}
        self._signals_armed = False

    def add_signal_handler(self, signum: int, fn: Callable[[], object]) -> None:
        """Call ``fn()`` on the loop when ``signum`` arrives while serving (not SIGINT/SIGTERM)."""
        if signum in (signal.SIGINT, signal.SIGTERM):
            raise UsageError(f"{signal.Signals(signum).name} stops the reactor; it takes no other handler")
        self._signal_handlers[signum] = fn
        if self._restore_signals is not None and signum not in self._previous_handlers:
            self._watch_signal(signum)

    # -- closing --------------------------------------------------------------

    def close(self) -> None:
        """Release what the reactor holds (its own loop too); ``run()``/``serve()`` do this themselves."""
        if self._finished:
            return
        self._finished = True
        self._restore_signal_handlers()
        self._close_network()
        for task in list(self._tasks):
            task.cancel()
        loop = self._loop
        owned_idle = self._owns_loop and not loop.is_closed() and not loop.is_running()
        if owned_idle:
            loop.run_until_complete(self._settle())  # connection_lost, the cancelled tasks' last steps
        self._abandon_tasks()
        for timer in list(self._timers):
            timer.cancel()
        if owned_idle:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
        if self._pool is not None:
            self._pool.stop()


def _log_unretrieved(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """The owned loop's exception handler: a failed task nobody awaited is logged as eventhub does."""
    task, error = context.get("future"), context.get("exception")
    if (
        isinstance(task, AsyncioTask)
        and error is not None
        and "never retrieved" in context.get("message", "")
    ):
        tasks_log.error(
            "task %r failed and nobody retrieved its exception: %s: %s",
            task.get_name(),
            type(error).__name__,
            error,
            exc_info=error,
        )
    else:
        loop.default_exception_handler(context)


def _set_if_pending(future: Any, value: Any) -> None:
    if not future.done():
        future.set_result(value)
