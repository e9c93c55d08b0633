"""The system event triggers and the shutdown sequence, the same on the built-in and the asyncio reactors.

The order is written once, in ``Shutdown._shutdown_steps``: "before" triggers
(their futures get a grace period), the tasks running when asked to stop
cancelled, listeners and connectors closed, "during" triggers, the connections
left to end by themselves (``stop(drain=...)``), then asked to flush and close,
and "after" triggers once they have. Only the waiting differs: the built-in
reactor runs passes of its loop until a step is done, the asyncio one awaits.
So the sequence is a generator that yields each wait (a ``Step``) to the
reactor's own driver, and closing (``close``) and a shutdown that timed out
share their steps here too.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from eventhub.reactor._triggers import SystemTriggers

__all__ = ["Shutdown", "Step"]

log = logging.getLogger("eventhub.reactor")


class Step(enum.Enum):
    """What the shutdown waits for between two of its phases."""

    GRACE = "grace"  # the futures "before shutdown" triggers returned: shutdown_timeout at most
    DRAIN = "drain"  # the connections ending by themselves (stop(drain=...)), before being asked to
    CLOSE = "close"  # the connections asked to close, and the tasks: shutdown_timeout at most


class Shutdown:
    """Mixed into a reactor: it has ``_triggers``, its listeners, connectors, connections and ``tasks``."""

    shutdown_timeout: float
    _triggers: SystemTriggers
    _listeners: Any
    _connectors: Any
    _connections: Any

    if TYPE_CHECKING:

        @property
        def tasks(self) -> frozenset[Any]: ...  # TaskAPI: tasks.Task or aio.AsyncioTask

        def _abort_all(self, reason: BaseException) -> None: ...

    def add_system_event_trigger(
        self, phase: str, event: str, fn: Callable[..., object], /, *args: Any
    ) -> int:
        """Call ``fn(*args)`` in ``phase`` (before|during|after) of ``event`` (startup|shutdown).

        Startup fires when ``run()`` begins; shutdown after ``stop()``: "before"
        triggers run while everything is still up, "during" ones as the listeners
        close and the connections flush, "after" ones once every connection is
        gone. A "before shutdown" trigger may return a ``Future``: the shutdown
        then waits until it is done (as long as ``shutdown_timeout`` at most)
        before it cancels the tasks and closes anything, so that a service can
        let the requests in flight finish. Returns an id for
        ``remove_system_event_trigger``.
        """
        return self._triggers.add(phase, event, fn, *args)

    def remove_system_event_trigger(self, trigger_id: int) -> None:
        self._triggers.remove(trigger_id)

    def _fire(self, phase: str, event: str, results: list[object] | None = None) -> None:
        for fn, exc in self._triggers.fire(phase, event, results):
            log.error("%s-%s trigger %r raised", phase, event, fn, exc_info=exc)

    def _shutdown_steps(self) -> Iterator[tuple[Step, list[object]]]:
        """The shutdown, phase by phase; yields what to wait for (with the GRACE step, the futures)."""
        # Tasks running when asked to stop are cancelled; those that "before"
        # triggers start (handlers of eventhub.stopping) get the grace period.
        running = list(self.tasks)
        waits: list[object] = []
        self._fire("before", "shutdown", waits)
        yield Step.GRACE, waits
        for task in running:
            task.cancel()
        self._stop_accepting()
        self._fire("during", "shutdown")
        yield Step.DRAIN, []
        for conn in list(self._connections):
            conn.close_for_shutdown()
        yield Step.CLOSE, []
        self._fire("after", "shutdown")

    def _stop_accepting(self) -> None:
        for listener in list(self._listeners):
            listener.stop_listening()
        for connector in list(self._connectors):
            connector.stop_connecting()

    def _close_network(self) -> None:
        """``close()``: no more listeners or connectors; the connections still open are aborted."""
        self._stop_accepting()
        self._abort_all(ConnectionAbortedError("the reactor was closed"))

    def _shutdown_timed_out(self) -> None:
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            log.warning(
                "%d task(s) still running after %.1fs: %s",
                len(tasks),
                self.shutdown_timeout,
                ", ".join(task.name for task in tasks[:5]),
            )
        n = len(self._connections)
        if n:
            log.warning(
                "%d connection(s) still flushing after %.1fs; aborting them", n, self.shutdown_timeout
            )
        self._abort_all(TimeoutError(f"shutdown timeout ({self.shutdown_timeout}s) expired"))
