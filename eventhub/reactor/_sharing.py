"""Listening sockets shared between the workers of ``eventhub run --workers N``.

A worker does not bind its listening sockets itself: it asks the supervisor,
over the UNIX socket it inherited, for the socket of (family, address,
backlog) and receives the descriptor (``SCM_RIGHTS``). The supervisor makes one
socket per worker slot and address, with ``SO_REUSEPORT`` where the platform
has it, so the kernel spreads connections over the workers; without it, one
socket all workers accept from.

Why the supervisor holds them: a worker that dies, or is replaced by a rolling
restart (SIGHUP), closes only its own descriptor; the socket, with the
connections waiting in its queue, stays open for the next worker of that slot.
A worker binding its own ``SO_REUSEPORT`` socket would reset those connections
when it closed it. It also makes port 0 mean one port for all workers.

The conversation is one request per listener, in the order the worker's
plugins listen (the same in every worker, so the n-th request for an address
gets the n-th socket of the slot)::

    worker -> supervisor  {"listen": [family, sockaddr, backlog, socket_buffer]}\\n
    supervisor -> worker  b"ok" with the descriptor, or b"error: <reason>"
    worker -> supervisor  {"ready": true}\\n      once eventhub.started is emitted
    supervisor -> worker  {"stop": {"drain": seconds}}\\n    a rolling restart replaces it
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
from collections.abc import Callable
from typing import Any

__all__ = ["CHANNEL_ENV", "WORKER_ENV", "SharedSockets"]

#: The descriptor of the worker's end of its channel to the supervisor.
CHANNEL_ENV = "EVENTHUB_WORKER_CHANNEL"
#: The worker's index (0 to N-1), for log lines and ``eventhub.started``.
WORKER_ENV = "EVENTHUB_WORKER"


class SharedSockets:
    """A worker's side of the channel: ask for listening sockets, say when ready."""

    def __init__(self, channel: socket.socket) -> None:
        self._channel = channel

    @classmethod
    def from_environment(cls) -> SharedSockets | None:
        """The channel this process inherited as a worker, or None when it is not one."""
        fd = os.environ.get(CHANNEL_ENV)
        if not fd:
            return None
        channel = socket.socket(fileno=int(fd))
        channel.setblocking(True)
        return cls(channel)

    def listening_socket(
        self,
        family: int,
        sockaddr: tuple[Any, ...],
        backlog: int,
        socket_buffer: int = 0,
        kind: str = "tcp",
        mode: int = 0o600,
    ) -> socket.socket:
        """The supervisor's socket for this address (``OSError`` with its reason if none).

        ``kind``: ``tcp`` (one per worker slot), ``udp`` (one per slot, bound, not
        listening), ``unix`` (one for every worker; ``sockaddr`` is ``(path,)``).
        """
        address: Any = sockaddr[0] if kind == "unix" else list(sockaddr)
        self._send({"listen": [family, address, backlog, socket_buffer, kind, mode]})
        message, fds, _flags, _address = socket.recv_fds(self._channel, 1024, 1)
        if message.startswith(b"ok") and fds:
            return socket.socket(fileno=fds[0])
        for fd in fds:
            os.close(fd)
        reason = message.decode(errors="replace").removeprefix("error: ") or "the supervisor is gone"
        raise OSError(errno.EADDRNOTAVAIL, reason)

    def fileno(self) -> int:
        return self._channel.fileno()

    def ready(self) -> None:
        """Tell the supervisor this worker serves (a rolling restart waits for it)."""
        with contextlib.suppress(OSError):  # the supervisor is gone: nobody to tell
            self._send({"ready": True})

    def watch(
        self, add_reader: Callable[[int, Callable[[], None]], None], stop: Callable[[float], None]
    ) -> None:
        """Call ``stop(drain)`` when the supervisor says so, or ``stop(0)`` once it is gone.

        The supervisor replacing this worker (a rolling restart) asks it to stop
        with ``{"stop": {"drain": seconds}}``, so that the connections it
        accepted end by themselves. Workers run in their own session (Ctrl-C
        reaches the supervisor only): without the EOF check, a supervisor
        killed outright would leave them serving.
        """
        channel = self._channel
        buffer = bytearray()

        def readable() -> None:
            try:
                data = channel.recv(4096, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                stop(0.0)
                return
            buffer.extend(data)
            while b"\n" in buffer:
                line, _, rest = bytes(buffer).partition(b"\n")
                buffer[:] = rest
                order = json.loads(line).get("stop")
                if isinstance(order, dict):
                    stop(float(order.get("drain", 0.0)))

        add_reader(channel.fileno(), readable)

    def _send(self, message: dict[str, Any]) -> None:
        self._channel.sendall(json.dumps(message).encode() + b"\n")
