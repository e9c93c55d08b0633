"""What every framer shares: the receive buffer, the broken state, and ``feed``.

A framer has two states. *Open*: ``receive_data`` appends to the buffer and
``next_message`` / ``take_ready`` take complete messages off its front. *Broken*: the first
:class:`FramingError` is kept, the buffer is dropped (the bytes after a framing
error cannot be trusted), and every later call raises that same error again.
There is no way back: a connection whose peer broke the framing gets closed.

Taking messages does not cut the buffer: a read offset (``_pos``) moves past
them, and the consumed prefix is cut once, when more bytes arrive (or all at
once when the buffer is used up). A caller that takes a few messages at a time
from a 256 KiB chunk (``take_ready(limit)``, to bound the work per callback)
thus moves the unread rest once per chunk, not once per message.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from eventhub.protocols._errors import FramingError

Buffer = bytes | bytearray | memoryview


class Framer(ABC):
    """Bytes in, messages out; never touches a socket (the h11 shape)."""

    __slots__ = ("_buf", "_error", "_pos")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._pos = 0  # bytes before it were taken as messages already
        self._error: FramingError | None = None

    @property
    def broken(self) -> FramingError | None:
        """The error that broke this framer, or None while it is open."""
        return self._error

    def receive_data(self, data: Buffer) -> None:
        """Append bytes from the peer; raises the stored error if the framer is broken."""
        if self._error is not None:
            raise self._raise_again()
        if self._pos:
            del self._buf[: self._pos]  # the one cut of what was taken since the last chunk
            self._pos = 0
        self._buf += data

    def next_message(self) -> bytes | None:
        """Take the next complete message off the buffer, or None if more bytes are needed."""
        if self._error is not None:
            raise self._raise_again()
        try:
            found = self._parse_at(self._buf, self._pos)
        except FramingError as err:
            self._break(err)
            raise
        if found is None:
            return None
        message, end = found
        self._consumed(end)
        return message

    def take_ready(self, limit: int | None = None) -> list[bytes]:
        """Take the complete, well-formed messages at the front of the buffer, fast.

        At most ``limit`` of them when given (the rest stay buffered, uncopied).
        It never raises for bad bytes and may stop before the last complete message:
        call ``next_message()`` afterwards for the rest and for any error. Meant for
        callers that hand messages over one at a time and may stop between two
        (the ``eventhub.protocols`` receivers); ``feed()`` does both steps at once.
        """
        if self._error is not None:
            raise self._raise_again()
        out, end = self._scan(self._buf, self._pos, limit)
        self._consumed(end)
        return out

    def _consumed(self, end: int) -> None:
        """Messages were taken up to ``end``: move the read offset (cut only an emptied buffer)."""
        if end == len(self._buf):
            self._buf.clear()
            self._pos = 0
        else:
            self._pos = end

    def feed(self, data: Buffer) -> list[bytes]:
        """``receive_data`` then every complete message, in order.

        On a framing error the messages completed before it in this call are in the
        error's ``messages``; the framer is broken afterwards.
        """
        self.receive_data(data)
        return self._drain()

    def _drain(self) -> list[bytes]:
        # Two passes over the buffer, both at a moving offset, cutting the buffer
        # once at the end (one memmove per feed(), not one per message). _scan is
        # the subclass's fast loop for well-formed input; it stops at the first
        # thing it is unsure of, and _parse_at takes over from there, with the
        # exact errors and the partial-message bookkeeping.
        buf = self._buf
        out, pos = self._scan(buf, self._pos, None)
        try:
            while (found := self._parse_at(buf, pos)) is not None:
                message, pos = found
                out.append(message)
        except FramingError as err:
            self._break(err)
            err.messages = tuple(out)
            raise
        self._consumed(pos)
        return out

    def _break(self, err: FramingError) -> None:
        self._error = err
        self._buf.clear()
        self._pos = 0

    def take_buffer(self) -> bytes:
        """Return and clear the bytes not yet framed (to hand them to another parser)."""
        if self._error is not None:
            raise self._raise_again()
        with memoryview(self._buf) as view:
            data = view[self._pos :].tobytes()
        self._buf.clear()
        self._pos = 0
        return data

    @property
    def buffered(self) -> int:
        """How many received bytes wait for the rest of their message."""
        return len(self._buf) - self._pos

    @abstractmethod
    def encode(self, message: bytes) -> bytes:
        """Frame one message for the peer; raises a FramingError if it cannot be framed."""

    def _scan(self, buf: bytearray, pos: int, limit: int | None) -> tuple[list[bytes], int]:
        """Well-formed messages from ``buf[pos]`` on (at most ``limit``), and the offset after them.

        An optional fast path: it may stop early anywhere (at bad bytes, say) and
        must not raise or change ``buf``. The default takes nothing.
        """
        return [], pos

    @abstractmethod
    def _parse_at(self, buf: bytearray, pos: int) -> tuple[bytes, int] | None:
        """The message starting at ``buf[pos]`` and the offset just past it, or None.

        None means more bytes are needed; bad bytes raise a FramingError. It must
        not change ``buf`` (the caller cuts the consumed prefix).
        """

    def _raise_again(self) -> FramingError:
        assert self._error is not None
        self._error.messages = ()
        # Drop the traceback of the first raise so that re-raising never grows a chain.
        return self._error.with_traceback(None)
