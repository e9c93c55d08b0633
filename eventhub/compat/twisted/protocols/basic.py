"""``twisted.protocols.basic``: line and string receivers, parsed by eventhub's sans-IO framers.

Each receiver is a compat ``Protocol`` (camelCase) whose ``dataReceived``
feeds an ``eventhub.protocols`` framer (``LineFramer``, ``NetstringFramer``,
``LengthPrefixFramer``) and hands the messages on with Twisted's names and
Twisted's rules:

- no more lines are delivered once the transport is disconnecting, or once
  ``lineReceived`` returned something true;
- ``setRawMode()`` from ``lineReceived`` hands the bytes after that line to
  ``rawDataReceived``; ``setLineMode(extra)`` parses ``extra`` as lines again;
- a line over ``MAX_LENGTH`` calls ``lineLengthExceeded(data)`` (``data``
  starts with the over-long line and holds what was buffered after it), whose
  default closes the connection; the buffer is then dropped and what arrives
  next is parsed afresh, as in Twisted;
- ``pauseProducing()`` holds delivery back (and pauses the transport) until
  ``resumeProducing()``, as Twisted's ``LineReceiver`` does;
- a string receiver whose peer breaks the framing calls
  ``handleParseError`` (netstrings) or ``lengthLimitExceeded(length)``
  (length prefixes); their defaults close the connection.

``sendLine`` writes ``line + delimiter`` without checking ``line``, as Twisted does.
"""

from __future__ import annotations

import struct
from collections import deque
from typing import Any

from eventhub.compat.twisted.internet.protocol import Protocol
from eventhub.protocols import (
    FramingError,
    LengthPrefixFramer,
    LineFramer,
    LineTooLong,
    MessageTooLong,
    NetstringFramer,
)
from eventhub.protocols._base import Framer

__all__ = [
    "Int8StringReceiver",
    "Int16StringReceiver",
    "Int32StringReceiver",
    "IntNStringReceiver",
    "LineOnlyReceiver",
    "LineReceiver",
    "NetstringParseError",
    "NetstringReceiver",
    "StringTooLongError",
]


class NetstringParseError(ValueError):
    """The peer's bytes are not a netstring (Twisted's name)."""


class StringTooLongError(AssertionError):
    """``sendString`` of a string its length prefix cannot express."""


class _Exceeded(Exception):
    """The next line is over ``MAX_LENGTH``; ``data`` is the buffer from its start."""

    def __init__(self, data: bytes) -> None:
        super().__init__(len(data))
        self.data = data


class LineReceiver(Protocol):
    """Lines split on ``delimiter`` to ``lineReceived``; raw mode to ``rawDataReceived``."""

    delimiter: bytes = b"\r\n"
    MAX_LENGTH: int = 16384
    line_mode: int = 1

    _lines: LineFramer | None = None
    _ready: deque[bytes] | None = None  # a fast-path batch the framer handed over, not yet delivered
    _raw: bytes = b""  # bytes waiting for rawDataReceived
    _busyReceiving: bool = False

    # -- what subclasses override ----------------------------------------------

    def lineReceived(self, line: bytes) -> Any:
        """One line, without its delimiter. Override this."""
        raise NotImplementedError(f"{type(self).__name__} must override lineReceived")

    def rawDataReceived(self, data: bytes) -> Any:
        """Bytes received in raw mode. Override this if you call ``setRawMode``."""
        raise NotImplementedError(f"{type(self).__name__} must override rawDataReceived")

    def lineLengthExceeded(self, line: bytes) -> Any:
        """A line is longer than ``MAX_LENGTH``: close the connection (override to do otherwise)."""
        assert self.transport is not None
        return self.transport.loseConnection()

    # -- what subclasses call -----------------------------------------------------

    def sendLine(self, line: bytes) -> None:
        assert self.transport is not None
        self.transport.write(line + self.delimiter)

    def setRawMode(self) -> None:
        """Hand what follows (from the byte after the current line) to ``rawDataReceived``."""
        self.line_mode = 0

    def setLineMode(self, extra: bytes = b"") -> Any:
        """Back to lines; ``extra`` is parsed as if it had just arrived."""
        self.line_mode = 1
        if extra:
            return self.dataReceived(extra)
        return None

    # -- producer (Twisted's _PauseableMixin) ------------------------------------------

    paused: bool = False

    def pauseProducing(self) -> None:
        """Deliver nothing more, and stop reading from the peer, until ``resumeProducing``."""
        self.paused = True
        if self.transport is not None:
            self.transport.pauseProducing()

    def resumeProducing(self) -> None:
        """Deliver what was held back, and read again."""
        self.paused = False
        if self.transport is not None:
            self.transport.resumeProducing()
        self.dataReceived(b"")

    def stopProducing(self) -> None:
        self.paused = True
        if self.transport is not None:
            self.transport.stopProducing()

    def clearLineBuffer(self) -> bytes:
        """Drop and return everything received and not yet delivered."""
        data = self._unframed() + self._raw
        self._raw = b""
        return data

    # -- the work ------------------------------------------------------------------

    def dataReceived(self, data: bytes) -> Any:
        if self.line_mode:
            self._framer().receive_data(data)
        else:
            self._raw += data
        if self._busyReceiving:
            return None  # a callback gave us more: the loop running below takes it
        self._busyReceiving = True
        try:
            return self._deliver()
        finally:
            self._busyReceiving = False

    def _deliver(self) -> Any:
        while not self.paused:
            if not self.line_mode:
                self._raw = self._unframed() + self._raw
                if not self._raw:
                    return None
                data, self._raw = self._raw, b""
                why = self.rawDataReceived(data)
                if why:
                    return why
                continue
            try:
                line = self._next_line()
            except _Exceeded as exceeded:
                self._lines = None  # broken; what arrives next is parsed afresh
                return self.lineLengthExceeded(exceeded.data)
            if line is None:
                return None
            why = self.lineReceived(line)
            if why or (self.transport is not None and self.transport.disconnecting):
                return why
        return None

    def _next_line(self) -> bytes | None:
        if self._ready:
            return self._ready.popleft()
        framer = self._framer()
        batch = framer.take_ready()
        if batch:
            self._ready = deque(batch)
            return self._ready.popleft()
        if framer.buffered <= self.MAX_LENGTH:
            return framer.next_message()  # cannot be an over-long line: no copy needed
        snapshot = framer.take_buffer()  # rare: kept for lineLengthExceeded
        framer.receive_data(snapshot)
        try:
            return framer.next_message()
        except LineTooLong:
            raise _Exceeded(snapshot) from None

    def _framer(self) -> LineFramer:
        framer = self._lines
        if framer is None or framer.delimiter != self.delimiter or framer.max_length != self.MAX_LENGTH:
            held = b"" if framer is None else framer.take_buffer()
            framer = self._lines = LineFramer(self.delimiter, self.MAX_LENGTH)
            framer.receive_data(held)
        return framer

    def _unframed(self) -> bytes:
        """The lines not delivered and the partial line, as the bytes they came as."""
        data = b""
        if self._ready:
            data = self.delimiter.join(self._ready) + self.delimiter
            self._ready = None
        if self._lines is not None:
            data += self._lines.take_buffer()
        return data


class LineOnlyReceiver(LineReceiver):
    """Lines only (no raw mode): ``lineReceived``, ``sendLine``, ``MAX_LENGTH``."""

    def setRawMode(self) -> None:
        raise NotImplementedError("LineOnlyReceiver has no raw mode; use LineReceiver")


class _StringReceiver(Protocol):
    """Whole strings in (``stringReceived``) and out (``sendString``) through a framer."""

    MAX_LENGTH: int = 99999
    _strings: Framer | None = None

    def _make_framer(self) -> Framer:
        raise NotImplementedError

    def stringReceived(self, string: bytes) -> None:
        """One string arrived. Override this."""
        raise NotImplementedError(f"{type(self).__name__} must override stringReceived")

    def _framing_failed(self, error: FramingError) -> None:
        raise NotImplementedError

    def dataReceived(self, data: bytes) -> None:
        framer = self._strings
        if framer is None:
            framer = self._strings = self._make_framer()
        if framer.broken is not None:
            return  # reported once; the connection is closing
        try:
            framer.receive_data(data)
            if self._deliver_all(framer.take_ready()):
                while (string := framer.next_message()) is not None:
                    self.stringReceived(string)
                    if self._closing():
                        return
        except FramingError as error:
            self._framing_failed(error)

    def _deliver_all(self, strings: list[bytes]) -> bool:
        for string in strings:
            if self._closing():
                return False
            self.stringReceived(string)
        return not self._closing()

    def _closing(self) -> bool:
        return self.transport is not None and self.transport.disconnecting

    def _write(self, framed: bytes) -> None:
        assert self.transport is not None
        self.transport.write(framed)


class NetstringReceiver(_StringReceiver):
    """Netstrings (``b"5:hello,"``): ``stringReceived``, ``sendString``; ``brokenPeer`` after bad input."""

    brokenPeer = 0

    def _make_framer(self) -> Framer:
        return NetstringFramer(self.MAX_LENGTH)

    def sendString(self, string: bytes) -> None:
        self._write(b"%d:%s," % (len(string), string))

    def _framing_failed(self, error: FramingError) -> None:
        self.parseError = NetstringParseError(str(error))
        self.handleParseError()

    def handleParseError(self) -> None:
        """The peer sent bad netstring framing: close the connection."""
        assert self.transport is not None
        self.transport.loseConnection()
        self.brokenPeer = 1


class IntNStringReceiver(_StringReceiver):
    """Strings with a big-endian length prefix of ``prefixLength`` bytes (``structFormat``)."""

    structFormat: str = "!I"
    prefixLength: int = 4

    def _make_framer(self) -> Framer:
        limit = min(self.MAX_LENGTH, (1 << (8 * self.prefixLength)) - 1)
        return LengthPrefixFramer(limit, self.prefixLength)

    def sendString(self, string: bytes) -> None:
        if len(string) >= 2 ** (8 * self.prefixLength):
            raise StringTooLongError(
                f"Try to send {len(string)} bytes whereas maximum is {2 ** (8 * self.prefixLength)}"
            )
        self._write(struct.pack(self.structFormat, len(string)) + string)

    def _framing_failed(self, error: FramingError) -> None:
        length = error.length if isinstance(error, MessageTooLong) else -1
        self.lengthLimitExceeded(length)

    def lengthLimitExceeded(self, length: int) -> None:
        """A string longer than ``MAX_LENGTH`` was announced: close the connection."""
        assert self.transport is not None
        self.transport.loseConnection()


class Int32StringReceiver(IntNStringReceiver):
    structFormat = "!I"
    prefixLength = 4


class Int16StringReceiver(IntNStringReceiver):
    structFormat = "!H"
    prefixLength = 2


class Int8StringReceiver(IntNStringReceiver):
    structFormat = "!B"
    prefixLength = 1
