"""``eventhub run --workers N``: N worker processes, each a full hub, serving the same sockets.

The command line has already loaded the configuration and the plugins once
(a broken plugin or setting fails there, once, as without workers). The
supervisor then starts N workers: ``python -m eventhub`` with the same
arguments and ``--only`` the plugins that loaded, each holding one end of a
UNIX socket pair to the supervisor, through which it receives its listening
sockets (``eventhub.reactor._sharing`` says why and how) and says when it is
ready.

- A worker that dies is restarted after a delay that doubles with each quick
  death (0.1 s up to 5 s; one that ran a minute starts over); after
  ``MAX_QUICK_DEATHS`` deaths in a row within ``QUICK`` seconds of starting,
  the supervisor gives up: it stops the others and exits 1.
- SIGTERM or SIGINT: every worker gets SIGTERM and stops gracefully (its own
  grace period); one still running after ``STOP_TIMEOUT`` is killed. Exit 0.
- SIGHUP: a rolling restart. A new generation starts (re-reading the
  configuration and the installed plugins), and once every new worker is ready,
  the old ones stop accepting and let their connections end (up to ``DRAIN``
  seconds) before closing the rest. The sockets stay open throughout, so a
  client connecting meanwhile is never refused. If the new generation fails to
  become ready, it is stopped and the old one goes on.

Log lines of workers begin with ``[worker I pid P]``; the supervisor's with
``[supervisor pid P]``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from eventhub.reactor._sharing import CHANNEL_ENV, WORKER_ENV
from eventhub.reactor._tcp import listening_socket
from eventhub.reactor._unix import unix_listening_socket

__all__ = ["Supervisor", "usable_cores"]

log = logging.getLogger("eventhub.supervisor")

QUICK = 10.0  # a worker that dies within this many seconds of starting died "quickly"
MAX_QUICK_DEATHS = 5
MAX_BACKOFF = 5.0
STOP_TIMEOUT = 15.0  # the workers' own grace period (5 s) and then some
READY_TIMEOUT = 60.0
DRAIN = 5.0  # how long a replaced worker lets its connections end by themselves


def usable_cores() -> int:
    """The cores this process may run on (``--workers auto``)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


@dataclass(eq=False)
class Worker:
    """One worker process and the supervisor's end of its channel."""

    slot: int
    generation: int
    process: subprocess.Popen[bytes]
    channel: socket.socket
    started: float
    buffer: bytearray = field(default_factory=bytearray)
    requests: dict[str, int] = field(default_factory=dict)  # address -> how many it asked for
    ready: bool = False
    stopping: bool = False

    @property
    def pid(self) -> int:
        return self.process.pid


class Supervisor:
    """Start, watch, restart and stop the workers (one per slot)."""

    def __init__(self, count: int, argv: Sequence[str], environment: Mapping[str, str] | None = None) -> None:
        self.count = count
        self.argv = list(argv)
        self.environment = dict(environment or {})
        self.workers: list[Worker] = []
        self.generation = 0
        self.sockets: dict[tuple[int, str, int], socket.socket] = {}  # (slot, address, n) -> socket
        self.files: list[str] = []  # UNIX socket files the supervisor made
        self.reuse_port = hasattr(socket, "SO_REUSEPORT")
        self.deaths: dict[int, int] = {}  # slot -> quick deaths in a row
        self.pending_restarts: dict[int, float] = {}  # slot -> when to start it again
        self.selector = selectors.DefaultSelector()
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_r.setblocking(False)
        self.wake_w.setblocking(False)
        self.signals: list[int] = []
        self.status = 0

    # -- running ----------------------------------------------------------------

    def run(self) -> int:
        previous = {sig: signal.signal(sig, self._on_signal) for sig in _SIGNALS}
        old_wakeup = signal.set_wakeup_fd(self.wake_w.fileno(), warn_on_full_buffer=False)
        self.selector.register(self.wake_r, selectors.EVENT_READ)
        try:
            log.info("starting %d workers", self.count)
            for slot in range(self.count):
                self._start(slot)
            self._loop()
        finally:
            signal.set_wakeup_fd(old_wakeup)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            for sock in self.sockets.values():
                sock.close()
            for path in self.files:
                with contextlib.suppress(OSError):
                    os.unlink(path)
            self.selector.close()
            self.wake_r.close()
            self.wake_w.close()
        return self.status

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.signals.append(signum)  # handled by the loop; set_wakeup_fd wakes it

    def _loop(self) -> None:
        rolling: list[Worker] | None = None  # the old generation, while a new one starts
        deadline = 0.0
        while True:
            for key, _ in self.selector.select(timeout=0.1):
                if key.fileobj is self.wake_r:
                    with contextlib.suppress(OSError):
                        self.wake_r.recv(4096)
                else:
                    self._serve_channel(key.data)
            while self.signals:
                signum = self.signals.pop(0)
                if signum == getattr(signal, "SIGHUP", None):
                    if rolling is None:
                        rolling, deadline = self._begin_rolling_restart(), time.monotonic() + READY_TIMEOUT
                    continue
                log.info("received %s: stopping the workers", signal.Signals(signum).name)
                self._stop_all(self.workers)
                return
            self._reap()
            if self.status:
                self._stop_all(self.workers)
                return
            if rolling is not None:
                rolling = self._continue_rolling_restart(rolling, deadline)
            self._restart_due()

    # -- workers -----------------------------------------------------------------

    def _start(self, slot: int) -> Worker:
        mine, theirs = socket.socketpair()
        env = {**os.environ, **self.environment, CHANNEL_ENV: str(theirs.fileno()), WORKER_ENV: str(slot)}
        process = subprocess.Popen(
            [sys.executable, "-m", "eventhub", *self.argv],
            env=env,
            pass_fds=[theirs.fileno()],
            # Its own session: Ctrl-C in a terminal reaches the supervisor only, which
            # then stops the workers once, gracefully (not twice: a second signal aborts).
            start_new_session=True,
        )
        theirs.close()
        mine.setblocking(False)
        worker = Worker(slot, self.generation, process, mine, time.monotonic())
        self.workers.append(worker)
        self.selector.register(mine, selectors.EVENT_READ, worker)
        log.info("worker %d started (pid %d)", slot, worker.pid)
        return worker

    def _serve_channel(self, worker: Worker) -> None:
        try:
            data = worker.channel.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._forget_channel(worker)
            return
        worker.buffer += data
        while b"\n" in worker.buffer:
            line, _, rest = bytes(worker.buffer).partition(b"\n")
            worker.buffer[:] = rest
            self._answer(worker, json.loads(line))

    def _answer(self, worker: Worker, request: dict[str, Any]) -> None:
        if request.get("ready"):
            worker.ready = True
            log.debug("worker %d (pid %d) is ready", worker.slot, worker.pid)
            return
        family, sockaddr, backlog, socket_buffer, kind, mode = request["listen"]
        if kind == "unix":
            sockaddr = [sockaddr]
        address = json.dumps([kind, family, sockaddr])
        nth = worker.requests.get(address, 0)
        worker.requests[address] = nth + 1
        try:
            if kind == "unix":
                sock = self._unix_socket(sockaddr[0], backlog, mode, address, nth)
            else:
                sizes = (backlog, socket_buffer)
                sock = self._socket_for(worker.slot, family, tuple(sockaddr), sizes, address, nth, kind)
        except OSError as error:
            message = f"error: {error.strerror or error}".encode()
            with contextlib.suppress(OSError):
                worker.channel.setblocking(True)
                worker.channel.sendall(message)
                worker.channel.setblocking(False)
            return
        worker.channel.setblocking(True)
        try:
            socket.send_fds(worker.channel, [b"ok"], [sock.fileno()])
        except OSError:
            pass  # it died meanwhile: reaped soon
        finally:
            worker.channel.setblocking(False)

    def _socket_for(
        self,
        slot: int,
        family: int,
        sockaddr: tuple[Any, ...],
        sizes: tuple[int, int],
        address: str,
        nth: int,
        kind: str = "tcp",
    ) -> socket.socket:
        """Slot ``slot``'s socket for ``address`` (the ``nth`` asked for): made once, kept."""
        key = (slot if self.reuse_port else 0, address, nth)
        sock = self.sockets.get(key)
        if sock is not None:
            return sock
        # Port 0 means one free port for every worker: the first socket made picks it.
        for (_, other, other_nth), made in self.sockets.items():
            if other == address and other_nth == nth:
                sockaddr = (sockaddr[0], made.getsockname()[1], *sockaddr[2:])
                break
        backlog, socket_buffer = sizes
        if kind == "udp":  # one per slot too: the kernel spreads datagrams over them
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                if self.reuse_port:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                sock.bind(sockaddr)
            except BaseException:
                sock.close()
                raise
        else:
            sock = listening_socket(
                family, sockaddr, backlog, socket_buffer=socket_buffer, reuse_port=self.reuse_port
            )
        self.sockets[key] = sock
        return sock

    def _unix_socket(self, path: str, backlog: int, mode: int, address: str, nth: int) -> socket.socket:
        """One listening UNIX socket for all workers (made once; its file goes when the supervisor ends)."""
        key = (0, address, nth)
        sock = self.sockets.get(key)
        if sock is None:
            sock = unix_listening_socket(path, backlog, mode)
            self.sockets[key] = sock
            if not path.startswith("\0"):
                self.files.append(path)
        return sock

    def _forget_channel(self, worker: Worker) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(worker.channel)
        worker.channel.close()

    def _reap(self) -> None:
        for worker in list(self.workers):
            status = worker.process.poll()
            if status is None:
                continue
            self.workers.remove(worker)
            if worker.channel.fileno() >= 0:
                self._forget_channel(worker)
            if worker.stopping:
                continue
            self._died(worker, status)

    def _died(self, worker: Worker, status: int) -> None:
        how = (
            f"was killed by {signal.Signals(-status).name}" if status < 0 else f"exited with status {status}"
        )
        lived = time.monotonic() - worker.started
        quick = self.deaths.get(worker.slot, 0) + 1 if lived < QUICK else 0
        self.deaths[worker.slot] = quick
        if quick >= MAX_QUICK_DEATHS:
            log.error(
                "worker %d (pid %d) %s; it died %d times in a row within %.0fs of starting: giving up",
                worker.slot,
                worker.pid,
                how,
                quick,
                QUICK,
            )
            self.status = 1
            return
        delay = min(MAX_BACKOFF, 0.1 * 2 ** max(0, quick - 1)) if quick else 0.1
        log.warning("worker %d (pid %d) %s; restarting it in %.1fs", worker.slot, worker.pid, how, delay)
        self.pending_restarts[worker.slot] = time.monotonic() + delay

    def _restart_due(self) -> None:
        now = time.monotonic()
        for slot, when in list(self.pending_restarts.items()):
            if when <= now:
                del self.pending_restarts[slot]
                self._start(slot)

    def _stop_all(self, workers: list[Worker], drain: float = 0.0) -> None:
        """Stop ``workers`` gracefully: SIGTERM, or (``drain``) ask them to let connections end first."""
        for worker in workers:
            worker.stopping = True
            with contextlib.suppress(OSError):
                if drain and worker.channel.fileno() >= 0:
                    worker.channel.setblocking(True)
                    worker.channel.sendall(json.dumps({"stop": {"drain": drain}}).encode() + b"\n")
                else:
                    worker.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for worker in workers:
            try:
                worker.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("worker %d (pid %d) did not stop in time: killing it", worker.slot, worker.pid)
                worker.process.kill()
                worker.process.wait()
        for worker in workers:
            if worker in self.workers:
                self.workers.remove(worker)
            if worker.channel.fileno() >= 0:
                self._forget_channel(worker)

    # -- rolling restart -------------------------------------------------------------

    def _begin_rolling_restart(self) -> list[Worker]:
        old = list(self.workers)
        self.generation += 1
        log.info("received SIGHUP: starting %d new workers, then stopping the old ones", self.count)
        for slot in range(self.count):
            self._start(slot)
        return old

    def _continue_rolling_restart(self, old: list[Worker], deadline: float) -> list[Worker] | None:
        new = [w for w in self.workers if w.generation == self.generation]
        if len(new) == self.count and all(w.ready for w in new):
            log.info("new workers ready: stopping the old ones (pids %s)", ", ".join(str(w.pid) for w in old))
            self._stop_all(old, drain=DRAIN)
            return None
        if time.monotonic() > deadline or len(new) < self.count:
            log.error("the new workers did not all become ready: keeping the old ones")
            self._stop_all(new)
            self.generation -= 1
            return None
        return old


_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))
