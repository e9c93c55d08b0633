"""Helpers for the echo plugin's tests: a served ``eventhub run`` and clients that check every byte.

``EchoServer`` is a ``support.Served`` that reads the echo's port from its log
line. The clients are plain sockets driven by one ``selectors`` loop, bounded
by a deadline.
"""

from __future__ import annotations

import random
import resource
import selectors
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from support import PluginVenv, Served, assert_clean_exit

__all__ = ["EchoServer", "assert_clean_exit", "echo_many", "is_closed_by_peer", "raise_nofile"]

HOST = "127.0.0.1"
LISTENING = r"eventhub\.echo: INFO: listening on 127\.0\.0\.1:(\d+) \((\w+) backend\)"


def raise_nofile(wanted: int) -> int:
    """Raise this process's soft descriptor limit towards ``wanted``; return the new limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(wanted, hard) if hard != resource.RLIM_INFINITY else wanted
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class EchoServer(Served):
    """``eventhub run --set echo.port=0 ARGS`` in ``venv``; ``port`` is read from its log line."""

    def __init__(self, venv: PluginVenv, *args: str, wait: bool = True) -> None:
        super().__init__(venv, "run", "--set", "echo.port=0", *args)
        self.port = 0
        self.backend = ""
        if wait:
            match = self.wait_for(LISTENING)
            self.port, self.backend = int(match.group(1)), match.group(2)

    def address(self) -> tuple[str, int]:
        return HOST, self.port

    def connect(self, timeout: float = 10) -> socket.socket:
        sock = socket.create_connection(self.address(), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock


# -- a many-connection client that checks every byte ----------------------------


@dataclass
class _Conn:
    sock: socket.socket
    payload: bytes
    chunks: list[int]  # sizes, sent in order
    sent: int = 0
    chunk_left: int = 0
    received: bytearray = field(default_factory=bytearray)
    done: bool = False
    refused: bool = False  # closed by the server before echoing anything


@dataclass
class EchoResult:
    served: int  # connections that got their whole echo back
    refused: int  # connections the server closed before echoing a byte
    bytes: int  # bytes echoed in all


def echo_many(
    port: int,
    connections: int,
    sizes: Sequence[int] = (1, 65536),
    chunk_sizes: Sequence[int] = (1, 8192),
    seed: int = 0,
    timeout: float = 60,
    allow_refused: bool = False,
) -> EchoResult:
    """Open ``connections`` at once, send each random bytes in random chunks, check the echo.

    Each connection's payload length is drawn from ``sizes`` (inclusive range)
    and split at random points into chunks of ``chunk_sizes``. Every connection
    must get back exactly its bytes, in order, before ``timeout``; with
    ``allow_refused`` one may instead be closed by the server before it echoed
    anything (counted in ``refused``). A connection closed after a partial echo
    always fails the test.
    """
    rng = random.Random(seed)
    conns: list[_Conn] = []
    with selectors.DefaultSelector() as selector:
        try:
            for _ in range(connections):
                payload = rng.randbytes(rng.randint(*sizes))
                chunks = _split(rng, len(payload), chunk_sizes)
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                conn = _Conn(sock, payload, chunks)
                conns.append(conn)
                sock.setblocking(False)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.connect_ex((HOST, port))
                selector.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE, conn)
            _pump(selector, conns, time.monotonic() + timeout, allow_refused)
        finally:
            for conn in conns:
                conn.sock.close()
    served = [conn for conn in conns if conn.done]
    return EchoResult(len(served), len(conns) - len(served), sum(len(c.payload) for c in served))


def _split(rng: random.Random, total: int, chunk_sizes: Sequence[int]) -> list[int]:
    chunks = []
    while total > 0:
        size = min(total, rng.randint(*chunk_sizes))
        chunks.append(size)
        total -= size
    return chunks


def _pump(selector: selectors.BaseSelector, conns: list[_Conn], deadline: float, allow_refused: bool) -> None:
    pending = len(conns)
    while pending:
        left = deadline - time.monotonic()
        if left <= 0:
            unfinished = [c for c in conns if not (c.done or c.refused)]
            worst = unfinished[0]
            raise AssertionError(
                f"{len(unfinished)} of {len(conns)} connections unfinished; e.g. sent "
                f"{worst.sent}/{len(worst.payload)}, received {len(worst.received)}"
            )
        for key, events in selector.select(min(left, 1.0)):
            conn: _Conn = key.data
            try:
                if events & selectors.EVENT_WRITE:
                    _send_chunk(selector, conn)
                finished = bool(events & selectors.EVENT_READ) and _receive(selector, conn)
            except (ConnectionResetError, BrokenPipeError):
                finished = _closed_by_server(selector, conn, allow_refused)
            if finished:
                pending -= 1


def _closed_by_server(selector: selectors.BaseSelector, conn: _Conn, allow_refused: bool) -> bool:
    if conn.received or not allow_refused:
        raise AssertionError(
            f"connection closed by the server after {len(conn.received)} of {len(conn.payload)} bytes"
        )
    conn.refused = True
    selector.unregister(conn.sock)
    return True


def _send_chunk(selector: selectors.BaseSelector, conn: _Conn) -> None:
    if not conn.chunk_left:
        conn.chunk_left = conn.chunks.pop(0)
    start = conn.sent
    try:
        n = conn.sock.send(conn.payload[start : start + conn.chunk_left])
    except (BlockingIOError, InterruptedError):
        return
    conn.sent += n
    conn.chunk_left -= n
    if conn.sent == len(conn.payload):
        selector.modify(conn.sock, selectors.EVENT_READ, conn)


def _receive(selector: selectors.BaseSelector, conn: _Conn) -> bool:
    """Read what arrived; True when this connection is finished (all echoed, or closed)."""
    try:
        data = conn.sock.recv(262144)
    except (BlockingIOError, InterruptedError):
        return False
    if not data:
        raise ConnectionResetError("EOF")  # handled as a close by the server
    conn.received += data
    if conn.received != conn.payload[: len(conn.received)]:
        raise AssertionError(f"echo differs from what was sent, within the first {len(conn.received)} bytes")
    if len(conn.received) < len(conn.payload):
        return False
    conn.done = True
    selector.unregister(conn.sock)
    return True


def read_until_closed(sock: socket.socket, timeout: float = 10) -> tuple[bytes, BaseException | None]:
    """Everything the peer sends until it closes (EOF or reset), and the error if it reset."""
    sock.settimeout(timeout)
    data = bytearray()
    while True:
        try:
            chunk = sock.recv(262144)
        except ConnectionResetError as exc:
            return bytes(data), exc
        if not chunk:
            return bytes(data), None
        data += chunk


def is_closed_by_peer(sock: socket.socket, timeout: float = 10) -> bool:
    """True when the peer closes (EOF or reset) before ``timeout`` with nothing to read."""
    data, _ = read_until_closed(sock, timeout)
    return data == b""
