"""Readiness backends (select, poll, epoll) behind one small interface, chosen in one place.

The loop never knows which backend it has: it calls ``register``/``modify``/
``unregister`` with a mask of ``READ``/``WRITE`` and reads ``(fd, events)``
pairs back from ``poll``. The event bits are poll(2)'s (``POLLIN`` = 1,
``POLLOUT`` = 4, ``POLLERR``/``POLLHUP``/``POLLNVAL``) so that ``poll`` and
``epoll`` results go to the loop as the kernel produced them, without a
per-event translation.

select(2) hands back the opposite shape, a list of readable and a list of
writable descriptors, and building pairs from them cost the select backend a
tuple per ready descriptor. So a backend may also offer ``poll_lists(timeout)
-> (readable, writable)``; when it does, the loop calls that instead of
``poll`` (``SelectPoller`` does; pollers of the other shape need not).

Third-party backends: a distribution declares an entry point in the group
``eventhub.reactors`` whose value is a callable (a class, usually) returning an
object with this interface; ``Reactor(backend=NAME)`` then finds it. They are
found by ``eventhub.discovery`` (the cached scan the plugins use too); a name
two distributions both declare is refused, naming both. ``make_poller`` is the
one place a backend is chosen.
"""

from __future__ import annotations

import errno
import logging
import math
import os
import select
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from eventhub.errors import UsageError

if TYPE_CHECKING:
    from eventhub.discovery import Conflict, PluginEntry

__all__ = [
    "ASYNCIO_BACKENDS",
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
    "backend_availability",
    "check_backend",
    "make_poller",
]

log = logging.getLogger("eventhub.reactor")

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


_NO_FDS: list[int] = []  # select()'s "exceptional" list on POSIX: never written to
_WINDOWS = sys.platform == "win32"


class SelectPoller:
    """select(2): portable, limited to descriptors below ``FD_SETSIZE``.

    select() takes its descriptors as sequences and converts them on every
    call; a list goes in as it is, a set is copied into a new list first. So
    the descriptors live in sets (O(1) changes) and in lists rebuilt only after
    a change, on the next poll: a server whose connections only read and write
    (no change of interest) hands select() the same two lists pass after pass.
    """

    __slots__ = ("_readers", "_rlist", "_wlist", "_writers")
    name = "select"

    def __init__(self) -> None:
        self._readers: set[int] = set()
        self._writers: set[int] = set()
        self._rlist: list[int] | None = []  # None: stale, rebuilt from the set at the next poll
        self._wlist: list[int] | None = []

    def register(self, fd: int, events: int) -> None:
        if fd >= FD_SETSIZE and sys.platform != "win32":
            raise DescriptorLimitError(
                f"descriptor {fd} is beyond select()'s FD_SETSIZE ({FD_SETSIZE}); "
                "use the poll or epoll backend for more connections"
            )
        self.modify(fd, events)

    def modify(self, fd: int, events: int) -> None:
        if _set_member(self._readers, fd, bool(events & READ)):
            self._rlist = None
        if _set_member(self._writers, fd, bool(events & WRITE)):
            self._wlist = None

    def unregister(self, fd: int) -> None:
        self.modify(fd, 0)

    def poll(self, timeout: float | None) -> list[tuple[int, int]]:
        readable, writable = self.poll_lists(timeout)
        return [(fd, READ) for fd in readable] + [(fd, WRITE) for fd in writable]

    def poll_lists(self, timeout: float | None) -> tuple[list[int], list[int]]:
        """Wait up to ``timeout`` seconds; return the readable and the writable descriptors.

        A descriptor in error is in both lists, so that its reader and its
        writer both find out (as with poll's ``ERROR`` bits).
        """
        rlist, wlist = self._rlist, self._wlist
        if rlist is None:
            rlist = self._rlist = list(self._readers)
        if wlist is None:
            wlist = self._wlist = list(self._writers)
        try:
            if _WINDOWS:
                return _select_windows(rlist, wlist, timeout)
            readable, writable, _ = select.select(rlist, wlist, _NO_FDS, timeout)
        except OSError as exc:
            if exc.errno != errno.EBADF:
                raise
            bad = self._closed_descriptors()
            return bad, bad
        return readable, writable

    def _closed_descriptors(self) -> list[int]:
        # A descriptor was closed while registered (a bug in its owner): one bad
        # fd fails the whole select(). Report it as in error, the way poll and
        # epoll would, so its handler finds out and unregisters it.
        bad = []
        for fd in self._readers | self._writers:
            try:
                os.fstat(fd)
            except OSError:
                bad.append(fd)
        return bad

    def close(self) -> None:
        self._readers.clear()
        self._writers.clear()
        self._rlist, self._wlist = [], []


def _set_member(fds: set[int], fd: int, member: bool) -> bool:
    """Make ``fd in fds`` be ``member``; True if that changed the set."""
    if member == (fd in fds):
        return False
    if member:
        fds.add(fd)
    else:
        fds.discard(fd)
    return True


def _select_windows(rlist: list[int], wlist: list[int], timeout: float | None) -> tuple[list[int], list[int]]:
    if not rlist and not wlist:
        time.sleep(timeout or 0.0)  # Windows' select() refuses three empty lists
        return [], []
    readable, writable, failed = select.select(rlist, wlist, wlist, timeout)
    if failed:  # Windows reports a failed connect() here, not as writable
        readable, writable = readable + failed, writable + failed
    return readable, writable


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


def _plugin_backends() -> tuple[dict[str, PluginEntry], dict[str, Conflict]]:
    """Third-party backends by name, and the names two distributions both claim.

    Through ``eventhub.discovery``'s cached scan (one ``stat`` per path entry
    when nothing was installed), not ``importlib.metadata.entry_points``, which
    reads every installed distribution's metadata on each call. Nothing is
    imported until a backend is chosen.
    """
    from eventhub.discovery import discover

    entries, conflicts = discover(group=ENTRY_POINT_GROUP)
    return {e.name: e for e in entries}, {c.name: c for c in conflicts}


def _load(entry: PluginEntry) -> Poller:
    try:
        factory = entry.load()
        if not callable(factory):
            raise TypeError(f"{factory!r} is not callable")
        poller: Poller = factory()
    except Exception as exc:
        raise UsageError(
            f"reactor backend {entry.name!r} ({entry.value}, from {entry.dist} {entry.version}) "
            f"failed to load: {exc}"
        ) from exc
    return poller


#: Served by ``eventhub.reactor.aio`` on an asyncio loop, not by a poller; ``auto`` never picks them.
ASYNCIO_BACKENDS = ("asyncio", "uvloop")


def backend_availability() -> dict[str, str | None]:
    """Every backend name eventhub knows, with ``None`` if usable here, else why not."""
    known: dict[str, str | None] = {"auto": None}
    builtin = _builtin_backends()
    for name in ("epoll", "poll", "select"):
        known[name] = None if name in builtin else f"select.{name} does not exist on this platform"
    known["asyncio"] = None
    known["uvloop"] = None if _uvloop_installed() else "uvloop is not installed (pip install uvloop)"
    return known


def _uvloop_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("uvloop") is not None


def check_backend(name: str) -> None:
    """``UsageError`` unless ``Reactor(backend=name)`` can be built here."""
    if name in ASYNCIO_BACKENDS:
        reason = backend_availability()[name]
        if reason is not None:
            raise UsageError(f"reactor backend {name!r} is unavailable: {reason}")
        return
    make_poller(name).close()


def available_backends() -> list[str]:
    """Names ``Reactor(backend=...)`` accepts here, best first, then third-party ones.

    ``asyncio`` (and ``uvloop`` when installed) come after the built-in
    pollers; ``backend_availability()`` also tells why a name is missing.
    A name that two installed distributions both declare is left out, with a
    warning naming them (``make_poller`` refuses it with the same words).
    """
    names = list(_builtin_backends())
    names += [n for n, reason in backend_availability().items() if n in ASYNCIO_BACKENDS and reason is None]
    plugins, conflicts = _plugin_backends()
    names += sorted(n for n in plugins if n not in names)
    for conflict in conflicts.values():
        log.warning("reactor backend %r is unusable: %s", conflict.name, conflict.describe())
    return ["auto", *names]


def make_poller(name: str = "auto") -> Poller:
    """The one place a backend is chosen: ``auto`` is epoll, else poll, else select.

    Built-in names win over third-party ones; a third-party name is looked up
    (and its module imported) only when asked for.
    """
    builtin = _builtin_backends()
    if name == "auto":
        name = next(iter(builtin))
    factory = builtin.get(name)
    if factory is not None:
        return factory()
    if name in ASYNCIO_BACKENDS:
        raise UsageError(
            f"reactor backend {name!r} runs on an asyncio loop, not a poller: use Reactor(backend={name!r})"
        )
    plugins, conflicts = _plugin_backends()
    if name in conflicts:
        raise UsageError(f"reactor backend {name!r} is ambiguous: {conflicts[name].describe()}")
    entry = plugins.get(name)
    if entry is None:
        raise UsageError(f"unknown reactor backend {name!r}; available: {', '.join(available_backends())}")
    return _load(entry)
