"""``twisted.python.failure``: ``Failure``, an exception and what to ask of it.

A ``Failure`` wraps one exception (``value``, ``type``, ``tb``). Deferreds
carry one down their errback chain. ``cleanFailure()`` (Deferreds call it)
keeps the traceback as text and drops the frames, so that a failed Deferred
does not sit in a reference cycle through its own frames: it is freed, and
its unhandled error logged, as soon as the last reference goes.
"""

from __future__ import annotations

import sys
import traceback
from types import TracebackType
from typing import IO, Any, NoReturn

__all__ = ["Failure", "NoCurrentExceptionError"]


class NoCurrentExceptionError(Exception):
    """``Failure()`` was called with no exception being handled."""


class Failure:
    """An exception, with Twisted's questions: ``check``, ``trap``, ``getErrorMessage``...

    ``Failure(exc)`` wraps ``exc``; ``Failure()`` inside an ``except`` block wraps
    the exception being handled. Unlike Twisted's, a ``Failure`` never wraps a
    bare exception *type*: pass an instance.
    """

    __slots__ = ("_text", "tb", "type", "value")

    def __init__(
        self,
        exc_value: BaseException | None = None,
        exc_type: type[BaseException] | None = None,
        exc_tb: TracebackType | None = None,
    ) -> None:
        if exc_value is None:
            current = sys.exc_info()[1]
            if current is None:
                raise NoCurrentExceptionError("Failure() with no arguments outside an except block")
            exc_value = current
        if isinstance(exc_value, Failure):
            exc_value = exc_value.value
        self.value: BaseException = exc_value
        self.type: type[BaseException] = exc_type or type(exc_value)
        self.tb: TracebackType | None = exc_tb or exc_value.__traceback__
        self._text: str | None = None

    def __repr__(self) -> str:
        return f"<Failure {self.type.__name__}: {self.value}>"

    __str__ = __repr__

    def getErrorMessage(self) -> str:
        """``str(value)``: the message only."""
        return str(self.value)

    def check(self, *errorTypes: type[BaseException]) -> type[BaseException] | None:
        """The first of ``errorTypes`` the exception is an instance of, else None."""
        for t in errorTypes:
            if isinstance(self.value, t):
                return t
        return None

    def trap(self, *errorTypes: type[BaseException]) -> type[BaseException]:
        """Like ``check``, but re-raise this failure's exception when it is none of them.

        The usual first line of an errback that handles some errors only.
        """
        matched = self.check(*errorTypes)
        if matched is None:
            self.raiseException()
        return matched

    def raiseException(self) -> NoReturn:
        """Raise the wrapped exception (with its traceback, while the failure still has it)."""
        raise self.value.with_traceback(self.tb)

    def getTraceback(self, elideFrameworkCode: int = 0, detail: str = "default") -> str:
        """The traceback as text, Python's format (``detail='brief'``: one line)."""
        if detail == "brief":
            return f"{self.type.__name__}: {self.value}\n"
        if self._text is not None:
            return self._text
        return "".join(traceback.format_exception(self.type, self.value, self.tb))

    def printTraceback(
        self, file: IO[str] | None = None, elideFrameworkCode: int = 0, detail: str = "default"
    ) -> None:
        """Write ``getTraceback()`` to ``file`` (stderr by default)."""
        (file or sys.stderr).write(self.getTraceback(elideFrameworkCode, detail))

    def printBriefTraceback(self, file: IO[str] | None = None, elideFrameworkCode: int = 0) -> None:
        self.printTraceback(file, elideFrameworkCode, detail="brief")

    def cleanFailure(self) -> None:
        """Keep the traceback as text, drop the frames (they hold every local of the stack)."""
        if self._text is None:
            self._text = self.getTraceback()
        self.tb = None
        self.value.__traceback__ = None

    def getTracebackObject(self) -> TracebackType | None:
        return self.tb

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, Failure) and other.value is self.value

    def __hash__(self) -> int:
        return id(self.value)
