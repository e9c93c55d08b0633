"""``twisted.internet.threads``: ``deferToThread``, ``blockingCallFromThread``...

``deferToThread`` runs on the compat reactor's thread pool
(``reactor.suggestThreadPoolSize`` sizes it) and its Deferred fires on the
reactor's thread, as in Twisted.
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from typing import Any, TypeVar

from eventhub.compat.twisted.internet import _global
from eventhub.compat.twisted.internet._reactor import ThreadPoolView, TwistedReactor
from eventhub.compat.twisted.internet.defer import Deferred, maybeDeferred
from eventhub.compat.twisted.python.failure import Failure

__all__ = [
    "blockingCallFromThread",
    "callMultipleInThread",
    "deferToThread",
    "deferToThreadPool",
]

T = TypeVar("T")


def deferToThread(f: Callable[..., T], *args: Any, **kwargs: Any) -> Deferred[T]:
    """Run ``f(*args, **kwargs)`` in a thread; the Deferred fires with its result on the reactor thread.

    Cancelling the Deferred does not stop the function (a thread cannot be
    interrupted): its outcome is dropped.
    """
    return deferToThreadPool(_global.get(), None, f, *args, **kwargs)


def deferToThreadPool(
    reactor: TwistedReactor, threadpool: ThreadPoolView | None, f: Callable[..., T], *args: Any, **kwargs: Any
) -> Deferred[T]:
    """``deferToThread`` on ``reactor``'s pool (eventhub has one pool per reactor: ``threadpool``
    must be ``None`` or ``reactor.getThreadPool()``)."""
    result = reactor.eventhub_reactor.defer_to_thread(f, *args, **kwargs)
    return Deferred.fromFuture(result)


def callMultipleInThread(tupleList: list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]]) -> None:
    """Run each ``(f, args, kwargs)`` in order, in one thread."""

    def run_all() -> None:
        for f, args, kwargs in tupleList:
            f(*args, **kwargs)

    _global.get().callInThread(run_all)


def blockingCallFromThread(reactor: TwistedReactor, f: Callable[..., Any], *a: Any, **kw: Any) -> Any:
    """From a thread that is not the reactor's: run ``f`` on the reactor thread and wait for its result.

    If ``f`` returns a Deferred, wait for that; a failure is raised here.
    Never call it from the reactor's own thread: it would wait forever.
    """
    outcome: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def run() -> None:
        maybeDeferred(f, *a, **kw).addBoth(outcome.put)

    reactor.callFromThread(run)
    result = outcome.get()
    if isinstance(result, Failure):
        result.raiseException()
    return result
