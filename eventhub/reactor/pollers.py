"""Readiness backends (select, poll, epoll) behind one small interface, chosen in one place.

The loop never knows which backend it has: it calls ``register``/``modify``/
``unregister`` with a mask of ``READ``/``WRITE`` and reads ``(fd, events)``
pairs back from ``poll``. The event bits are poll(2)'s (``POLLIN`` = 1,
``POLLOUT`` = 4, ``POLLERR``/``POLLHUP``/``POLLNVAL``) so that ``poll`` and
``epoll`` results go to the loop as the kernel produced them, without a
per-event translation; ``select`` builds the same pairs.

Third-party backends: a distribution declares an entry point in the group
``eventhub.reactors`` whose value is a callable (a class, usually) returning an
object with this interface; ``Reactor(backend=NAME)`` then finds it.
"""

from __future__ import annotations

import errno
import math
import os
import select
import sys
import time
from collections.abc import Callable
from typing import Protocol

from eventhub.errors import UsageError

__all__ = [
    "ERROR",
    "FD_SETSIZE",
    "READ",
    "WRITE",
    "DescriptorLimitError",
    "EpollPoller",
    "PollPoller",
    "Poller",
    "SelectPoller",
    "available_backends",
    "make_poller",
]

ENTRY_POINT_GROUP = "eventhub.reactors"

READ = 0x001  # POLLIN == EPOLLIN
WRITE = 0x004  # POLLOUT == EPOLLOUT
# Error and hang-up conditions: the loop wakes both the reader and the writer of
# the descriptor, whose next recv()/send() reports what happened.
ERROR = 0x008 | 0x010 | 0x020  # POLLERR | POLLHUP | POLLNVAL (== EPOLLERR | EPOLLHUP)

# select()'s fd_set holds descriptors 0..FD_SETSIZE-1 only (CPython raises
# ValueError beyond). Windows' select takes socket handles, limited in count, not value.
FD_SETSIZE = 1024


class DescriptorLimitError(ValueError):
    """A descriptor the backend cannot watch (``fd >= FD_SETSIZE`` on select)."""


class Poller(Protocol):
    """What the reactor needs from a readiness backend."""

    name: str

    def register(self, fd: int, events: int) -> None:
        """Start watching ``fd`` for ``events`` (``READ | WRITE``)."""

    def modify(self, fd: int, events: int) -> None:
        """Change what a registered ``fd`` is watched for."""

    def unregister(self, fd: int) -> None:
        """Stop watching ``fd`` (call before closing it)."""

    def poll(self, timeout: float | None) -> list[tuple[int, int]]:
        """Wait up to ``timeout`` seconds (``None``: forever) and return ready ``(fd, events)``."""

    def close(self) -> None:
        """Release the backend's own resources."""


class SelectPoller:
    """select(2): portable, limited to descriptors below ``FD_SETSIZE``."""

    __slots__ = ("_readers", "_writers")
    name = "select"

    def __init__(self) -> None:
        self._readers: set[int] = set()
        self._writers: set[int] = set()

    def register(self, fd: int, events: int) -> None:
        if fd >= FD_SETSIZE and sys.platform != "win32":
            raise DescriptorLimitError(
                f"descriptor {fd} is beyond select()'s FD_SETSIZE ({FD_SETSIZE}); "
                "use the poll or epoll backend for more connections"
            )
        self.modify(fd, events)

    def modify(self, fd: int, events: int) -> None:
        if events & READ:
            self._readers.add(fd)
        else:
            self._readers.discard(fd)
        if events & WRITE:
            self._writers.add(fd)
        else:
            self._writers.discard(fd)

    def unregister(self, fd: int) -> None:
        self._readers.discard(fd)
        self._writers.discard(fd)

    def poll(self, timeout: float | None) -> list[tuple[int, int]]:
        if sys.platform == "win32" and not self._readers and not self._writers:
            time.sleep(timeout or 0.0)  # Windows' select() refuses three empty lists
            return []
        try:
            r, w, x = select.select(self._readers, self._writers, self._writers, timeout)
        except OSError as exc:
            if exc.errno != errno.EBADF:
                raise
            return self._closed_descriptors()
        events = [(fd, READ) for fd in r]
        if w:
            events += [(fd, WRITE) for fd in w]
        if x:  # Windows reports a failed connect() here
            events += [(fd, ERROR) for fd in x]
        return events

    def _closed_descriptors(self) -> list[tuple[int, int]]:
        # A descriptor was closed while registered (a bug in its owner): one bad
        # fd fails the whole select(). Report it as in error, the way poll and
        # epoll would, so its handler finds out and unregisters it.
        bad = []
        for fd in self._readers | self._writers:
            try:
                os.fstat(fd)
            except OSError:
                bad.append((fd, ERROR))
        return bad

    def close(self) -> None:
        self._readers.clear()
        self._writers.clear()


class PollPoller:
    """poll(2): no descriptor limit, O(n) per call in the number watched."""

    __slots__ = ("_poll",)
    name = "poll"

    def __init__(self) -> None:
        self._poll = select.poll()

    def register(self, fd: int, events: int) -> None:
        self._poll.register(fd, events)

    def modify(self, fd: int, events: int) -> None:
        self._poll.modify(fd, events)

    def unregister(self, fd: int) -> None:
        self._poll.unregister(fd)

    def poll(self, timeout: float | None) -> list[tuple[int, int]]:
        if timeout is None:
            return self._poll.poll()
        # Round up: waking a hair early would spin once more before a timer is due.
        return self._poll.poll(math.ceil(timeout * 1000))

    def close(self) -> None:
        pass


class EpollPoller:
    """epoll(7), Linux: O(ready) per call. Level-triggered, like the other two."""

    __slots__ = ("_epoll", "poll")
    name = "epoll"

    def __init__(self) -> None:
        self._epoll = select.epoll()
        # The kernel's own call, no wrapper: epoll.poll takes seconds (None blocks),
        # rounds up to whole milliseconds, and returns the pairs the loop wants.
        # One Python call less per loop iteration.
        self.poll: Callable[[float | None], list[tuple[int, int]]] = self._epoll.poll

    def register(self, fd: int, events: int) -> None:
        self._epoll.register(fd, events)

    def modify(self, fd: int, events: int) -> None:
        self._epoll.modify(fd, events)

    def unregister(self, fd: int) -> None:
        self._epoll.unregister(fd)

    def close(self) -> None:
        self._epoll.close()


def _builtin_backends() -> dict[str, Callable[[], Poller]]:
    backends: dict[str, Callable[[], Poller]] = {}
    if hasattr(select, "epoll"):
        backends["epoll"] = EpollPoller
    if hasattr(select, "poll"):
        backends["poll"] = PollPoller
    backends["select"] = SelectPoller
    return backends


def _plugin_backends() -> dict[str, Callable[[], Poller]]:
    from importlib.metadata import entry_points

    found: dict[str, Callable[[], Poller]] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found[ep.name] = _lazy(ep.name, ep.value)
    return found


def _lazy(name: str, value: str) -> Callable[[], Poller]:
    def load() -> Poller:
        from importlib.metadata import entry_points

        (ep,) = (e for e in entry_points(group=ENTRY_POINT_GROUP) if e.name == name)
        try:
            factory = ep.load()
            poller: Poller = factory()
        except Exception as exc:
            raise UsageError(f"reactor backend {name!r} ({value}) failed to load: {exc}") from exc
        return poller

    return load


def available_backends() -> list[str]:
    """Names ``Reactor(backend=...)`` accepts here, best first, then third-party ones."""
    names = list(_builtin_backends())
    names += sorted(n for n in _plugin_backends() if n not in names)
    return ["auto", *names]


def make_poller(name: str = "auto") -> Poller:
    """The one place a backend is chosen: ``auto`` is epoll, else poll, else select."""
    builtin = _builtin_backends()
    if name == "auto":
        name = next(iter(builtin))
    factory = builtin.get(name)
    if factory is None:
        factory = _plugin_backends().get(name)
    if factory is None:
        raise UsageError(f"unknown reactor backend {name!r}; available: {', '.join(available_backends())}")
    return factory()
