"""The echo load generator: a single-threaded epoll client that verifies every echoed byte.

Run as its own process, pinned to the core the server is not on::

    python -m benchmarks.loadgen echo --port P --server-pid PID --conns N --size M \
        --warmup S --duration S
    python -m benchmarks.loadgen hold --port P --conns N --base B

``echo``: N connections each do request/response with M-byte random payloads.
After ``--warmup`` seconds the measured window opens: the server's CPU time is
read from /proc/PID/stat at its start and end by this process, so the round
trips counted and the CPU time read cover exactly the same interval (a server
of several processes, a supervisor and its workers, passes ``--server-pid``
once for each: their CPU times are added). After the
window no new request is sent; outstanding ones are drained (bounded) so that a
lost reply is counted, not ignored. One JSON object is printed on stdout.

``hold``: opens ``--base`` connections (one verified round trip each), prints
``READY <n>``, waits for a line on stdin, opens the rest up to N, prints
``READY <n>`` again, and waits for a last line before closing them all. The
orchestrator measures the server's memory at each READY.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import select
import socket
import sys
import time
from array import array
from collections.abc import Callable
from typing import Any

from benchmarks._proc import cpu_seconds, machine_busy_seconds, raise_nofile
from benchmarks._stats import percentile

HOST = "127.0.0.1"
POOL_SIZE = 1 << 22
STRIDE = 7919  # a prime, so that successive payloads start at scattered offsets
CONNECT_BATCH = 32  # below any listen backlog we use, so no SYN is ever dropped
DRAIN_SECONDS = 10.0
RECV_SIZE = 1 << 16  # larger buffers are malloc()ed with mmap: a syscall per recv


class Conn:
    """One client connection: what it sent last and what has come back so far."""

    __slots__ = ("buf", "expected", "offset", "pending", "sent_at", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()
        self.expected = b""
        self.pending = b""  # the unsent tail of a request, after a partial send
        self.offset = 0
        self.sent_at = 0.0


class Counters:
    """Everything the client counts; window figures are reset when the window opens."""

    __slots__ = ("bytes_verified", "error_samples", "errors", "latencies", "mismatches", "rts", "rts_total")

    def __init__(self) -> None:
        self.bytes_verified = 0
        self.errors = 0
        self.error_samples: list[str] = []
        self.latencies = array("d")
        self.mismatches = 0
        self.rts = 0
        self.rts_total = 0


class Client:
    """N connections to one server, driven by one epoll loop."""

    def __init__(self, port: int, size: int, seed: int) -> None:
        self.port = port
        self.size = size
        rnd = random.Random(seed)
        self.pool = rnd.randbytes(POOL_SIZE + size)
        self.limit = POOL_SIZE
        self.next_offset = seed % POOL_SIZE
        self.ep = select.epoll()
        self.conns: dict[int, Conn] = {}
        self.outstanding = 0
        self.sending = False  # whether a completed round trip starts the next one
        self.c = Counters()

    # -- connections -------------------------------------------------------

    def open(self, count: int, timeout: float = 30.0) -> None:
        """Open ``count`` more connections, a batch at a time, each proven by one round trip."""
        while count > 0:
            batch = min(CONNECT_BATCH, count)
            for _ in range(batch):
                self._connect_one()
            if not self.run_until(lambda: self.outstanding == 0, time.perf_counter() + timeout):
                for conn in [c for c in self.conns.values() if c.expected]:
                    self._fail(conn, f"no reply to the first request within {timeout:.0f} s")
            count -= batch

    def _connect_one(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(10.0)
        try:
            sock.connect((HOST, self.port))
        except OSError as exc:
            sock.close()
            self._count_error(f"connect: {exc!r}")
            return
        sock.setblocking(False)
        conn = Conn(sock)
        self.conns[sock.fileno()] = conn
        self.ep.register(sock.fileno(), select.EPOLLIN)
        self._send_request(conn, time.perf_counter())

    def start_load(self) -> None:
        """Every connection starts its request/response loop."""
        self.sending = True
        now = time.perf_counter()
        for conn in list(self.conns.values()):
            self._send_request(conn, now)

    def close_all(self) -> None:
        for conn in self.conns.values():
            conn.sock.close()
        self.conns.clear()
        self.ep.close()

    def _count_error(self, what: str) -> None:
        self.c.errors += 1
        if len(self.c.error_samples) < 5:
            self.c.error_samples.append(what)

    def _fail(self, conn: Conn, what: str) -> None:
        self._count_error(what)
        if conn.expected:
            self.outstanding -= 1
            conn.expected = b""
        fd = conn.sock.fileno()
        self.conns.pop(fd, None)
        self.ep.unregister(fd)
        conn.sock.close()

    # -- request / response ------------------------------------------------

    def _send_request(self, conn: Conn, now: float) -> None:
        offset = self.next_offset
        self.next_offset = (offset + STRIDE) % self.limit
        payload = self.pool[offset : offset + self.size]
        conn.expected = payload
        conn.sent_at = now
        self.outstanding += 1
        try:
            sent = conn.sock.send(payload)
        except OSError as exc:
            self._fail(conn, f"send: {exc!r}")
            return
        if sent < len(payload):
            conn.pending = payload[sent:]
            self.ep.modify(conn.sock.fileno(), select.EPOLLIN | select.EPOLLOUT)

    def _flush(self, conn: Conn) -> None:
        try:
            sent = conn.sock.send(conn.pending)
        except BlockingIOError:
            return
        except OSError as exc:
            self._fail(conn, f"send: {exc!r}")
            return
        conn.pending = conn.pending[sent:]
        if not conn.pending:
            self.ep.modify(conn.sock.fileno(), select.EPOLLIN)

    def _receive(self, conn: Conn) -> None:
        try:
            data = conn.sock.recv(RECV_SIZE)
        except BlockingIOError:
            return
        except OSError as exc:
            self._fail(conn, f"recv: {exc!r}")
            return
        if not data:
            self._fail(conn, "closed by the server")
            return
        expected = conn.expected
        if not expected:  # bytes nobody asked for: the server sent more than it was sent
            self.c.mismatches += 1
            return
        size = len(expected)
        if not conn.buf and len(data) == size:
            whole = data  # the common case: the reply arrived in one piece
        else:
            conn.buf += data
            if len(conn.buf) < size:
                return
            whole = bytes(conn.buf)
            conn.buf.clear()
        self._complete(conn, whole, expected)

    def _complete(self, conn: Conn, whole: bytes, expected: bytes) -> None:
        now = time.perf_counter()
        c = self.c
        if whole != expected:
            c.mismatches += 1
        else:
            c.bytes_verified += len(whole)
        c.latencies.append(now - conn.sent_at)
        c.rts += 1
        c.rts_total += 1
        conn.expected = b""
        self.outstanding -= 1
        if self.sending:
            self._send_request(conn, now)

    def run_until(self, done: Callable[[], bool], deadline: float) -> bool:
        """Serve events until ``done()`` or ``deadline``; return whether ``done()`` held."""
        conns = self.conns
        poll = self.ep.poll
        while not done():
            now = time.perf_counter()
            if now >= deadline:
                return False
            for fd, ev in poll(min(0.05, deadline - now)):
                conn = conns.get(fd)
                if conn is None:
                    continue
                if ev & select.EPOLLOUT and conn.pending:
                    self._flush(conn)
                if ev & (select.EPOLLIN | select.EPOLLERR | select.EPOLLHUP):
                    self._receive(conn)
        return True


def run_echo(args: argparse.Namespace) -> dict[str, Any]:
    client = Client(args.port, args.size, args.seed)
    t0 = time.perf_counter()
    client.open(args.conns)
    connected = len(client.conns)
    connect_s = time.perf_counter() - t0
    c = client.c
    client.start_load()
    client.run_until(lambda: False, time.perf_counter() + args.warmup)
    c.rts = 0
    c.latencies = array("d")
    me = os.getpid()
    w_all0, w_me0 = machine_busy_seconds(), cpu_seconds(me)
    pids: list[int] = args.server_pid
    w_cpu0, w_srv0, w_t0 = time.process_time(), _cpu_of(pids), time.perf_counter()
    client.run_until(lambda: False, w_t0 + args.duration)
    window_rts, lat = c.rts, sorted(c.latencies)
    w_t1, w_srv1, w_cpu1 = time.perf_counter(), _cpu_of(pids), time.process_time()
    w_me1, w_all1 = cpu_seconds(me), machine_busy_seconds()
    client.sending = False
    drained = client.run_until(lambda: client.outstanding == 0, time.perf_counter() + args.drain)
    lost = client.outstanding
    client.close_all()
    seconds = w_t1 - w_t0
    server_cpu = w_srv1 - w_srv0
    return {
        "conns_wanted": args.conns,
        "connected": connected,
        "connect_seconds": connect_s,
        "size": args.size,
        "seconds": seconds,
        "round_trips": window_rts,
        "round_trips_total": c.rts_total,
        "rt_per_s": window_rts / seconds,
        "mb_per_s": window_rts * args.size / seconds / 1e6,
        "server_cpu_s": server_cpu,
        "server_cpu_us_per_rt": server_cpu / window_rts * 1e6 if window_rts else None,
        "server_util": server_cpu / seconds,
        "client_util": (w_cpu1 - w_cpu0) / seconds,
        # CPU the rest of the machine used meanwhile (in cores): work that competed for the cores.
        "others_cores": max(0.0, (w_all1 - w_all0) - server_cpu - (w_me1 - w_me0)) / seconds,
        "p50_us": _us(percentile(lat, 0.50)),
        "p99_us": _us(percentile(lat, 0.99)),
        "bytes_verified": c.bytes_verified,
        "mismatches": c.mismatches,
        "errors": c.errors,
        "error_samples": c.error_samples,
        "lost": lost,
        "drained": drained,
    }


def _cpu_of(pids: list[int]) -> float:
    return sum(cpu_seconds(pid) for pid in pids)


def _us(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1e6


def run_hold(args: argparse.Namespace) -> None:
    client = Client(args.port, args.size, args.seed)
    for target in (args.base, args.conns):
        client.open(max(0, target - len(client.conns)))
        c = client.c
        status = {
            "connected": len(client.conns),
            "mismatches": c.mismatches,
            "errors": c.errors,
            "error_samples": c.error_samples,
        }
        print("READY " + json.dumps(status), flush=True)
        if not sys.stdin.readline():
            break
    client.close_all()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.loadgen", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    for mode in ("echo", "hold"):
        p = sub.add_parser(mode)
        p.add_argument("--port", type=int, required=True)
        p.add_argument("--conns", type=int, required=True)
        p.add_argument("--size", type=int, default=64)
        p.add_argument("--seed", type=int, default=os.getpid())
    echo = sub.choices["echo"]
    echo.add_argument(
        "--server-pid",
        type=int,
        action="append",
        required=True,
        help="a server process whose CPU time is read (repeat for a supervisor and its workers)",
    )
    echo.add_argument("--warmup", type=float, default=0.5)
    echo.add_argument("--duration", type=float, default=2.0)
    echo.add_argument(
        "--drain",
        type=float,
        default=DRAIN_SECONDS,
        help="seconds to wait for outstanding replies after the window",
    )
    sub.choices["hold"].add_argument("--base", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    raise_nofile()
    if args.mode == "echo":
        print(json.dumps(run_echo(args)), flush=True)
    else:
        run_hold(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
