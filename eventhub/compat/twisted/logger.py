"""``twisted.logger``: ``Logger`` with ``{format}`` strings, emitting onto stdlib ``logging``.

``Logger()`` in a module logs to the stdlib logger named after that module
(Twisted's namespace), so ``logging`` configuration (levels, handlers, the
``eventhub`` CLI's ``-v``) applies. The ``{name}`` fields are filled from the
keyword arguments when the record is formatted, so a message below the level
costs nothing::

    log = Logger()
    log.info("{peer} connected ({count} so far)", peer=peer, count=n)
    log.failure("while handling {request}", failure, request=r)   # error level, with the traceback

Observers (``globalLogPublisher.addObserver``, ``globalLogBeginner.beginLoggingTo``,
``textFileLogObserver``) receive Twisted-shaped event dicts (``log_format``,
``log_level``, ``log_namespace``, ``log_time``, ``log_failure``, the keywords)
for every stdlib record of the root logger, through one ``logging.Handler``.
"""

from __future__ import annotations

import enum
import inspect
import logging
import string
import time
from collections.abc import Callable, Mapping
from typing import IO, Any

from eventhub.compat.twisted.python.failure import Failure

__all__ = [
    "FileLogObserver",
    "LogLevel",
    "Logger",
    "formatEvent",
    "globalLogBeginner",
    "globalLogPublisher",
    "textFileLogObserver",
]

Event = dict[str, Any]
Observer = Callable[[Event], None]


class LogLevel(enum.Enum):
    debug = logging.DEBUG
    info = logging.INFO
    warn = logging.WARNING
    error = logging.ERROR
    critical = logging.CRITICAL

    @classmethod
    def of(cls, levelno: int) -> LogLevel:
        for level in reversed(cls):
            if levelno >= level.value:
                return level
        return cls.debug


class _EventFormatter(string.Formatter):
    """PEP 3101 fields from the event; ``{f()}`` calls ``f`` as Twisted's formatter does."""

    def get_field(self, field_name: str, args: Any, kwargs: Any) -> Any:
        if field_name.endswith("()"):
            obj, used = super().get_field(field_name[:-2], args, kwargs)
            return obj(), used
        return super().get_field(field_name, args, kwargs)


_formatter = _EventFormatter()


def formatEvent(event: Mapping[str, Any]) -> str:
    """The event's ``log_format`` filled in from the event; never raises."""
    fmt = event.get("log_format")
    if fmt is None:
        return ""
    try:
        return _formatter.vformat(fmt, (), event)
    except Exception as error:
        return f"Unable to format event {dict(event)!r}: {error}"


class _Message:
    """A stdlib record's ``msg``: formatted only when a handler asks for it."""

    __slots__ = ("event",)

    def __init__(self, event: Event) -> None:
        self.event = event

    def __str__(self) -> str:
        text = formatEvent(self.event)
        failure = self.event.get("log_failure")
        if isinstance(failure, Failure) and failure.tb is None:  # cleaned: no exc_info to give
            text += "\n" + failure.getTraceback().rstrip("\n")
        return text


class Logger:
    """Twisted's ``Logger``: ``debug/info/warn/error/critical(format, **kw)``, ``failure``, ``emit``."""

    def __init__(self, namespace: str | None = None, source: object = None) -> None:
        if namespace is None:
            frame = inspect.currentframe()
            caller = frame.f_back if frame is not None else None
            namespace = caller.f_globals.get("__name__", "<unknown>") if caller is not None else "<unknown>"
        self.namespace = namespace
        self.source = source
        self._logger = logging.getLogger(namespace)

    def __get__(self, instance: object, owner: type | None = None) -> Logger:
        """As a class attribute: a Logger named after the class, with the instance as ``log_source``."""
        namespace = self.namespace
        if owner is not None and namespace == owner.__module__:
            namespace = f"{owner.__module__}.{owner.__qualname__}"
        return Logger(namespace, instance if instance is not None else owner)

    def emit(self, level: LogLevel, format: str | None = None, **kwargs: Any) -> None:
        if not self._logger.isEnabledFor(level.value):
            return
        event: Event = dict(kwargs)
        event.update(
            log_logger=self,
            log_level=level,
            log_namespace=self.namespace,
            log_source=self.source,
            log_format=format,
            log_time=time.time(),
        )
        failure = kwargs.get("log_failure")
        exc_info = None
        if isinstance(failure, Failure) and failure.tb is not None:
            exc_info = (failure.type, failure.value, failure.tb)
        self._logger.log(level.value, _Message(event), exc_info=exc_info, extra={"log_event": event})

    def debug(self, format: str | None = None, **kwargs: Any) -> None:
        self.emit(LogLevel.debug, format, **kwargs)

    def info(self, format: str | None = None, **kwargs: Any) -> None:
        self.emit(LogLevel.info, format, **kwargs)

    def warn(self, format: str | None = None, **kwargs: Any) -> None:
        self.emit(LogLevel.warn, format, **kwargs)

    def error(self, format: str | None = None, **kwargs: Any) -> None:
        self.emit(LogLevel.error, format, **kwargs)

    def critical(self, format: str | None = None, **kwargs: Any) -> None:
        self.emit(LogLevel.critical, format, **kwargs)

    def failure(
        self, format: str, failure: Failure | None = None, level: LogLevel = LogLevel.critical, **kwargs: Any
    ) -> None:
        """Log ``failure`` (default: the exception being handled) with its traceback, at ``critical``
        as in Twisted."""
        if failure is None:
            failure = Failure()
        self.emit(level, format, log_failure=failure, **kwargs)


# -- observers ---------------------------------------------------------------------------


def _event_of(record: logging.LogRecord) -> Event:
    event = getattr(record, "log_event", None)
    if isinstance(event, dict):
        return event
    text = record.getMessage()
    event = {
        "log_format": text.replace("{", "{{").replace("}", "}}"),
        "log_level": LogLevel.of(record.levelno),
        "log_namespace": record.name,
        "log_source": None,
        "log_time": record.created,
    }
    if record.exc_info and record.exc_info[1] is not None:
        event["log_failure"] = Failure(record.exc_info[1], record.exc_info[0], record.exc_info[2])
    return event


class _Publisher(logging.Handler):
    """Hands every record reaching the root logger to the observers, as an event dict."""

    def __init__(self) -> None:
        super().__init__()
        self.observers: list[Observer] = []

    def addObserver(self, observer: Observer) -> None:
        if observer not in self.observers:
            self.observers.append(observer)
        if self not in logging.getLogger().handlers:
            logging.getLogger().addHandler(self)

    def removeObserver(self, observer: Observer) -> None:
        if observer in self.observers:
            self.observers.remove(observer)
        if not self.observers:
            logging.getLogger().removeHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        event = _event_of(record)
        for observer in list(self.observers):
            try:
                observer(event)
            except Exception:
                self.handleError(record)


globalLogPublisher = _Publisher()


class FileLogObserver:
    """Writes each event as one line of text to a file (``textFileLogObserver``)."""

    def __init__(self, outFile: IO[str], formatEvent: Callable[[Event], str | None]) -> None:
        self._out = outFile
        self._format = formatEvent

    def __call__(self, event: Event) -> None:
        text = self._format(event)
        if text:
            self._out.write(text)
            self._out.flush()


def _text_line(event: Event) -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(event.get("log_time", time.time())))
    text = formatEvent(event)
    failure = event.get("log_failure")
    if isinstance(failure, Failure):
        text += "\n" + failure.getTraceback().rstrip("\n")
    return f"{stamp} [{event.get('log_namespace', '-')}#{event['log_level'].name}] {text}\n"


def textFileLogObserver(outFile: IO[str], timeFormat: str | None = None) -> FileLogObserver:
    """An observer writing ``time [namespace#level] message`` lines to ``outFile``."""
    return FileLogObserver(outFile, _text_line)


class _Beginner:
    def beginLoggingTo(
        self, observers: list[Observer], discardBuffer: bool = False, redirectStandardIO: bool = True
    ) -> None:
        """Send every record (INFO and up, unless the root level says otherwise) to ``observers``.

        ``redirectStandardIO`` is accepted and ignored: ``print`` stays ``print``.
        """
        root = logging.getLogger()
        if root.level == logging.WARNING:  # the default: let INFO through, as Twisted does
            root.setLevel(logging.INFO)
        for observer in observers:
            globalLogPublisher.addObserver(observer)


globalLogBeginner = _Beginner()
