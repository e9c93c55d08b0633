"""``twisted.python.log``: the legacy ``msg`` / ``err`` / ``startLogging``, onto stdlib ``logging``.

``msg(*parts)`` logs the parts joined by spaces at INFO (``isError=True``: at
ERROR); ``msg(format="%(x)s", x=1)`` fills a %-format from the keywords.
``err(failure_or_exception, why)`` logs ``why`` and the traceback at ERROR;
inside an ``except`` block ``err()`` logs the exception being handled. The
stdlib logger is named after ``system=`` when given, else ``twisted``.

``startLogging(file)`` sends INFO and up from every logger to ``file``
(``time [name] message`` lines); stdout is not redirected (``setStdout`` is ignored).
``addObserver`` / ``removeObserver`` take legacy observers (called with an event
dict holding ``message``, ``isError``, ``system``, ``time``, ``failure``).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import IO, Any

from eventhub.compat.twisted import logger as _logger
from eventhub.compat.twisted.python.failure import Failure

__all__ = ["addObserver", "deferr", "err", "msg", "removeObserver", "startLogging"]

DEFAULT_SYSTEM = "twisted"

_LegacyObserver = Callable[[dict[str, Any]], None]


def _stdlib(system: str | None) -> logging.Logger:
    return logging.getLogger(system if system and system != "-" else DEFAULT_SYSTEM)


def msg(*message: Any, **kw: Any) -> None:
    """Log ``message`` parts joined by spaces (or ``format % kw``), at INFO or, with ``isError``, ERROR."""
    fmt = kw.get("format")
    if message:
        text = " ".join(str(part) for part in message)
    elif fmt is not None:
        try:
            text = fmt % kw
        except Exception as error:
            text = f"Invalid format string or unformattable object in log message: {fmt!r}, {kw!r}: {error}"
    else:
        text = ""
    failure = kw.get("failure")
    level = logging.ERROR if kw.get("isError") or failure is not None else logging.INFO
    _emit(_stdlib(kw.get("system")), level, text, failure)


def _emit(log: logging.Logger, level: int, text: str, failure: Failure | None) -> None:
    if failure is not None and failure.tb is not None:
        log.log(level, "%s", text, exc_info=(failure.type, failure.value, failure.tb))
    elif failure is not None:
        log.log(level, "%s\n%s", text, failure.getTraceback().rstrip("\n"))
    else:
        log.log(level, "%s", text)


def err(_stuff: Failure | BaseException | None = None, _why: str | None = None, **kw: Any) -> None:
    """Log a failure (default: the exception being handled) with ``_why``, at ERROR."""
    if _stuff is None:
        _stuff = Failure()
    failure = _stuff if isinstance(_stuff, Failure) else Failure(_stuff)
    _emit(_stdlib(kw.get("system")), logging.ERROR, _why or "Unhandled Error", failure)


deferr = err


def startLogging(file: IO[str] | None = None, setStdout: bool = True) -> None:
    """Write INFO and up from every logger to ``file`` (stdout by default)."""
    _logger.globalLogBeginner.beginLoggingTo([_logger.textFileLogObserver(file or sys.stdout)])


_legacy: dict[_LegacyObserver, Callable[[dict[str, Any]], None]] = {}


def addObserver(observer: _LegacyObserver) -> None:
    """Call ``observer(event)`` for every record; ``event["message"]`` is a 1-tuple of the text."""

    def adapt(event: dict[str, Any]) -> None:
        failure = event.get("log_failure")
        observer(
            {
                **event,
                "message": (_logger.formatEvent(event),),
                "isError": int(event["log_level"].value >= logging.ERROR),
                "system": event.get("log_namespace", "-"),
                "time": event.get("log_time"),
                "failure": failure,
            }
        )

    _legacy[observer] = adapt
    _logger.globalLogPublisher.addObserver(adapt)


def removeObserver(observer: _LegacyObserver) -> None:
    adapt = _legacy.pop(observer, None)
    if adapt is not None:
        _logger.globalLogPublisher.removeObserver(adapt)
