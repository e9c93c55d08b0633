"""Readiness backends (select, poll, epoll) behind one small interface, chosen in one place.

The loop never knows which backend it has: it calls ``register``/``modify``/
``unregister`` with a mask of ``READ``/``WRITE``, and once per pass
``dispatch(timeout, readers, writers)``, which waits and calls the handler of
every ready descriptor. The event bits are poll(2)'s (``POLLIN`` = 1,
``POLLOUT`` = 4, ``POLLERR``/``POLLHUP``/``POLLNVAL``) so that ``poll`` and
``epoll`` results are dispatched as the kernel produced them, without a
per-event translation.

Why the poller dispatches: select(2) hands back the opposite shape, a list of
readable and a list of writable descriptors, and building ``(fd, events)``
pairs from them cost the select backend a tuple per ready descriptor. So each
backend walks what its kernel call returned, in that call's own shape
(``SelectPoller`` its two lists, the others their pairs), and the loop makes
one call per pass whatever the backend.

Third-party backends: ``make_poller`` is the one place a backend is chosen,
from a built-in name or from a factory (a callable returning a ``Poller``; one
whose ``poll`` returns pairs subclasses ``PairsPoller`` for its ``dispatch``).
Names it does not know go to the ``BackendFinder`` installed with
``set_backend_finder``: ``eventhub._backends`` installs one that reads the
entry-point group ``eventhub.reactors`` (plugin discovery is a layer above the
reactor, which never imports it).
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
from typing import Protocol

from eventhub.errors import PLUGIN_ERRORS, UsageError, reraise_user_interrupt

__all__ = [
    "ASYNCIO_BACKENDS",
    "ERROR",
    "FD_SETSIZE",
    "READ",
    "WRITE",
    "BackendFinder",
    "DescriptorLimitError",
    "EpollPoller",
    "Handlers",
    "PairsPoller",
    "PollPoller",
    "Poller",
    "PollerFactory",
    "SelectPoller",
    "available_backends",
    "backend_availability",
    "check_backend",
    "make_poller",
    "set_backend_finder",
]

log = logging.getLogger("eventhub.reactor")

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


#: The loop's ``fd -> handler`` maps, one for readers and one for writers.
Handlers = dict[int, Callable[[], None]]


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

    def dispatch(self, timeout: float | None, readers: Handlers, writers: Handlers) -> None:
        """Wait as ``poll`` does, then call ``readers[fd]()`` for each descriptor readable
        (or in error) and ``writers[fd]()`` for each writable (or in error).

        The maps are the loop's own, read at call time: a handler removed by
        one called before it in the same pass is skipped. A handler that raises
        is logged and the rest still run. A backend whose ``poll`` is the
        kernel's answer subclasses ``PairsPoller``, which has this.
        """

    def close(self) -> None:
        """Release the backend's own resources."""


PollerFactory = Callable[[], Poller]

_READ_EVENTS = READ | ERROR
_WRITE_EVENTS = WRITE | ERROR


class PairsPoller:
    """Base of a backend whose ``poll`` returns ``(fd, events)`` pairs: their ``dispatch``.

    The loop's hot path (one call per pass): the pairs are walked as the kernel
    returned them, and nothing is built per event.
    """

    __slots__ = ()
    poll: Callable[[float | None], list[tuple[int, int]]]

    def dispatch(self, timeout: float | None, readers: Handlers, writers: Handlers) -> None:
        for fd, ev in self.poll(timeout):
            try:
                if ev & _READ_EVENTS:
                    handler = readers.get(fd)
                    if handler is not None:
                        handler()
                if ev & _WRITE_EVENTS:
                    handler = writers.get(fd)
                    if handler is not None:
                        handler()
            except PLUGIN_ERRORS as failure:
                _handler_raised(failure, fd)


def _dispatch_list(fds: list[int], handlers: Handlers) -> None:
    """Call the handler of each descriptor in ``fds`` that still has one (select's shape)."""
    for fd in fds:
        handler = handlers.get(fd)
        if handler is not None:
            try:
                handler()
            except PLUGIN_ERRORS as failure:
                _handler_raised(failure, fd)


def _handler_raised(failure: BaseException, fd: int) -> None:
    # Handlers own their errors (an exception closes that connection only): this is a bug in one.
    reraise_user_interrupt(failure)
    log.exception("I/O handler for descriptor %d raised", fd, exc_info=failure)


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

    def dispatch(self, timeout: float | None, readers: Handlers, writers: Handlers) -> None:
        """The readable ones first, then the writable ones: no pair built per descriptor."""
        readable, writable = self.poll_lists(timeout)
        _dispatch_list(readable, readers)
        _dispatch_list(writable, writers)

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


class PollPoller(PairsPoller):
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


class EpollPoller(PairsPoller):
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


def _builtin_backends() -> dict[str, PollerFactory]:
    backends: dict[str, PollerFactory] = {}
    if hasattr(select, "epoll"):
        backends["epoll"] = EpollPoller
    if hasattr(select, "poll"):
        backends["poll"] = PollPoller
    backends["select"] = SelectPoller
    return backends


class BackendFinder(Protocol):
    """Where ``make_poller`` looks up a backend name that is not built in (a third party's)."""

    def names(self) -> list[str]:
        """The names it can build here, warning about any it cannot (two distributions claim it)."""

    def find(self, name: str) -> PollerFactory | None:
        """A factory for ``name``, None if unknown; ``UsageError`` if ``name`` is unusable."""


_finder: BackendFinder | None = None


def set_backend_finder(finder: BackendFinder | None) -> BackendFinder | None:
    """Make ``finder`` resolve backend names that are not built in; returns the one it replaces."""
    global _finder
    previous, _finder = _finder, finder
    return previous


def _third_party_names() -> list[str]:
    return [] if _finder is None else _finder.names()


#: Served by ``eventhub.reactor._aio`` on an asyncio loop, not by a poller; ``auto`` never picks them.
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
    Third-party names come from the ``BackendFinder`` (``set_backend_finder``).
    """
    names = list(_builtin_backends())
    names += [n for n, reason in backend_availability().items() if n in ASYNCIO_BACKENDS and reason is None]
    names += sorted(n for n in _third_party_names() if n not in names)
    return ["auto", *names]


def make_poller(backend: str | PollerFactory = "auto") -> Poller:
    """The one place a backend is chosen: ``auto`` is epoll, else poll, else select.

    ``backend`` is a name or a factory returning a ``Poller``. Built-in names
    win over third-party ones; a third-party name is looked up (and its module
    imported) only when asked for, through the ``BackendFinder``.
    """
    if not isinstance(backend, str):
        return backend()
    builtin = _builtin_backends()
    name = next(iter(builtin)) if backend == "auto" else backend
    factory = builtin.get(name)
    if factory is None and name in ASYNCIO_BACKENDS:
        raise UsageError(
            f"reactor backend {name!r} runs on an asyncio loop, not a poller: use Reactor(backend={name!r})"
        )
    if factory is None and _finder is not None:
        factory = _finder.find(name)
    if factory is None:
        raise UsageError(f"unknown reactor backend {name!r}; available: {', '.join(available_backends())}")
    return factory()
