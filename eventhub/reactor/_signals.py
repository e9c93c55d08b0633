"""What a signal does to a reactor, the same on the built-in and the asyncio ones.

Each reactor catches the signals its own way (``signal.set_wakeup_fd`` and its
ready queue; the asyncio loop's ``add_signal_handler``) and then calls
``_handle_signal`` on its loop: a handler given with ``add_signal_handler``
runs; SIGINT and SIGTERM stop the reactor gracefully, a second one aborts the
connections still flushing; any other is logged and ignored (SIGHUP would
otherwise kill the process and reset every client).
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from eventhub.errors import call_plugin

__all__ = ["SignalStops"]

log = logging.getLogger("eventhub.reactor")


class SignalStops:
    """Mixed into a reactor with ``_signal_handlers``, ``_restore_signals``, ``_connections``, ``stop()``."""

    _signal_handlers: dict[int, Callable[[], object]]
    _connections: Any
    _stopping: bool
    _running: bool
    stopped_by_signal: int | None
    _restore_signals: Callable[[], None] | None  # undoes install_signal_handlers

    if TYPE_CHECKING:

        def stop(self) -> None: ...

    def _handle_signal(self, signum: int) -> None:
        handler = self._signal_handlers.get(signum)
        if handler is not None:
            call_plugin(log, handler, "__call__")
        elif signum in (signal.SIGINT, signal.SIGTERM):
            self._stop_by_signal(signum)
        else:
            log.info("received %s: nothing handles it, ignored", signal.Signals(signum).name)

    def _stop_by_signal(self, signum: int) -> None:
        name = signal.Signals(signum).name
        if self._stopping:
            log.warning("received %s again: aborting the connections still flushing", name)
            self._abort_all(ConnectionAbortedError(f"{name} during shutdown"))
            return
        log.info("received %s, shutting down", name)
        self.stopped_by_signal = signum
        if self._running:
            self.stop()

    def _restore_signal_handlers(self) -> None:
        restore, self._restore_signals = self._restore_signals, None
        if restore is not None:
            restore()

    def _abort_all(self, reason: BaseException) -> None:
        for conn in list(self._connections):
            conn._force_close(reason)
