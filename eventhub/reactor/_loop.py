"""The Reactor: one thread, one poller, one ready queue, one heap of timers.

Why it is shaped this way
-------------------------

One pass of the loop (``_run_until``) does four things, in order:

1. Pick the poll timeout: 0 if callbacks are already waiting in the ready
   queue, else the time until the earliest timer (at most ``MAX_POLL_TIMEOUT``),
   else forever.
2. Ask the poller which descriptors are ready and call each one's handler
   (a bound method of a Listener, Connection, Connector or the waker) straight
   from a dict ``fd -> handler``: the poller's ``dispatch`` does both, walking
   its kernel call's result in its own shape (see _pollers.py). This is
   the hot path of a server: no handle objects, no queueing, no per-event
   allocation beyond what the kernel interface itself returns. The handlers
   call protocol code and own its error policy (an exception closes that
   connection only).
3. Move the timers that are due (if any: the heap is not touched otherwise)
   into the ready queue.
4. Run the callbacks that were in the ready queue when this step began, and no
   more. A callback that schedules another (``call_soon`` in a loop, a
   protocol that keeps re-arming itself) gets it run on the *next* pass, after
   the poller has been asked again, so nothing can starve I/O or timers.

Every piece of user code therefore runs from this one function, on this one
thread: I/O handlers in step 2, everything else (``call_soon``,
``call_later``, ``call_from_thread``, thread results, ``connection_lost``,
signal-initiated stops) from the ready queue in step 4. There is one place to
look for ordering, one place to catch what escapes, and nothing re-enters
protocol code from inside another protocol callback: a transport that fails in
the middle of ``write()`` closes its socket at once but *schedules*
``connection_lost`` rather than calling it under the caller's feet.

Other threads reach the loop only through ``call_from_thread``: it appends to
the (thread-safe) ready deque and writes a byte to the waker socket, which the
poller watches, so a loop blocked in ``poll`` wakes up. Signals use the same
waker (``signal.set_wakeup_fd``); their Python handler only queues a stop.

Stopping is graceful: ``stop()`` ends the loop after the current pass, then
``_shutdown`` fires the shutdown triggers, closes the listeners, asks every
connection to flush and close, and keeps iterating until they have or
``shutdown_timeout`` passes (the rest are aborted), so ``connection_lost``
reaches every protocol before ``run()`` returns.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from eventhub.errors import PLUGIN_ERRORS, UsageError, reraise_user_interrupt
from eventhub.reactor._connector import Connector, ConnectorBase
from eventhub.reactor._coroutines import CoroutineMethods
from eventhub.reactor._listener import Listener
from eventhub.reactor._output import MAX_BUFFERED_OUTPUT, OutputBound
from eventhub.reactor._pollers import READ, WRITE, Poller, PollerFactory, make_poller
from eventhub.reactor._shutdown import Shutdown, Step
from eventhub.reactor._signals import SignalStops
from eventhub.reactor._tasks import Future, Runner
from eventhub.reactor._tcp import Connection
from eventhub.reactor._threads import PoolMethods, ThreadPool, ThreadResult
from eventhub.reactor._timers import NO_KWARGS, TimerHandle, TimerQueue
from eventhub.reactor._triggers import PHASES, SystemTriggers

if TYPE_CHECKING:
    from types import FrameType

    from eventhub.protocol import ClientFactory, DatagramProtocol, Factory
    from eventhub.reactor._api import Inventory
    from eventhub.reactor._sharing import SharedSockets
    from eventhub.reactor._udp import UDPPort

__all__ = ["Reactor"]

log = logging.getLogger("eventhub.reactor")

T = TypeVar("T")

# Every connection of a reactor reads into this one buffer (see tcp.Connection).
RECV_BUFFER_SIZE = 256 * 1024

# The longest single wait in the poller. epoll and poll take a C int of
# milliseconds (24.8 days) and select a time_t: a timer due later than that
# raised OverflowError out of run(). Waking once an hour to recompute the
# timeout costs nothing, and the loop does recompute it on every pass.
MAX_POLL_TIMEOUT = 3600.0

# Caught while serving: SIGINT and SIGTERM stop the reactor; SIGHUP goes to its
# handler (``add_signal_handler``) or is logged and ignored.
_HANDLED_SIGNALS: tuple[signal.Signals, ...] = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)

_Call = tuple[Callable[..., object], tuple[Any, ...], dict[str, Any]]


class _Waker:
    """A socket pair: writing a byte to one end makes the other readable, waking ``poll``."""

    __slots__ = ("pending", "rsock", "wsock")

    def __init__(self) -> None:
        self.rsock, self.wsock = socket.socketpair()
        self.rsock.setblocking(False)
        self.wsock.setblocking(False)
        # Set by wake(), cleared by drain(): saves a syscall per call_from_thread
        # when the loop is already due to wake. True only while a byte is unread.
        self.pending = False

    def wake(self) -> None:
        if not self.pending:
            self.pending = True
            with contextlib.suppress(OSError):  # full (the loop wakes anyway) or closing
                self.wsock.send(b"\0")

    def drain(self) -> None:
        # Read first, clear after: a wake() in between then sends a spare byte
        # (harmless) instead of finding ``pending`` set with the pipe empty (a hang).
        with contextlib.suppress(OSError):
            while self.rsock.recv(4096):
                pass
        self.pending = False

    def close(self) -> None:
        self.rsock.close()
        self.wsock.close()


class Reactor(SignalStops, Shutdown, CoroutineMethods, PoolMethods):
    """An event loop over select, poll or epoll.

    ``Reactor(backend="auto")``: ``auto`` is epoll on Linux, else poll, else
    select; ``eventhub.reactor.available_backends()`` lists the others.
    ``backend`` may also be a factory returning a ``Poller`` (_pollers.py).
    ``backend="asyncio"`` or ``"uvloop"`` builds an ``AsyncioReactor`` instead
    (``eventhub.reactor._aio``): the same API over an asyncio loop.
    A reactor runs once: ``run()`` serves until ``stop()`` (or SIGINT/SIGTERM)
    and then releases everything it holds.

    ``max_buffered_output``: bytes buffered toward all peers (128 MiB by
    default) past which the connections with the most unsent data are closed,
    biggest first (``output_bound``, see ``eventhub.reactor._output``).

    Not thread-safe, by design: call its methods from the thread running it
    (or before ``run()``), except ``call_from_thread``, which any thread may
    use to get the rest called there.
    """

    #: How long stopping waits for connections to flush before aborting them.
    shutdown_timeout: float = 5.0
    #: How long a graceful close waits for the peer's EOF (see ``tcp.Connection._linger``).
    linger_timeout: float = 2.0

    def __new__(cls, backend: str | PollerFactory = "auto", *args: Any, **kw: Any) -> Reactor:
        if backend in ("asyncio", "uvloop"):  # aio.ASYNCIO_BACKENDS, without importing asyncio here
            from eventhub.reactor._aio import AsyncioReactor

            return cast(Reactor, AsyncioReactor(backend, *args, **kw))
        return super().__new__(cls)

    def __init__(
        self,
        backend: str | PollerFactory = "auto",
        *,
        max_threads: int = 10,
        max_buffered_output: int = MAX_BUFFERED_OUTPUT,
        shared_sockets: SharedSockets | None = None,
    ) -> None:
        self._poller: Poller = make_poller(backend)
        self.backend: str = self._poller.name
        self._dispatch = self._poller.dispatch
        self._readers: dict[int, Callable[[], None]] = {}
        self._writers: dict[int, Callable[[], None]] = {}
        self._ready: deque[_Call] = deque()
        self._timers = TimerQueue(time.monotonic)
        self._waker = _Waker()
        self._recv_view = memoryview(bytearray(RECV_BUFFER_SIZE))
        self._max_threads = max_threads
        self._pool: ThreadPool | None = None
        self._triggers = SystemTriggers()
        self._listeners: set[Listener | UDPPort] = set()
        self._connections: set[Connection] = set()
        #: Bytes buffered toward all peers, and the bound past which the biggest are closed.
        self.output_bound = OutputBound(self, max_buffered_output)
        self._connectors: set[ConnectorBase] = set()
        self._running = False
        self._stopping = False
        self._timed_out = False
        self._drain = 0.0
        self._finished = False
        self.stopped_by_signal: int | None = None
        self._restore_signals: Callable[[], None] | None = None
        self._signal_handlers: dict[int, Callable[[], object]] = {}
        self._runner = Runner(self, self.backend)
        self._thread_results: set[ThreadResult[Any]] = set()
        #: Where listening sockets come from in a worker of ``eventhub run --workers N``.
        self.shared_sockets = shared_sockets
        self.add_reader(self._waker.rsock.fileno(), self._waker.drain)

    def __repr__(self) -> str:
        state = "running" if self._running else "finished" if self._finished else "idle"
        return f"<Reactor backend={self.backend} {state}>"

    # -- time and calls -------------------------------------------------------

    @staticmethod
    def seconds() -> float:
        """The reactor's clock: ``time.monotonic()``."""
        return time.monotonic()

    def call_soon(self, fn: Callable[..., object], /, *args: Any, **kw: Any) -> None:
        """Run ``fn(*args, **kw)`` on the next pass of the loop (reactor thread only)."""
        self._ready.append((fn, args, kw or NO_KWARGS))  # the empty one is not kept per call

    def call_later(self, delay: float, fn: Callable[..., object], /, *args: Any, **kw: Any) -> TimerHandle:
        """Run ``fn(*args, **kw)`` in ``delay`` seconds; returns a handle to cancel/reset it."""
        return self._timers.schedule(delay, fn, args, kw)

    def call_from_thread(self, fn: Callable[..., object], /, *args: Any, **kw: Any) -> None:
        """Run ``fn(*args, **kw)`` on the reactor's thread soon; safe from any thread."""
        self._ready.append((fn, args, kw or NO_KWARGS))  # deque.append is atomic
        self._waker.wake()

    # -- threads: PoolMethods (_threads.py) ------------------------------------

    # -- descriptors ----------------------------------------------------------

    def add_reader(self, fd: int, handler: Callable[[], None]) -> None:
        """Call ``handler()`` whenever ``fd`` is readable (or in error)."""
        if fd not in self._readers:
            self._watch(fd, READ | (WRITE if fd in self._writers else 0))
        self._readers[fd] = handler

    def add_writer(self, fd: int, handler: Callable[[], None]) -> None:
        """Call ``handler()`` whenever ``fd`` is writable (or in error)."""
        if fd not in self._writers:
            self._watch(fd, WRITE | (READ if fd in self._readers else 0))
        self._writers[fd] = handler

    def remove_reader(self, fd: int) -> None:
        if self._readers.pop(fd, None) is not None:
            self._unwatch(fd, WRITE if fd in self._writers else 0)

    def remove_writer(self, fd: int) -> None:
        if self._writers.pop(fd, None) is not None:
            self._unwatch(fd, READ if fd in self._readers else 0)

    def _watch(self, fd: int, mask: int) -> None:
        if mask == READ | WRITE:
            self._poller.modify(fd, mask)
        else:
            self._poller.register(fd, mask)

    def _unwatch(self, fd: int, remaining: int) -> None:
        if remaining:
            self._poller.modify(fd, remaining)
        else:
            self._poller.unregister(fd)

    # -- TCP (the work lives in _tcp.py, _listener.py, _connector.py) ----------

    def listen_tcp(
        self,
        port: int,
        factory: Factory,
        backlog: int = 128,
        interface: str = "127.0.0.1",
        *,
        socket_buffer: int = 0,
    ) -> Listener:
        """Listen on ``interface:port`` (port 0: any free one, see ``get_host()``).

        ``interface`` is loopback by default; ``""`` or ``"0.0.0.0"`` listen on
        all IPv4 interfaces, ``"::"`` on all interfaces, IPv6 and IPv4 alike
        (IPV6_V6ONLY is turned off whatever the system's default, where the
        system allows). A port in use raises ``ServiceError``.

        ``socket_buffer`` > 0 sets the kernel's send and receive buffers
        (``SO_SNDBUF``/``SO_RCVBUF``) of every accepted connection to that many
        bytes (Linux doubles it for bookkeeping): a bound on the kernel memory
        one connection can hold, which is otherwise tuned up to several MiB
        per direction. 0 leaves the system's default and its autotuning.
        """
        listener = Listener(self, port, factory, backlog, interface, socket_buffer)
        listener.start_listening()
        return listener

    def connect_tcp(
        self, host: str, port: int, factory: ClientFactory, timeout: float | None = 30
    ) -> Connector:
        """Connect to ``host:port`` without blocking; failures reach ``factory.client_connection_failed``.

        A name is resolved off the loop; its addresses are tried in turn, each
        within the one ``timeout`` (None: no limit but the kernel's), and the
        attempt fails with the last one's error.
        """
        connector = Connector(self, host, port, factory, timeout)
        connector.connect()
        return connector

    # -- UNIX sockets (_unix.py), UDP (_udp.py); TLS: coroutines.ComposedMethods --

    def listen_unix(self, path: str, factory: Factory, mode: int = 0o600, backlog: int = 128) -> Listener:
        """Listen on the UNIX socket ``path`` (file mode ``mode``; ``"\\0name"``: abstract).

        A file left by a dead server is replaced; a live server there is a
        ``ServiceError`` ("address already in use"). The file is removed on stop.
        """
        from eventhub.reactor._unix import UNIXListener

        listener = UNIXListener(self, path, factory, backlog, mode)
        listener.start_listening()
        return listener

    def connect_unix(self, path: str, factory: ClientFactory, timeout: float | None = 30) -> Connector:
        """Connect to the UNIX socket ``path``; the outcome reaches ``factory`` as with ``connect_tcp``."""
        from eventhub.reactor._unix import UNIXConnector

        connector = UNIXConnector(self, path, factory, timeout)
        connector.connect()
        return connector

    def listen_udp(
        self, port: int, protocol: DatagramProtocol, interface: str = "127.0.0.1", reuse_address: bool = False
    ) -> UDPPort:
        """Bind a UDP port on ``interface`` and serve ``protocol`` (see ``_udp.py``).

        ``reuse_address`` lets several sockets of this host bind the same port
        (listeners of one multicast group). Port 0: read the real one from
        ``get_host()``. A port in use raises ``ServiceError``.
        """
        from eventhub.reactor._udp import listen_udp

        return listen_udp(self, port, protocol, interface, reuse_address)

    # -- system event triggers: _shutdown.Shutdown ---------------------------

    # -- running --------------------------------------------------------------

    def inventory(self) -> Inventory:
        """What the reactor holds now: what a finished test should have closed."""
        # Imported here: its module's runtime-checkable Protocol classes are ~1-2 ms of start-up.
        from eventhub.reactor._api import Inventory

        timers = {id(entry[2]): entry[2] for entry in self._timers.heap}
        return Inventory(
            listeners=tuple(self._listeners),
            connections=tuple(self._connections),
            connectors=tuple(self._connectors),
            timers=tuple(handle for handle in timers.values() if handle.active()),
            calls=tuple(call[0] for call in self._ready),
            tasks=tuple(self._runner.tasks),
        )

    @property
    def running(self) -> bool:
        """True while ``run()`` is serving (startup triggers included)."""
        return self._running

    def run(self, install_signal_handlers: bool = True) -> None:
        """Serve until ``stop()``; then shut down gracefully and release everything.

        With ``install_signal_handlers`` (and on the main thread), SIGINT and
        SIGTERM stop the reactor the same way, and ``stopped_by_signal`` tells
        which one did. The previous handlers are restored before returning.
        """
        if self._running:
            raise UsageError("the reactor is already running")
        if self._finished:
            raise UsageError("a reactor runs once; this one has finished, create a new one")
        self._running = True
        if install_signal_handlers:
            self.install_signal_handlers()
        try:
            for phase in PHASES:
                self._fire(phase, "startup")
            self._run_until()
            self._shutdown()
        finally:
            self._running = False
            self.close()

    def stop(self, drain: float = 0.0) -> None:
        """Stop serving after the current pass; ``run()`` then shuts down and returns.

        ``drain``: after the listeners close, let the connections end by
        themselves for up to that many seconds before asking the rest to flush
        and close (a worker replaced by a rolling restart finishes what it
        accepted). Call it from the reactor's thread
        (``call_from_thread(reactor.stop)`` from others). Calling it again
        while shutting down does nothing (code that stops the reactor from
        ``connection_lost`` is common); a second SIGINT/SIGTERM, though, aborts
        the connections still flushing.
        """
        if not self._running:
            raise UsageError("the reactor is not running")
        self._drain = max(self._drain, drain)
        self._stopping = True

    def _run_until(self, done: Callable[[], bool] | None = None) -> None:
        """Run passes of the loop until ``done()`` is true (``None``: until ``stop()``).

        The passes are one loop here, not one call each: serving, a pass costs
        no Python call beyond the poller's ``dispatch`` and the handlers.
        """
        ready = self._ready
        timers = self._timers
        heap = timers.heap  # changed in place, never replaced
        readers, writers, dispatch = self._readers, self._writers, self._dispatch
        while not (self._stopping if done is None else done()):
            if ready:
                timeout: float | None = 0.0
            elif heap:
                deadline = timers.next_deadline()
                if deadline is None:
                    timeout = None
                else:
                    timeout = min(max(0.0, deadline - time.monotonic()), MAX_POLL_TIMEOUT)
            else:
                timeout = None
            dispatch(timeout, readers, writers)
            if heap:
                now = time.monotonic()
                if heap[0][0] <= now:
                    for timer in timers.pop_due(now):
                        ready.append((timer._fire, (), NO_KWARGS))
            if ready:
                self._run_ready()

    def _run_ready(self) -> None:
        """Run the callbacks queued now; those they queue wait for the next pass."""
        ready = self._ready
        for _ in range(len(ready)):
            fn, args, kw = ready.popleft()
            try:
                fn(*args, **kw)
            except PLUGIN_ERRORS as failure:
                reraise_user_interrupt(failure)
                log.exception("callback %r raised", fn)

    # -- signals --------------------------------------------------------------

    def install_signal_handlers(self) -> bool:
        """Make SIGINT and SIGTERM stop this reactor gracefully, from now on.

        ``run()`` does this itself; call it earlier to close the window between
        announcing a service (a log line a supervisor may react to) and
        ``run()``: a signal caught before ``run()`` stops the reactor in its
        first pass. Main thread only (returns False elsewhere, doing nothing).
        The previous handlers come back when the reactor finishes.
        """
        if self._restore_signals is not None:
            return True
        if threading.current_thread() is not threading.main_thread():
            return False
        previous = {sig: signal.getsignal(sig) for sig in _HANDLED_SIGNALS}
        for sig in previous:
            signal.signal(sig, self._on_signal)
        old_fd = signal.set_wakeup_fd(self._waker.wsock.fileno(), warn_on_full_buffer=False)

        def restore() -> None:
            signal.set_wakeup_fd(old_fd)
            for sig, handler in previous.items():
                signal.signal(sig, handler)

        self._restore_signals = restore
        return True

    def add_signal_handler(self, signum: int, fn: Callable[[], object]) -> None:
        """Call ``fn()`` on the loop when ``signum`` (SIGHUP, SIGUSR1...) arrives while serving.

        SIGINT and SIGTERM always stop the reactor and cannot be taken here.
        Without a handler, SIGHUP is logged and ignored (it would kill the
        process, resetting every connection).
        """
        if signum in (signal.SIGINT, signal.SIGTERM):
            raise UsageError(f"{signal.Signals(signum).name} stops the reactor; it takes no other handler")
        self._signal_handlers[signum] = fn
        if self._restore_signals is not None and signum not in _HANDLED_SIGNALS:
            previous = signal.signal(signum, self._on_signal)
            restore = self._restore_signals

            def restore_this_too() -> None:
                signal.signal(signum, previous)
                restore()

            self._restore_signals = restore_this_too

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        # Runs between two bytecodes of the main thread: only queue the work.
        self._ready.append((self._handle_signal, (signum,), NO_KWARGS))

    # -- shutdown -------------------------------------------------------------

    def _shutdown(self) -> None:
        for step, waits in self._shutdown_steps():
            if step is Step.GRACE:
                self._wait_for([w for w in waits if isinstance(w, Future)])
            elif step is Step.DRAIN:
                if self._drain and self._connections:
                    self._let_connections_end(self._drain)
            else:
                self._wait_closed()

    def _wait_closed(self) -> None:
        self._timed_out = False
        timer = self.call_later(self.shutdown_timeout, self._shutdown_timed_out)
        # Until every connection is closed, every task done (those that the last
        # connection_lost calls start too) and every thread result is in: bounded.
        while not self._timed_out:
            self._run_until(lambda: self._timed_out or not self._shutdown_pending())
            self._run_ready()  # connection_lost of the last ones to close...
            if not self._shutdown_pending():  # ...which may have started tasks
                break
        timer.cancel()

    def _wait_for(self, futures: list[Future[Any]]) -> None:
        """Serve on until ``futures`` are done, ``shutdown_timeout`` at most (the grace of a stop)."""
        if not futures:
            return
        deadline = self.seconds() + self.shutdown_timeout
        timer = self.call_later(self.shutdown_timeout, lambda: None)  # wakes the poller at the deadline
        self._run_until(lambda: all(f.done() for f in futures) or self.seconds() >= deadline)
        timer.cancel()
        if not all(f.done() for f in futures):
            log.warning("the shutdown's grace period (%.1fs) expired", self.shutdown_timeout)

    def _let_connections_end(self, seconds: float) -> None:
        log.info("draining %d connection(s) for up to %.1fs", len(self._connections), seconds)
        ended: list[bool] = []
        timer = self.call_later(seconds, ended.append, True)
        self._run_until(lambda: not self._connections or bool(ended))
        timer.cancel()

    def _shutdown_pending(self) -> bool:
        # Not the ready queue: a callback that re-arms itself forever must not hold the shutdown.
        return bool(self._connections or self._runner.tasks or self._thread_results)

    def _shutdown_timed_out(self) -> None:
        self._timed_out = True
        super()._shutdown_timed_out()

    def close(self) -> None:
        """Release the poller, the waker, the threads and any socket still open.

        ``run()`` does this on its way out; call it yourself only for a reactor
        that never ran. Protocols still connected get ``connection_lost``.
        """
        if self._finished:
            return
        self._finished = True
        self._restore_signal_handlers()
        self._close_network()
        self._runner.cancel_all()
        self._run_ready()  # connection_lost for those just aborted, and the cancelled tasks' last step
        self._runner.abandon_all()
        self._ready.clear()
        if self._pool is not None:
            self._pool.stop()
        self.remove_reader(self._waker.rsock.fileno())
        self._waker.close()
        self._poller.close()
