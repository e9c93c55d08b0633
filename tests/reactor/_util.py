"""Helpers for the reactor tests: run a reactor with a hang guard, run blocking clients in threads."""

from __future__ import annotations

import functools
import os
import socket
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from eventhub.protocol import Factory, Protocol, ServerFactory, Transport
from eventhub.reactor import Reactor
from eventhub.testing import HANG_TIMEOUT, run_until_stopped

# The shipped hang guard, under the names these tests use (one implementation: eventhub.testing).
HANG = HANG_TIMEOUT
run = run_until_stopped

T = TypeVar("T")


class Background(Generic[T]):
    """``fn(*args)`` on a thread; ``result()`` joins and returns or re-raises."""

    _value: T  # set by the thread when ``fn`` returns; ``result()`` reads it only then

    def __init__(self, fn: Callable[..., T], *args: object) -> None:
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(fn, args), daemon=True)
        self._thread.start()

    def _run(self, fn: Callable[..., T], args: tuple[object, ...]) -> None:
        try:
            self._value = fn(*args)
        except BaseException as exc:
            self._error = exc

    def result(self, timeout: float = HANG) -> T:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "client thread hung"
        if self._error is not None:
            raise self._error
        return self._value


def wait_for(event: threading.Event, what: str) -> None:
    """On a client thread: block until the reactor's thread sets ``event``; fail, not hang, if never.

    Tests wait for conditions, not for time: a client that must not read before
    the server has buffered (a single nonblocking send takes 16 MiB whole when
    the peer reads at the same time) waits for the server to say so.
    """
    assert event.wait(HANG), f"the reactor never got to: {what}"


def connect(port: int, host: str = "127.0.0.1") -> socket.socket:
    sock = socket.create_connection((host, port), timeout=HANG)
    return sock


def recv_all(sock: socket.socket) -> bytes:
    """Read until EOF (a reset counts as the end too, returning what came before)."""
    chunks = []
    try:
        while True:
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    except ConnectionResetError:
        pass
    return b"".join(chunks)


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(min(n - len(buf), 1 << 20))
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


@functools.cache
def _block() -> bytes:
    return b"".join(i.to_bytes(4, "big") for i in range(1 << 14))  # 64 KiB, no repeats


def pattern(n: int) -> bytes:
    """``n`` bytes whose every position is distinguishable (catches reordering and loss)."""
    block = _block()
    reps = n // len(block) + 1
    return (block * reps)[:n]


class Echo(Protocol):
    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)


def factory_for(cls: type[Protocol], factory_cls: type[Factory] = ServerFactory) -> Factory:
    f = factory_cls()
    f.protocol = cls
    return f


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


class Recorder(Protocol):
    """Records every callback in order; ``events`` is shared by the test."""

    events: list[object]

    def connection_made(self, transport: Transport) -> None:
        super().connection_made(transport)
        self.events.append("made")

    def data_received(self, data: bytes) -> None:
        self.events.append(("data", data))

    def eof_received(self) -> bool | None:
        self.events.append("eof")
        return None

    def connection_lost(self, reason: BaseException | None) -> None:
        self.events.append(("lost", reason))


def pending_timers(reactor: Reactor) -> list[object]:
    """The timers still due to run (read as the shipped ``reactor`` fixture reads them)."""
    return list(reactor.inventory().timers)
