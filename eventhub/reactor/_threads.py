"""A bounded thread pool for blocking work, and the result object ``defer_to_thread`` returns.

Workers start lazily, one per submitted job while fewer than ``max_workers``
are alive and none is idle, so a reactor that never uses threads never starts
one. Jobs wait in one FIFO queue. ``defer_to_thread`` hands its outcome back
with ``call_from_thread``, so callbacks always run on the reactor's thread.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from eventhub.errors import UsageError
from eventhub.reactor._tasks import Future
from eventhub.reactor._timers import NO_KWARGS

__all__ = ["PoolMethods", "ThreadPool", "ThreadResult", "deferred_call"]

log = logging.getLogger("eventhub.reactor")

T = TypeVar("T")

_Job = tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class ThreadResult(Future[T]):
    """The outcome of ``Reactor.defer_to_thread``, delivered on the reactor's thread.

    A ``Future``: ``await`` it in a task, or ``add_callbacks(on_result,
    on_error)``: once the function returns, ``on_result(value)`` runs on the
    reactor's thread; if it raised, ``on_error(exception)`` does. Callbacks
    added after the outcome arrived run at once. Use it from the reactor's
    thread only. An exception nobody retrieved (no ``on_error``, no ``await``)
    is logged. Cancelling it does not stop the function (a thread cannot be
    interrupted): its outcome is then dropped.
    """

    __slots__ = ()

    def add_callbacks(
        self,
        on_result: Callable[[T], object],
        on_error: Callable[[BaseException], object] | None = None,
    ) -> ThreadResult[T]:
        """Run ``on_result(value)`` or ``on_error(exc)`` when the outcome arrives; returns self."""

        def outcome(future: Future[T]) -> None:
            if future.cancelled():
                return
            error = future.exception() if on_error is not None else future._value_if_failed()
            if error is None:
                on_result(future.result())
            elif on_error is not None:
                on_error(error)

        self.add_done_callback(outcome)
        return self

    def _deliver(self, value: T | None, error: BaseException | None) -> None:
        if self.done():  # cancelled meanwhile
            return
        if error is None:
            self.set_result(value)  # type: ignore[arg-type]
        else:
            self.set_exception(error)


def deferred_call(
    fn: Callable[..., T],
    args: tuple[Any, ...],
    kw: dict[str, Any],
    hand_back: Callable[..., object],
    pending: set[ThreadResult[Any]],
) -> tuple[ThreadResult[T], Callable[[], None]]:
    """``defer_to_thread``'s one implementation: the result, and the job that fills it.

    Every reactor (built-in, asyncio, ``MemoryReactor``) runs ``job`` its own
    way (a pool thread, or the test's queue) and hands the outcome back with
    ``hand_back`` (its ``call_from_thread``). Whatever ``fn`` raises,
    ``SystemExit`` included, is its outcome: a worker thread gets no Ctrl-C,
    and an error nobody awaited is logged by the ``Future``. ``pending`` holds
    the result until its outcome arrives (shutdown and the hub wait for those).
    """
    result: ThreadResult[T] = ThreadResult()
    pending.add(result)
    result.add_done_callback(pending.discard)

    def job() -> None:
        try:
            value = fn(*args, **kw)
        except BaseException as exc:
            hand_back(result._deliver, None, exc)
        else:
            hand_back(result._deliver, value, None)

    return result, job


class PoolMethods:
    """A reactor's thread pool methods: one owner for the built-in and the asyncio reactors.

    The pool starts at the first job (``ThreadPool`` starts its workers lazily
    too); the reactor sets the attributes below in its ``__init__`` and stops
    the pool when it finishes. ``MemoryReactor`` runs its jobs its own way.
    """

    _pool: ThreadPool | None
    _max_threads: int
    _finished: bool
    _thread_results: set[ThreadResult[Any]]

    if TYPE_CHECKING:

        def call_from_thread(self, fn: Callable[..., object], /, *args: Any, **kw: Any) -> None: ...

    def _thread_pool(self) -> ThreadPool:
        if self._pool is None:
            if self._finished:
                raise UsageError("the reactor has finished; it cannot run threads any more")
            self._pool = ThreadPool(self._max_threads)
        return self._pool

    @property
    def max_threads(self) -> int:
        """The most threads the pool runs at once; raising it takes effect at the next job."""
        return self._max_threads

    @max_threads.setter
    def max_threads(self, count: int) -> None:
        if count < 1:
            raise ValueError(f"max_threads must be >= 1, got {count}")
        self._max_threads = count
        if self._pool is not None:
            self._pool.max_workers = count

    def call_in_thread(self, fn: Callable[..., object], /, *args: Any, **kw: Any) -> None:
        """Run ``fn(*args, **kw)`` on the reactor's thread pool; an exception is logged."""
        self._thread_pool().submit(fn, args, kw or NO_KWARGS)

    def defer_to_thread(self, fn: Callable[..., T], /, *args: Any, **kw: Any) -> ThreadResult[T]:
        """Run ``fn`` on the thread pool; its outcome comes back to the reactor thread.

        Returns a ``ThreadResult``: ``await`` it, or ``add_callbacks(on_result, on_error)``.
        """
        # Shutdown waits for the pending results (bounded).
        result, job = deferred_call(fn, args, kw, self.call_from_thread, self._thread_results)
        self._thread_pool().submit(job, (), NO_KWARGS)
        return result

    @property
    def thread_results(self) -> frozenset[ThreadResult[Any]]:
        """The ``defer_to_thread`` calls whose outcome has not come back yet."""
        return frozenset(self._thread_results)


class ThreadPool:
    """At most ``max_workers`` daemon threads running submitted jobs in FIFO order."""

    def __init__(self, max_workers: int = 10, name: str = "eventhub-worker") -> None:
        if max_workers < 1:
            raise ValueError(f"max_workers must be >= 1, got {max_workers}")
        self.max_workers = max_workers
        self._name = name
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._workers: list[threading.Thread] = []
        self._idle = 0
        self._lock = threading.Lock()
        self._stopped = False

    def submit(self, fn: Callable[..., Any], args: tuple[Any, ...], kw: dict[str, Any]) -> None:
        """Queue ``fn(*args, **kw)``; its exception, if any, is logged."""
        with self._lock:
            if self._stopped:
                raise RuntimeError("the reactor's thread pool is stopped")
            self._jobs.put((fn, args, kw))
            if self._idle == 0 and len(self._workers) < self.max_workers:
                self._start_worker()
            else:
                self._idle -= 1  # that idle worker will take this job

    def _start_worker(self) -> None:
        t = threading.Thread(target=self._work, name=f"{self._name}-{len(self._workers)}", daemon=True)
        self._workers.append(t)
        t.start()

    def _work(self) -> None:
        jobs = self._jobs
        while True:
            job = jobs.get()
            if job is None:
                return
            fn, args, kw = job
            try:
                fn(*args, **kw)
            except Exception:
                log.exception("call_in_thread(%r) raised", fn)
            del job, fn, args, kw  # drop references before blocking again
            with self._lock:
                self._idle += 1

    def stop(self, timeout: float = 1.0) -> None:
        """Let queued jobs finish, then end the workers; wait up to ``timeout`` in all.

        Workers are daemon threads: one stuck in a blocking call past the
        timeout does not keep the process alive.
        """
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            workers = list(self._workers)
        for _ in workers:
            self._jobs.put(None)
        deadline = time.monotonic() + timeout
        for t in workers:
            if t is not threading.current_thread():
                t.join(max(0.0, deadline - time.monotonic()))
