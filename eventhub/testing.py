"""Test helpers for code built on eventhub: no sockets, no real time.

- ``StringTransport``: a ``Transport`` that records what the protocol writes
  (``value()``) and what it asked for (closed, aborted, paused...).
- ``Clock``: fake time for ``call_later``; ``advance(seconds)`` runs what is due.
- ``MemoryReactor``: records ``listen_tcp`` / ``connect_tcp`` calls, runs
  ``call_soon`` callbacks and timers on a ``Clock``; nothing touches the network.
- ``run_until_stopped(reactor, timeout)``: run any reactor (real or in memory)
  until the code under test stops it, failing the test if nothing does in time.

Typical use::

    transport = StringTransport()
    proto = Echo()
    proto.connection_made(transport)
    proto.data_received(b"hi")
    assert transport.value() == b"hi"
"""

from __future__ import annotations

import itertools
import ssl
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from eventhub.errors import ServiceError, UsageError
from eventhub.protocol import (
    Address,
    ClientFactory,
    DatagramProtocol,
    Factory,
    Producer,
    Protocol,
    UNIXAddress,
)
from eventhub.reactor._api import ReactorAPI
from eventhub.reactor._coroutines import CoroutineMethods
from eventhub.reactor._output import write_buffer_limits
from eventhub.reactor._tasks import Runner
from eventhub.reactor._threads import ThreadResult, deferred_call
from eventhub.reactor._timers import TimerHandle, TimerQueue
from eventhub.reactor._triggers import PHASES, SystemTriggers

__all__ = [
    "HANG_TIMEOUT",
    "Clock",
    "ConnectTCPCall",
    "ConnectTLSCall",
    "ConnectUNIXCall",
    "ListenTCPCall",
    "ListenTLSCall",
    "ListenUDPCall",
    "ListenUNIXCall",
    "MemoryConnector",
    "MemoryDatagramPort",
    "MemoryListener",
    "MemoryReactor",
    "StringTransport",
    "run_until_stopped",
]

T = TypeVar("T")

Data = bytes | bytearray | memoryview


class StringTransport:
    """A ``Transport`` whose writes land in memory.

    Like the reactor's connection, writes after ``lose_connection`` or
    ``abort_connection`` are dropped quietly (``dropped`` counts the bytes), and
    writing anything but bytes-like raises ``TypeError``. Nothing here calls the
    protocol back: call ``connection_lost`` yourself when the test needs it.

    Attributes a test reads: ``disconnecting`` (``lose_connection`` was called),
    ``aborted``, ``eof_written``, ``reading_paused``, ``producer`` / ``streaming``,
    ``write_buffer_limits`` (``(high, low)`` as last set), ``dropped``; a test sets
    ``extra`` (what ``get_extra`` answers).

    ``call_soon`` goes to ``reactor`` when one is given (a ``MemoryReactor``:
    the test decides when queued calls run); without one, the call runs at once
    (the calls it queues in turn run after it, in order, not nested), so a
    protocol that spreads its work over several callbacks has done all of it
    when ``data_received`` returns.
    """

    def __init__(
        self,
        peer: Address | None = None,
        host: Address | None = None,
        reactor: ReactorAPI | None = None,
    ) -> None:
        self.reactor = reactor
        self._soon: deque[tuple[Callable[..., object], tuple[Any, ...]]] | None = None
        self.peer = peer if peer is not None else Address("127.0.0.1", 54321)
        self.host = host if host is not None else Address("127.0.0.1", 8000)
        self.io = bytearray()
        self.disconnecting = False
        self.aborted = False
        self.eof_written = False
        self.reading_paused = False
        self.producer: Producer | None = None
        self.streaming: bool | None = None
        self.write_buffer_limits: tuple[int, int] = write_buffer_limits()
        self.dropped = 0
        #: What ``get_extra`` answers (a test sets ``peercert``, ``alpn_protocol``... here).
        self.extra: dict[str, Any] = {}

    # What the test reads.
    def value(self) -> bytes:
        """Everything written so far (and not cleared)."""
        return bytes(self.io)

    def clear(self) -> None:
        """Forget what was written so far."""
        self.io.clear()

    @property
    def closed(self) -> bool:
        """True once ``lose_connection`` or ``abort_connection`` was called."""
        return self.disconnecting or self.aborted

    # The Transport interface.
    def write(self, data: Data) -> None:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"write() takes bytes-like data, not {type(data).__name__}")
        if self.closed or self.eof_written:
            self.dropped += len(data)
            return
        self.io += data

    def write_sequence(self, data: Iterable[Data]) -> None:
        for item in data:
            self.write(item)

    def write_eof(self) -> None:
        self.eof_written = True

    def lose_connection(self) -> None:
        self.disconnecting = True

    def abort_connection(self) -> None:
        self.aborted = True

    def is_closing(self) -> bool:
        return self.closed

    def get_peer(self) -> Address:
        return self.peer

    def get_host(self) -> Address:
        return self.host

    def get_extra(self, name: str, default: Any = None) -> Any:
        if name in ("peername", "sockname"):
            return self.peer if name == "peername" else self.host
        return self.extra.get(name, default)

    def pause_reading(self) -> None:
        self.reading_paused = True

    def call_soon(self, fn: Callable[..., object], /, *args: Any) -> None:
        if self.reactor is not None:
            self.reactor.call_soon(fn, *args)
            return
        if self._soon is not None:  # inside a queued call: after it, in order
            self._soon.append((fn, args))
            return
        self._soon = deque([(fn, args)])
        try:
            while self._soon:
                queued, queued_args = self._soon.popleft()
                queued(*queued_args)
        finally:
            self._soon = None

    def resume_reading(self) -> None:
        self.reading_paused = False

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self.write_buffer_limits = write_buffer_limits(high, low)  # the reactor's own defaults

    def get_write_buffer_size(self) -> int:
        """Always 0: a string transport takes every byte at once."""
        return 0

    def register_producer(self, producer: Producer, streaming: bool) -> None:
        if self.producer is not None:
            raise RuntimeError(f"a producer is already registered: {self.producer!r}")
        self.producer = producer
        self.streaming = streaming

    def unregister_producer(self) -> None:
        self.producer = None
        self.streaming = None


class Clock:
    """Fake time for ``call_later``: nothing runs until the test calls ``advance``.

    The handles are the reactor's own ``TimerHandle`` (``cancel``, ``reset``,
    ``active``, ``time``), so code under test sees exactly the real semantics.
    ``advance`` moves time from one due call to the next, so a callback sees
    ``seconds()`` equal to its own due time and a timer that re-arms itself
    every second fires ten times in ``advance(10)``.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)
        self._timers = TimerQueue(self.seconds)
        self._handles: list[TimerHandle] = []

    def seconds(self) -> float:
        """The fake time now."""
        return self._now

    def call_later(self, delay: float, fn: Callable[..., object], /, *args: Any, **kw: Any) -> TimerHandle:
        """Schedule ``fn(*args, **kw)`` ``delay`` fake seconds from now."""
        handle = self._timers.schedule(delay, fn, args, kw)
        self._handles.append(handle)
        return handle

    def pending(self) -> list[TimerHandle]:
        """The calls still to run, soonest first."""
        self._handles = [h for h in self._handles if h.active()]
        return sorted(self._handles, key=lambda h: h.time)

    def next_call_time(self) -> float | None:
        """When the soonest pending call is due, or None."""
        return self._timers.next_deadline()

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, running every call that comes due, in order.

        If a call raises, the other calls due at that same instant still run, then
        the first exception propagates and time stays at that instant.
        """
        if not seconds >= 0:
            raise ValueError(f"cannot advance a Clock by {seconds!r} seconds")
        self.advance_to(self._now + seconds)

    def advance_to(self, when: float) -> None:
        """Move time forward to ``when`` (absolute), running what comes due on the way."""
        if not when >= self._now:
            raise ValueError(f"cannot move a Clock back from {self._now} to {when!r}")
        while (deadline := self._timers.next_deadline()) is not None and deadline <= when:
            self._now = deadline
            self._fire(self._timers.pop_due(deadline))
        self._now = when

    @staticmethod
    def _fire(due: list[TimerHandle]) -> None:
        error: Exception | None = None
        for handle in due:
            try:
                handle._fire()  # the reactor's own path: skips handles cancelled meanwhile
            except Exception as exc:
                error = error or exc
        if error is not None:
            raise error


@dataclass(frozen=True, slots=True)
class ListenTCPCall:
    """One ``MemoryReactor.listen_tcp`` call, as the code under test made it."""

    port: int
    factory: Factory
    backlog: int
    interface: str
    listener: MemoryListener
    socket_buffer: int = 0


@dataclass(frozen=True, slots=True)
class ConnectTCPCall:
    """One ``MemoryReactor.connect_tcp`` call, as the code under test made it."""

    host: str
    port: int
    factory: ClientFactory
    timeout: float | None
    connector: MemoryConnector


@dataclass(frozen=True, slots=True)
class ListenUNIXCall:
    """One ``MemoryReactor.listen_unix`` call, as the code under test made it."""

    path: str
    factory: Factory
    mode: int
    backlog: int
    listener: MemoryListener


@dataclass(frozen=True, slots=True)
class ConnectUNIXCall:
    """One ``MemoryReactor.connect_unix`` call, as the code under test made it."""

    path: str
    factory: ClientFactory
    timeout: float | None
    connector: MemoryConnector


@dataclass(frozen=True, slots=True)
class ListenTLSCall:
    """One ``MemoryReactor.listen_tls`` call (no TLS is played: the test drives plaintext)."""

    port: int
    factory: Factory
    context: ssl.SSLContext
    interface: str
    backlog: int
    listener: MemoryListener


@dataclass(frozen=True, slots=True)
class ConnectTLSCall:
    """One ``MemoryReactor.connect_tls`` call, as the code under test made it."""

    host: str
    port: int
    factory: ClientFactory
    context: ssl.SSLContext
    server_hostname: str | None
    timeout: float | None
    connector: MemoryConnector


class MemoryListener:
    """What ``MemoryReactor.listen_tcp`` returns: ``get_host()``, ``stop_listening()``.

    ``accept(peer)`` plays a client connecting: the factory builds a protocol,
    which gets ``connection_made`` with a fresh ``StringTransport``.
    """

    def __init__(self, reactor: MemoryReactor, host: Address, factory: Factory) -> None:
        self._reactor = reactor
        self._host = host
        self.factory = factory
        self.listening = True

    def __repr__(self) -> str:
        state = "listening" if self.listening else "stopped"
        return f"<MemoryListener {self._host} {state}>"

    def get_host(self) -> Address:
        return self._host

    def stop_listening(self) -> None:
        """Idempotent, like the real one; the factory's ``stop_factory`` runs on the last stop."""
        if self.listening:
            self.listening = False
            self._reactor._listeners.remove(self)
            self.factory.do_stop()

    def accept(self, peer: Address | None = None) -> tuple[Protocol, StringTransport] | tuple[None, None]:
        """A client connects from ``peer``; ``(None, None)`` if ``build_protocol`` refused it."""
        if not self.listening:
            raise UsageError(f"{self!r} is not listening")
        peer = peer if peer is not None else Address("127.0.0.1", 54321)
        protocol = self.factory.build_protocol(peer)
        if protocol is None:
            return None, None
        transport = StringTransport(peer=peer, host=self._host)
        protocol.make_connection(transport)
        return protocol, transport


class MemoryDatagramPort:
    """What ``MemoryReactor.listen_udp`` returns: a ``DatagramTransport`` that records.

    ``written`` holds ``(data, addr)`` per ``write`` (``addr`` None once
    connected); ``groups`` the multicast groups joined; ``receive(data, addr)``
    plays a datagram arriving.
    """

    def __init__(self, reactor: MemoryReactor, host: Address, protocol: DatagramProtocol) -> None:
        self._reactor = reactor
        self._host = host
        self.protocol = protocol
        self.written: list[tuple[bytes, Any]] = []
        self.groups: set[tuple[str, str]] = set()
        self.connected: Any = None
        self.ttl = 1
        self.listening = True

    def __repr__(self) -> str:
        return f"<MemoryDatagramPort {self._host} {'listening' if self.listening else 'stopped'}>"

    def write(self, data: Data, addr: Any = None) -> None:
        if not self.listening:
            return
        if addr is None and self.connected is None:
            raise UsageError("write() on an unconnected UDP port needs addr")
        self.written.append((bytes(data), addr))

    def connect(self, addr: Any) -> None:
        self.connected = addr

    def join_group(self, group: str, interface: str = "") -> None:
        self.groups.add((group, interface))

    def leave_group(self, group: str, interface: str = "") -> None:
        self.groups.discard((group, interface))

    def set_ttl(self, ttl: int) -> None:
        self.ttl = ttl

    def get_host(self) -> Address:
        return self._host

    def is_closing(self) -> bool:
        return not self.listening

    def stop_listening(self) -> None:
        if self.listening:
            self.listening = False
            self._reactor._listeners.remove(self)
            self.protocol.connection_lost(None)

    def receive(self, data: bytes, addr: Any = ("127.0.0.1", 54321)) -> None:
        """A datagram arrives from ``addr``."""
        if not self.listening:
            raise UsageError(f"{self!r} is not listening")
        self.protocol.datagram_received(data, addr)


@dataclass(frozen=True, slots=True)
class ListenUDPCall:
    """One ``MemoryReactor.listen_udp`` call, as the code under test made it."""

    port: int
    protocol: DatagramProtocol
    interface: str
    port_object: MemoryDatagramPort


_CONNECTING, _CONNECTED, _DISCONNECTED = "connecting", "connected", "disconnected"


class MemoryConnector:
    """What ``MemoryReactor.connect_tcp`` returns (``eventhub.protocol.Connector``).

    Nothing happens by itself: the test decides the outcome with
    ``succeed()`` (the protocol is built and connected to a ``StringTransport``),
    ``fail(reason)`` (``client_connection_failed``) and, once connected,
    ``lose(reason)`` (``connection_lost`` then ``client_connection_lost``).
    """

    def __init__(self, host: str, port: int, factory: ClientFactory) -> None:
        self._destination = Address(host, port)
        self.factory = factory
        self.state = _DISCONNECTED
        self.protocol: Protocol | None = None
        self.transport: StringTransport | None = None

    def __repr__(self) -> str:
        return f"<MemoryConnector {self._destination} {self.state}>"

    # The Connector interface.
    def get_destination(self) -> Address:
        return self._destination

    def connect(self) -> None:
        if self.state != _DISCONNECTED:
            raise UsageError(f"{self!r}: connect() while already connecting or connected")
        self.state = _CONNECTING
        self.factory.do_start()
        self.factory.start_connecting(self)

    def stop_connecting(self) -> None:
        if self.state == _CONNECTING:
            self.fail(ConnectionAbortedError(f"connecting to {self._destination} was cancelled"))

    def disconnect(self) -> None:
        if self.state == _CONNECTING:
            self.stop_connecting()
        elif self.transport is not None:
            self.transport.lose_connection()

    # What the test drives.
    def succeed(self, host: Address | None = None) -> tuple[Protocol, StringTransport]:
        """The attempt connects: build the protocol and call its ``connection_made``."""
        self._expect(_CONNECTING)
        protocol = self.factory.build_protocol(self._destination)
        if protocol is None:
            self.fail(ConnectionAbortedError("build_protocol returned None"))
            raise UsageError(f"{type(self.factory).__name__}.build_protocol returned None")
        self.state = _CONNECTED
        self.protocol = protocol
        self.transport = StringTransport(peer=self._destination, host=host)
        protocol.make_connection(self.transport)
        return protocol, self.transport

    def fail(self, reason: BaseException) -> None:
        """The attempt fails with ``reason`` (``ConnectionRefusedError()``, say)."""
        self._expect(_CONNECTING)
        self.state = _DISCONNECTED
        self.factory.client_connection_failed(self, reason)
        self.factory.do_stop()

    def lose(self, reason: BaseException | None = None) -> None:
        """The connection ends: ``connection_lost(reason)``, then ``client_connection_lost``."""
        self._expect(_CONNECTED)
        assert self.protocol is not None
        protocol, self.protocol, self.transport = self.protocol, None, None
        self.state = _DISCONNECTED
        protocol.connection_lost(reason)
        self.factory.client_connection_lost(self, reason)
        self.factory.do_stop()

    def _expect(self, state: str) -> None:
        if self.state != state:
            raise UsageError(f"{self!r} is {self.state}, not {state}")


_Call = tuple[Callable[..., object], tuple[Any, ...], dict[str, Any]]


class MemoryReactor(CoroutineMethods):
    """A reactor without sockets or threads: it records and runs what the code asks.

    - ``listen_tcp`` / ``connect_tcp`` record a ``ListenTCPCall`` / ``ConnectTCPCall``
      in ``tcp_servers`` / ``tcp_clients`` and return a ``MemoryListener`` /
      ``MemoryConnector`` that the test drives. ``listen_tls`` / ``connect_tls``
      (``tls_servers`` / ``tls_clients``: no TLS is played, the transports carry
      plaintext) and ``listen_unix`` / ``connect_unix`` (``unix_servers`` /
      ``unix_clients``) do the same; ``listen_udp`` records in ``udp_servers``
      and returns a ``MemoryDatagramPort``.
    - ``call_later`` runs on ``clock`` (a ``Clock``); ``advance(seconds)`` moves it.
    - ``call_soon`` / ``call_from_thread`` queue a call; ``run_ready()`` runs the queue.
    - ``call_in_thread`` / ``defer_to_thread`` run the function on the queue too, in
      the test's thread: deterministic, no real threads (``thread_results`` holds
      the outcomes not yet delivered, as on the real reactor).
    - ``add_signal_handler`` / ``add_reader`` record the handler in
      ``signal_handlers`` / ``readers`` for the test to call; ``install_signal_handlers``
      only sets ``signals_requested``: the process's own handlers are left alone.
    - ``run()`` fires the startup triggers, then runs queued calls and timers in fake
      time (jumping the clock to the next timer) until ``stop()`` is called or nothing
      is left to run (where a real reactor would wait forever); then shuts down in
      the real one's order: "before" triggers, listeners stopped, attempts in progress
      cancelled, "during" triggers, "after" triggers. Connections handed out by
      ``accept`` / ``succeed`` are the test's to end.

    It satisfies ``eventhub.reactor.ReactorAPI``, as the real reactor does, and
    shares its system event triggers (``eventhub.reactor._triggers``). Unlike the
    real reactor, an exception from a callback or a trigger propagates to the
    test (the other triggers of that phase still run first).
    """

    max_passes = 10_000

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock if clock is not None else Clock()
        self.tcp_servers: list[ListenTCPCall] = []
        self.tcp_clients: list[ConnectTCPCall] = []
        self.unix_servers: list[ListenUNIXCall] = []
        self.unix_clients: list[ConnectUNIXCall] = []
        self.tls_servers: list[ListenTLSCall] = []
        self.tls_clients: list[ConnectTLSCall] = []
        self.udp_servers: list[ListenUDPCall] = []
        self._listeners: list[MemoryListener | MemoryDatagramPort] = []
        self._ready: deque[_Call] = deque()
        self._triggers = SystemTriggers()
        self._free_ports = itertools.count(40000)
        self._running = False
        self._stopping = False
        self._finished = False
        self.thread_id: int | None = None
        self._runner = Runner(self, "memory")
        self._thread_results: set[ThreadResult[Any]] = set()
        self.signal_handlers: dict[int, Callable[[], object]] = {}
        self.readers: dict[int, Callable[[], None]] = {}
        #: ``install_signal_handlers()`` was called (nothing is installed: signals stay the test's).
        self.signals_requested = False

    # -- time and calls ------------------------------------------------------

    def seconds(self) -> float:
        return self.clock.seconds()

    def call_later(self, delay: float, fn: Callable[..., object], /, *args: Any, **kw: Any) -> TimerHandle:
        return self.clock.call_later(delay, fn, *args, **kw)

    def call_soon(self, fn: Callable[..., object], /, *args: Any, **kw: Any) -> None:
        self._ready.append((fn, args, kw))

    def call_from_thread(self, fn: Callable[..., object], /, *args: Any, **kw: Any) -> None:
        self._ready.append((fn, args, kw))  # deque.append is atomic: safe from any thread

    def call_in_thread(self, fn: Callable[..., object], /, *args: Any, **kw: Any) -> None:
        self._ready.append((fn, args, kw))

    def defer_to_thread(self, fn: Callable[..., T], /, *args: Any, **kw: Any) -> ThreadResult[T]:
        result, job = deferred_call(fn, args, kw, self.call_from_thread, self._thread_results)
        self._ready.append((job, (), {}))
        return result

    @property
    def thread_results(self) -> frozenset[ThreadResult[Any]]:
        """The ``defer_to_thread`` calls whose outcome has not come back yet."""
        return frozenset(self._thread_results)

    def add_signal_handler(self, signum: int, fn: Callable[[], object]) -> None:
        """Record ``fn`` in ``signal_handlers``; a test calls it to play the signal."""
        self.signal_handlers[signum] = fn

    def add_reader(self, fd: int, handler: Callable[[], None]) -> None:
        """Record ``handler`` in ``readers``; a test calls it to play ``fd`` becoming readable."""
        self.readers[fd] = handler

    def remove_reader(self, fd: int) -> None:
        self.readers.pop(fd, None)

    def install_signal_handlers(self) -> bool:
        """Record the request in ``signals_requested``; the process's handlers are left alone."""
        self.signals_requested = True
        return True

    def run_ready(self) -> None:
        """Run queued calls, pass after pass, until the queue is empty."""
        for _ in range(self.max_passes):
            if not self.run_pass():
                return
        raise RuntimeError(f"queued calls kept queueing more for {self.max_passes} passes")

    def run_pass(self) -> int:
        """Run the calls queued when the pass began, as one pass of the loop does; how many ran.

        The calls they queue wait for the next pass.
        """
        count = len(self._ready)
        for _ in range(count):
            fn, args, kw = self._ready.popleft()
            fn(*args, **kw)
        return count

    def advance(self, seconds: float) -> None:
        """Move the clock by ``seconds``; queued calls run after each timer, as in the loop."""
        target = self.clock.seconds() + seconds
        self.run_ready()
        while (due := self.clock.next_call_time()) is not None and due <= target:
            self.clock.advance_to(due)
            self.run_ready()
        self.clock.advance_to(target)

    # -- TCP -----------------------------------------------------------------

    def listen_tcp(
        self,
        port: int,
        factory: Factory,
        backlog: int = 128,
        interface: str = "127.0.0.1",
        *,
        socket_buffer: int = 0,
    ) -> MemoryListener:
        """Record the call; port 0 gets a fake free port; a port in use raises ServiceError."""
        listener = self._listen(Address(interface or "0.0.0.0", port or next(self._free_ports)), factory)
        self.tcp_servers.append(ListenTCPCall(port, factory, backlog, interface, listener, socket_buffer))
        return listener

    def connect_tcp(
        self, host: str, port: int, factory: ClientFactory, timeout: float | None = 30
    ) -> MemoryConnector:
        """Record the call and start the attempt; the test ends it (``succeed``/``fail``)."""
        connector = MemoryConnector(host, port, factory)
        self.tcp_clients.append(ConnectTCPCall(host, port, factory, timeout, connector))
        connector.connect()
        return connector

    # -- TLS (recorded; the connections are plaintext StringTransports) -------

    def listen_tls(
        self,
        port: int,
        factory: Factory,
        context: ssl.SSLContext,
        interface: str = "127.0.0.1",
        backlog: int = 128,
        handshake_timeout: float | None = 30.0,
    ) -> MemoryListener:
        """Record the call in ``tls_servers``; otherwise as ``listen_tcp``."""
        listener = self._listen(Address(interface or "0.0.0.0", port or next(self._free_ports)), factory)
        self.tls_servers.append(ListenTLSCall(port, factory, context, interface, backlog, listener))
        return listener

    def connect_tls(
        self,
        host: str,
        port: int,
        factory: ClientFactory,
        context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float = 30,
        handshake_timeout: float | None = 30.0,
    ) -> MemoryConnector:
        """Record the call in ``tls_clients`` and start the attempt; the test ends it."""
        connector = MemoryConnector(host, port, factory)
        self.tls_clients.append(
            ConnectTLSCall(host, port, factory, context, server_hostname, timeout, connector)
        )
        connector.connect()
        return connector

    def _listen(self, host: Address, factory: Factory) -> MemoryListener:
        if any(isinstance(x, MemoryListener) and x.get_host() == host for x in self._listeners):
            raise ServiceError(f"cannot listen on {host}: address already in use")
        listener = MemoryListener(self, host, factory)
        self._listeners.append(listener)
        factory.do_start()
        return listener

    # -- UDP -------------------------------------------------------------------

    def listen_udp(
        self, port: int, protocol: DatagramProtocol, interface: str = "127.0.0.1", reuse_address: bool = False
    ) -> MemoryDatagramPort:
        """Record the call in ``udp_servers``; the protocol gets ``connection_made`` at once."""
        host = Address(interface or "0.0.0.0", port or next(self._free_ports))
        if not reuse_address and any(
            isinstance(x, MemoryDatagramPort) and x.get_host() == host for x in self._listeners
        ):
            raise ServiceError(f"cannot listen on udp {host}: address already in use")
        udp = MemoryDatagramPort(self, host, protocol)
        self._listeners.append(udp)
        self.udp_servers.append(ListenUDPCall(port, protocol, interface, udp))
        protocol.transport = udp
        protocol.connection_made(udp)  # DatagramProtocol has no make_connection
        return udp

    # -- UNIX sockets --------------------------------------------------------

    def listen_unix(
        self, path: str, factory: Factory, mode: int = 0o600, backlog: int = 128
    ) -> MemoryListener:
        """Record the call; a path in use raises ServiceError."""
        listener = self._listen(UNIXAddress(path), factory)
        self.unix_servers.append(ListenUNIXCall(path, factory, mode, backlog, listener))
        return listener

    def connect_unix(self, path: str, factory: ClientFactory, timeout: float | None = 30) -> MemoryConnector:
        """Record the call and start the attempt; the test ends it (``succeed``/``fail``)."""
        connector = MemoryConnector(path, 0, factory)
        self.unix_clients.append(ConnectUNIXCall(path, factory, timeout, connector))
        connector.connect()
        return connector

    # -- system event triggers -----------------------------------------------

    def add_system_event_trigger(
        self, phase: str, event: str, fn: Callable[..., object], /, *args: Any
    ) -> int:
        return self._triggers.add(phase, event, fn, *args)

    def remove_system_event_trigger(self, trigger_id: int) -> None:
        self._triggers.remove(trigger_id)

    def _fire(self, phase: str, event: str) -> None:
        """Run every trigger of the phase, then raise the first exception (the test should see it)."""
        failures = self._triggers.fire(phase, event)
        if failures:
            raise failures[0][1]

    # -- running -------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._running

    def run(self, install_signal_handlers: bool = True) -> None:
        """Run in fake time until ``stop()`` or until nothing is left; then shut down."""
        if self._running:
            raise UsageError("the reactor is already running")
        if self._finished:
            raise UsageError("a reactor runs once; this one has finished, create a new one")
        self._running = True
        self.thread_id = threading.get_ident()
        try:
            for phase in PHASES:
                self._fire(phase, "startup")
            while not self._stopping:
                if self._ready:
                    self.run_ready()
                elif (due := self.clock.next_call_time()) is not None:
                    self.clock.advance_to(due)
                else:
                    break
            self._shutdown()
        finally:
            self._running = False
            self._finished = True

    def _shutdown(self) -> None:
        """The real reactor's order: before, cancel tasks, close listeners and attempts, during, after."""
        running = list(self._runner.tasks)
        self._fire("before", "shutdown")
        for task in running:
            task.cancel()
        for listener in list(self._listeners):
            listener.stop_listening()
        for connector in self._connectors():
            connector.stop_connecting()
        self._fire("during", "shutdown")
        self.run_ready()
        self._fire("after", "shutdown")

    def _connectors(self) -> list[MemoryConnector]:
        calls: list[ConnectTCPCall | ConnectUNIXCall | ConnectTLSCall] = [
            *self.tcp_clients,
            *self.unix_clients,
            *self.tls_clients,
        ]
        return [call.connector for call in calls]

    def stop(self, drain: float = 0.0) -> None:
        """Stop after the current pass (``drain`` is accepted and ignored: connections are the test's)."""
        if not self._running:
            raise UsageError("the reactor is not running")
        self._stopping = True

    def close(self) -> None:
        """Release a reactor that never ran, as the real one's ``close``: listeners stop, attempts fail."""
        if self._running or self._finished:
            return
        self._finished = True
        for listener in list(self._listeners):
            listener.stop_listening()
        for connector in self._connectors():
            connector.stop_connecting()


#: How long ``run_until_stopped`` waits by default: a hang guard, far above what
#: a correct test needs, never a performance threshold.
HANG_TIMEOUT = 20.0


def run_until_stopped(
    reactor: ReactorAPI, timeout: float = HANG_TIMEOUT, *, install_signal_handlers: bool = False
) -> None:
    """Run ``reactor`` until the code under test stops it; fail if nothing does within ``timeout``.

    A hang guard for tests: if ``timeout`` seconds (of the reactor's clock: fake
    time on a ``MemoryReactor``) pass first, the guard stops the reactor, so it
    still shuts down and closes what it holds, and then ``AssertionError`` says
    so. Signal handlers are left alone unless ``install_signal_handlers`` (a test
    of SIGINT/SIGTERM handling). The guard's timer is cancelled before
    returning, so no timer is left behind.
    """
    hung = False

    def guard() -> None:
        nonlocal hung
        hung = True
        reactor.stop()

    handle = reactor.call_later(timeout, guard)
    try:
        reactor.run(install_signal_handlers=install_signal_handlers)
    finally:
        handle.cancel()
    if hung:
        raise AssertionError(f"the reactor was still running after {timeout}s: nothing stopped it")
