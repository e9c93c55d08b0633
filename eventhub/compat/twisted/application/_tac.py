"""Run a ``.tac`` file as ``twistd -n -y FILE.tac`` does: ``python -m eventhub.compat.twisted FILE.tac``
or ``eventhub run --tac FILE.tac``.

The file is executed; it must define ``application`` (``service.Application``).
Its services start when the reactor runs (``privilegedStartService`` then
``startService``, in the order they were added); SIGINT or SIGTERM stops the
reactor, and its "before shutdown" trigger stops them in reverse order; the
shutdown waits for the Deferred ``stopService`` returns, up to the reactor's
``shutdown_timeout``.

Exit status: 0 after a clean stop; 1 if a service failed to start; 2 if the
file cannot be run or defines no ``application``.
"""

from __future__ import annotations

import logging
import runpy
import sys
from pathlib import Path
from typing import Any

from eventhub.compat.twisted.application.service import IService
from eventhub.compat.twisted.internet import _global
from eventhub.compat.twisted.internet.defer import maybeDeferred

__all__ = ["TacError", "load_application", "run_tac"]

log = logging.getLogger("eventhub.compat.twisted.tac")


class TacError(Exception):
    """The ``.tac`` file could not be run, or defines no ``application``."""


def load_application(path: str | Path) -> Any:
    """Execute the ``.tac`` file and return its ``application``."""
    path = Path(path)
    if not path.is_file():
        raise TacError(f"{path}: no such file")
    try:
        namespace = runpy.run_path(str(path), run_name="__tac__")
    except SystemExit:
        raise
    except BaseException as error:
        raise TacError(f"{path}: raised {type(error).__name__}: {error}") from error
    application = namespace.get("application")
    if application is None:
        raise TacError(f"{path}: defines no 'application' (application = service.Application('name'))")
    if not IService.providedBy(application):
        raise TacError(f"{path}: 'application' is a {type(application).__name__}, not a service")
    return application


def run_tac(path: str | Path, *, backend: str | None = None) -> int:
    """Load ``path``, start its services, serve until SIGINT/SIGTERM, stop them; the exit status."""
    _log_to_stderr()
    reactor = _global.get()
    if backend is not None:
        reactor.use_backend(backend)
    try:
        application = load_application(path)
    except TacError as error:
        print(f"eventhub: error: {error}", file=sys.stderr)
        return 2
    failed: list[BaseException] = []

    def start() -> None:
        try:
            application.privilegedStartService()
            application.startService()
        except Exception as error:
            log.error("%s: a service failed to start: %s", path, error, exc_info=error)
            failed.append(error)
            reactor.stop()
            return
        log.info("%s: application %r started", path, application.name)

    def stop() -> Any:
        if not application.running:
            return None
        stopped = maybeDeferred(application.stopService)
        stopped.addCallback(lambda _: log.info("%s: application %r stopped", path, application.name))
        return stopped  # the shutdown waits for it (bounded by the reactor's shutdown_timeout)

    reactor.callWhenRunning(start)
    reactor.addSystemEventTrigger("before", "shutdown", stop)
    reactor.run()
    return 1 if failed else 0


def _log_to_stderr() -> None:
    """What the services log (any logger) goes to stderr at INFO, unless logging is configured."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s [%(name)s] %(levelname)s: %(message)s"))
        root.addHandler(handler)
        root.setLevel(logging.INFO)
