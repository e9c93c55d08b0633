"""What every framer shares: the receive buffer, the broken state, and ``feed``.

A framer has two states. *Open*: ``receive_data`` appends to the buffer and
``next_message`` takes complete messages off its front. *Broken*: the first
:class:`FramingError` is kept, the buffer is dropped (the bytes after a framing
error cannot be trusted), and every later call raises that same error again.
There is no way back: a connection whose peer broke the framing gets closed.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from eventhub.protocols._errors import FramingError

Buffer = bytes | bytearray | memoryview


class Framer(ABC):
    """Bytes in, messages out; never touches a socket (the h11 shape)."""

    __slots__ = ("_buf", "_error")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._error: FramingError | None = None

    @property
    def broken(self) -> FramingError | None:
        """The error that broke this framer, or None while it is open."""
        return self._error

    def receive_data(self, data: Buffer) -> None:
        """Append bytes from the peer; raises the stored error if the framer is broken."""
        if self._error is not None:
            raise self._raise_again()
        self._buf += data

    def next_message(self) -> bytes | None:
        """Take the next complete message off the buffer, or None if more bytes are needed."""
        if self._error is not None:
            raise self._raise_again()
        try:
            return self._parse()
        except FramingError as err:
            self._error = err
            self._buf.clear()
            raise

    def feed(self, data: Buffer) -> list[bytes]:
        """``receive_data`` then every complete message, in order.

        On a framing error the messages completed before it in this call are in the
        error's ``messages``; the framer is broken afterwards.
        """
        self.receive_data(data)
        out: list[bytes] = []
        try:
            while (message := self.next_message()) is not None:
                out.append(message)
        except FramingError as err:
            err.messages = tuple(out)
            raise
        return out

    def take_buffer(self) -> bytes:
        """Return and clear the bytes not yet framed (to hand them to another parser)."""
        if self._error is not None:
            raise self._raise_again()
        data = bytes(self._buf)
        self._buf.clear()
        return data

    @property
    def buffered(self) -> int:
        """How many received bytes wait for the rest of their message."""
        return len(self._buf)

    @abstractmethod
    def encode(self, message: bytes) -> bytes:
        """Frame one message for the peer; raises a FramingError if it cannot be framed."""

    @abstractmethod
    def _parse(self) -> bytes | None:
        """Take one message off ``self._buf`` or return None; raise FramingError on bad bytes."""

    def _raise_again(self) -> FramingError:
        assert self._error is not None
        self._error.messages = ()
        # Drop the traceback of the first raise so that re-raising never grows a chain.
        return self._error.with_traceback(None)
