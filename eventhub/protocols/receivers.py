"""Protocols that frame their input: ``line_received`` / ``string_received`` instead of chunks.

Thin adapters over the sans-IO framers, named after Twisted's: subclass one,
override the ``*_received`` callback, send with ``send_line`` / ``send_string``::

    class Chat(LineReceiver):
        delimiter = b"\\n"

        def line_received(self, line: bytes) -> None:
            self.send_line(b"you said: " + line)

The framer is built on first use from the class attributes (``delimiter``,
``max_length``, ``prefix_size``), so subclasses need no ``__init__``.

At most ``messages_per_call`` messages (64) are delivered per callback: the
rest wait in the buffer, with reading paused, for a ``transport.call_soon``
callback, so one client that sends 100,000 short lines in one write cannot hold
the loop (see ``_FramedReceiver``). ``pause_receiving()`` / ``resume_receiving()``
hold delivery back for the protocol's own reasons (a rate limit).

When the peer breaks the framing (a line over ``max_length``, a bad netstring
length...) the messages before the error are still delivered, then
``framing_failed(error)`` runs; by default it logs one warning, keeps the error
on ``self.framing_error`` and calls ``transport.lose_connection()`` (what was
written so far is flushed, nothing more is read). ``connection_lost`` then gets
the reason the transport reports (``None`` for that clean close): look at
``self.framing_error`` to tell the two apart. Like Twisted's ``LineReceiver``,
no more messages are delivered once the transport is closing.
"""

from __future__ import annotations

import logging
from abc import abstractmethod

from eventhub._logging import RateLimitedLog
from eventhub.protocol import Protocol, Transport
from eventhub.protocols._base import Framer
from eventhub.protocols._errors import FramingError
from eventhub.protocols.lines import DEFAULT_MAX_LINE, LineFramer
from eventhub.protocols.netstrings import DEFAULT_MAX_NETSTRING, NetstringFramer
from eventhub.protocols.prefixed import DEFAULT_MAX_PREFIXED, LengthPrefixFramer

__all__ = ["Int32StringReceiver", "LineReceiver", "NetstringReceiver"]

log = logging.getLogger("eventhub.protocols")
_limited = RateLimitedLog(log)


class _FramedReceiver(Protocol):
    """Feeds ``data_received`` through a framer; one message at a time to ``_deliver``.

    At most ``messages_per_call`` messages are delivered per callback. When a
    chunk holds more (a 256 KiB read of short lines is 100,000 of them), reading
    is paused, the rest stays in the framer's buffer, and delivery goes on from
    a ``transport.call_soon`` callback, so the loop serves every other
    connection in between; reading resumes once the buffer holds no complete
    message. ``pause_receiving`` / ``resume_receiving`` stop and restart
    delivery (and reading) for the protocol's own reasons: a rate limit, or
    backpressure from ``pause_writing``. Use them, not the transport's
    ``pause_reading``: the receiver resumes reading when it has caught up,
    and would undo a pause it does not know of.
    """

    messages_per_call: int = 64
    framing_error: FramingError | None = None
    _framer: Framer | None = None
    _pending: list[bytes] | None = None  # framed, not delivered: pause_receiving cut a batch short
    _receiving_paused: bool = False  # by pause_receiving
    _reading_held: bool = False  # reading paused by this receiver (budget spent, or receiving paused)
    _soon: bool = False  # a _pump is scheduled

    @abstractmethod
    def _make_framer(self) -> Framer: ...

    @abstractmethod
    def _deliver(self, message: bytes) -> None: ...

    @property
    def framer(self) -> Framer:
        """This connection's framer (built from the class attributes on first use)."""
        if self._framer is None:
            self._framer = self._make_framer()
        return self._framer

    def data_received(self, data: bytes) -> None:
        framer = self.framer
        if framer.broken is not None:
            return  # reported once already; the connection is closing
        framer.receive_data(data)
        self._pump()

    def _pump(self) -> None:
        """Deliver up to ``messages_per_call`` messages; yield to the loop if more may wait."""
        framer = self.framer
        budget = self.messages_per_call
        try:
            while self._accepting():
                if budget <= 0:
                    self._yield_to_loop()
                    return
                batch, self._pending = self._pending or framer.take_ready(budget), None
                if batch:
                    budget -= self._deliver_batch(batch)
                    continue
                message = framer.next_message()  # what the fast path left; errors surface here
                if message is None:
                    self._release_reading()
                    return
                self._deliver(message)
                budget -= 1
        except FramingError as err:
            self.framing_failed(err)
            return
        if self._receiving_paused:
            self._hold_reading()
        else:
            self._release_reading()  # closing, or (LineReceiver) raw mode: not ours to hold

    def _deliver_batch(self, messages: list[bytes]) -> int:
        """Deliver a batch; how many were delivered before the protocol stopped accepting."""
        for i, message in enumerate(messages):
            if not self._accepting():
                if self._receiving_paused and self._open():
                    self._pending = messages[i:]
                else:
                    self._undelivered(messages[i:])
                return i
            self._deliver(message)
        return len(messages)

    def _yield_to_loop(self) -> None:
        self._hold_reading()
        if not self._soon:
            self._soon = True
            self._connected().call_soon(self._resume_pump)

    def _resume_pump(self) -> None:
        self._soon = False
        if self._open() and self.framer.broken is None:
            self._pump()

    def _hold_reading(self) -> None:
        if not self._reading_held:
            self._reading_held = True
            self._connected().pause_reading()

    def _release_reading(self) -> None:
        if self._reading_held:
            self._reading_held = False
            self._connected().resume_reading()

    def pause_receiving(self) -> None:
        """Deliver no more messages, and read no more, until ``resume_receiving()``."""
        self._receiving_paused = True
        self._hold_reading()

    def resume_receiving(self) -> None:
        """Deliver what was held back (on the next pass of the loop), then read again."""
        if not self._receiving_paused:
            return
        self._receiving_paused = False
        if self._open():
            self._yield_to_loop()

    def _undelivered(self, messages: list[bytes]) -> None:
        """Messages framed but not delivered because the transport is closing: dropped."""

    def _accepting(self) -> bool:
        return not self._receiving_paused and self._open()

    def _open(self) -> bool:
        transport = self.transport
        return transport is None or not transport.is_closing()

    def framing_failed(self, error: FramingError) -> None:
        """The peer broke the framing: log it, remember it, close after flushing."""
        self.framing_error = error
        transport = self._connected()
        # A client can trigger this at will: at most one line per kind of error per interval.
        peer, cause = transport.get_peer(), type(error).__name__
        _limited.log(logging.WARNING, "closing connection from %s: %s", peer, error, cause=cause)
        transport.lose_connection()

    def _send(self, message: bytes) -> None:
        self._connected().write(self.framer.encode(message))

    def _connected(self) -> Transport:
        if self.transport is None:
            raise RuntimeError(f"{type(self).__name__} is not connected (no transport yet)")
        return self.transport


class LineReceiver(_FramedReceiver):
    """Lines split on ``delimiter``; ``line_received(line)`` gets each without it.

    ``set_raw_mode()`` hands the following bytes (the rest of the buffer first) to
    ``raw_data_received`` until ``set_line_mode()``, as in Twisted.
    """

    delimiter: bytes = b"\r\n"
    max_length: int = DEFAULT_MAX_LINE
    _raw_mode: bool = False
    _unframed: bytes = b""  # lines framed before a switch to raw mode, as bytes again

    def _make_framer(self) -> Framer:
        return LineFramer(self.delimiter, self.max_length)

    def _deliver(self, message: bytes) -> None:
        self.line_received(message)

    def line_received(self, line: bytes) -> None:
        """One line arrived, delimiter stripped. Override this."""
        raise NotImplementedError(f"{type(self).__name__} must override line_received")

    def send_line(self, line: bytes) -> None:
        """Write ``line`` and the delimiter; raises DelimiterInMessage or LineTooLong."""
        self._send(line)

    def data_received(self, data: bytes) -> None:
        if self._raw_mode:
            self.raw_data_received(data)
            return
        super().data_received(data)

    def _pump(self) -> None:
        super()._pump()
        self._flush_raw()

    def _accepting(self) -> bool:
        return not self._raw_mode and super()._accepting()

    def set_raw_mode(self) -> None:
        """Deliver what follows to ``raw_data_received`` (from the next byte on)."""
        self._raw_mode = True

    def set_line_mode(self, extra: bytes = b"") -> None:
        """Back to lines; ``extra`` is parsed as if it had just arrived."""
        self._raw_mode = False
        if extra:
            self.data_received(extra)

    def raw_data_received(self, data: bytes) -> None:
        """Bytes received in raw mode. Override this if you use ``set_raw_mode``."""
        raise NotImplementedError(f"{type(self).__name__} must override raw_data_received")

    def _undelivered(self, messages: list[bytes]) -> None:
        if self._raw_mode:  # split() is lossless: joining gives back the exact bytes
            delimiter = self._line_framer().delimiter
            self._unframed = delimiter.join(messages) + delimiter

    def _flush_raw(self) -> None:
        # line_received switched to raw mode: the bytes after that line are raw data.
        if self._raw_mode and self.framer.broken is None:
            rest = self._unframed + self.framer.take_buffer()
            self._unframed = b""
            if rest:
                self.raw_data_received(rest)

    def _line_framer(self) -> LineFramer:
        framer = self.framer
        assert isinstance(framer, LineFramer)
        return framer


class _StringReceiver(_FramedReceiver):
    """Whole messages (strings) in and out; subclasses choose the framing in ``_make_framer``."""

    def _deliver(self, message: bytes) -> None:
        self.string_received(message)

    def string_received(self, string: bytes) -> None:
        """One message's payload arrived. Override this."""
        raise NotImplementedError(f"{type(self).__name__} must override string_received")

    def send_string(self, string: bytes) -> None:
        """Write ``string`` framed; raises MessageTooLong over ``max_length``."""
        self._send(string)


class NetstringReceiver(_StringReceiver):
    """Netstrings (``b"5:hello,"``); ``string_received(s)`` gets each payload."""

    max_length: int = DEFAULT_MAX_NETSTRING

    def _make_framer(self) -> Framer:
        return NetstringFramer(self.max_length)


class Int32StringReceiver(_StringReceiver):
    """Messages with a big-endian length prefix (``prefix_size`` bytes, 4 by default)."""

    max_length: int = DEFAULT_MAX_PREFIXED
    prefix_size: int = 4

    def _make_framer(self) -> Framer:
        return LengthPrefixFramer(self.max_length, self.prefix_size)
