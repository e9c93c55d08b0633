"""Quick check of the reactor's hot path: echo server CPU per round trip vs a bare epoll loop.

    python benchmarks/reactor_echo_quick.py [--conns 100] [--size 64] [--seconds 3] [--rounds 3]

Each server runs in its own process pinned to CPU 0; this process is the load
generator (a bare epoll client, pinned to CPU 1) keeping one message in flight
per connection. The figure is the server's CPU time (user + system, from
/proc/PID/stat) divided by the round trips it served in the measured window,
which holds even when the load generator is the bottleneck. Rounds alternate
the servers; the median of each is reported, with their ratio.

It then measures Python memory per idle connection on the eventhub server
(tracemalloc in the server process: after N idle connections minus before).
The full comparison with asyncio, uvloop and Twisted lives elsewhere in benchmarks/.
"""

from __future__ import annotations

import argparse
import os
import select
import socket
import statistics
import subprocess
import sys
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")

BARE_SERVER = """
import select, socket, sys
ls = socket.socket(); ls.bind(("127.0.0.1", 0)); ls.listen(1024); ls.setblocking(False)
ep = select.epoll(); ep.register(ls.fileno(), select.EPOLLIN); conns = {}
print(ls.getsockname()[1], flush=True)
while True:
    for fd, ev in ep.poll():
        if fd == ls.fileno():
            c, _ = ls.accept(); c.setblocking(False)
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conns[c.fileno()] = c; ep.register(c.fileno(), select.EPOLLIN)
        else:
            c = conns[fd]; data = c.recv(65536)
            if data: c.send(data)
            else: ep.unregister(fd); c.close(); del conns[fd]
"""

EVENTHUB_SERVER = """
import sys
from eventhub.protocol import Protocol, ServerFactory
from eventhub.reactor import Reactor

class Echo(Protocol):
    def data_received(self, data):
        self.transport.write(data)

reactor = Reactor(sys.argv[1])
factory = ServerFactory()
factory.protocol = Echo
print(reactor.listen_tcp(0, factory, backlog=1024).get_host().port, flush=True)
reactor.run()
"""

MEMORY_SERVER = """
import sys, tracemalloc
tracemalloc.start()
from eventhub.protocol import Protocol, ServerFactory
from eventhub.reactor import Reactor

N = int(sys.argv[2])
made = []

class Echo(Protocol):
    def connection_made(self, transport):
        self.transport = transport
        made.append(1)
        if len(made) == N:
            reactor.call_later(0.2, report)

    def data_received(self, data):
        self.transport.write(data)

def report():
    now = tracemalloc.get_traced_memory()[0]
    print(now - base[0], flush=True)
    reactor.stop()

reactor = Reactor(sys.argv[1])
factory = ServerFactory()
factory.protocol = Echo
port = reactor.listen_tcp(0, factory, backlog=4096).get_host().port
base = []
def baseline():
    base.append(tracemalloc.get_traced_memory()[0])
    print(port, flush=True)
reactor.call_soon(baseline)  # after the loop's own first allocations
reactor.run(install_signal_handlers=False)
"""


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def start_server(code: str, *args: str) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # the bare loop dies noisily on the final resets
        text=True,
        preexec_fn=lambda: os.sched_setaffinity(0, {0}),
    )
    assert proc.stdout is not None
    return proc, int(proc.stdout.readline())


def load(port: int, conns: int, size: int, seconds: float, pid: int) -> float:
    """Ping-pong on every connection; return server CPU microseconds per round trip."""
    socks = []
    for _ in range(conns):
        s = socket.create_connection(("127.0.0.1", port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        socks.append(s)
    by_fd = {s.fileno(): s for s in socks}
    pending = dict.fromkeys(by_fd, 0)
    ep = select.epoll()
    for fd in by_fd:
        ep.register(fd, select.EPOLLIN)
    msg = b"x" * size
    for s in socks:
        s.send(msg)

    def run_for(duration: float) -> int:
        trips = 0
        deadline = time.monotonic() + duration
        while time.monotonic() < deadline:
            for fd, _ in ep.poll(1):
                got = pending[fd] + len(by_fd[fd].recv(65536))
                while got >= size:
                    got -= size
                    trips += 1
                    by_fd[fd].send(msg)
                pending[fd] = got
        return trips

    run_for(0.5)  # warm up
    cpu0 = cpu_seconds(pid)
    trips = run_for(seconds)
    cpu1 = cpu_seconds(pid)
    ep.close()
    for s in socks:
        s.close()
    return (cpu1 - cpu0) / trips * 1e6


def measure(kind: str, args: argparse.Namespace) -> float:
    code, extra = (BARE_SERVER, ()) if kind == "bare" else (EVENTHUB_SERVER, (args.backend,))
    proc, port = start_server(code, *extra)
    try:
        return load(port, args.conns, args.size, args.seconds, proc.pid)
    finally:
        proc.kill()
        proc.wait()


def memory_per_connection(backend: str, n: int) -> float:
    proc, port = start_server(MEMORY_SERVER, backend, str(n))
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
    try:
        assert proc.stdout is not None
        grown = int(proc.stdout.readline())
        proc.wait(30)
    finally:
        for s in socks:
            s.close()
        proc.kill()
        proc.wait()
    return grown / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--conns", type=int, default=100)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backend", default="epoll")
    parser.add_argument("--idle", type=int, default=2000, help="connections for the memory figure")
    args = parser.parse_args()
    os.sched_setaffinity(0, {1} if os.cpu_count() and os.cpu_count() > 1 else {0})  # type: ignore[operator]
    results: dict[str, list[float]] = {"bare": [], "eventhub": []}
    for r in range(args.rounds):
        for kind in ("bare", "eventhub"):
            us = measure(kind, args)
            results[kind].append(us)
            print(f"round {r + 1}: {kind:9s} {us:6.2f} us server CPU per round trip", flush=True)
    bare = statistics.median(results["bare"])
    ours = statistics.median(results["eventhub"])
    print(f"\nmedian  bare epoll loop: {bare:.2f} us/rt   eventhub ({args.backend}): {ours:.2f} us/rt")
    print(f"ratio eventhub / bare: {ours / bare:.3f}  (goal <= 1.1)")
    per_conn = memory_per_connection(args.backend, args.idle)
    print(f"Python memory per idle connection: {per_conn:.0f} bytes  (goal <= 1024)")


if __name__ == "__main__":
    main()
