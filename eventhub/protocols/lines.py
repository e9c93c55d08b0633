"""Delimited lines (``LineReceiver``-style): ``b"hello\\r\\n"`` is the line ``b"hello"``."""

from __future__ import annotations

from eventhub.protocols._base import Framer
from eventhub.protocols._errors import DelimiterInMessage, LineTooLong

DEFAULT_MAX_LINE = 16384  # Twisted's LineReceiver.MAX_LENGTH


class LineFramer(Framer):
    """Split a byte stream on ``delimiter``; lines longer than ``max_length`` break the framer.

    ``max_length`` counts the line without its delimiter. The buffer never holds more
    than ``max_length + len(delimiter)`` bytes of one unfinished line plus the chunk
    that overflowed it: the error is raised as soon as the line is known to be too long.
    """

    __slots__ = ("_delimiter", "_max_length", "_scan_from")

    def __init__(self, delimiter: bytes = b"\r\n", max_length: int = DEFAULT_MAX_LINE) -> None:
        if not delimiter:
            raise ValueError("delimiter must not be empty")
        if max_length < 0:
            raise ValueError(f"max_length must be >= 0, got {max_length}")
        super().__init__()
        self._delimiter = bytes(delimiter)
        self._max_length = max_length
        # Where the next search for the delimiter starts: bytes before it were searched
        # already, so feeding a long line byte by byte stays linear, not quadratic.
        self._scan_from = 0

    @property
    def delimiter(self) -> bytes:
        return self._delimiter

    @property
    def max_length(self) -> int:
        return self._max_length

    def encode(self, message: bytes) -> bytes:
        """``message + delimiter``; refuses lines the peer would split or reject."""
        framed = message + self._delimiter
        # find() on the framed bytes, not ``in message``: with delimiter b"aa" the line b"a"
        # would become b"aaa", which the peer reads as b"" followed by a stray b"a".
        if framed.find(self._delimiter) != len(message):
            raise DelimiterInMessage(f"line contains the delimiter {self._delimiter!r}")
        if len(message) > self._max_length:
            raise LineTooLong("line", len(message), self._max_length)
        return framed

    def _parse_at(self, buf: bytearray, pos: int) -> tuple[bytes, int] | None:
        size = len(self._delimiter)
        end = buf.find(self._delimiter, pos + self._scan_from)
        if end < 0:
            if len(buf) - pos >= self._max_length + size:
                # The delimiter can start no earlier than len(buf) - size + 1.
                seen = len(buf) - pos - size + 1
                raise LineTooLong("line", seen, self._max_length, at_least=True)
            self._scan_from = max(0, len(buf) - pos - size + 1)
            return None
        if end - pos > self._max_length:
            raise LineTooLong("line", end - pos, self._max_length)
        self._scan_from = 0
        return bytes(buf[pos:end]), end + size

    def _scan(self, buf: bytearray, pos: int, limit: int | None) -> tuple[list[bytes], int]:
        delimiter = self._delimiter
        if buf.find(delimiter, pos + self._scan_from) < 0:
            return [], pos
        if limit is not None:
            return self._scan_some(buf, pos, limit)
        # Many short lines per chunk is the common case: one split() in C. Anything
        # unusual (an over-long line, no complete line) is left to _parse_at.
        with memoryview(buf) as view:
            *lines, rest = view[pos:].tobytes().split(delimiter)
        if max(map(len, lines)) > self._max_length:
            return [], pos
        self._scan_from = 0
        return lines, len(buf) - len(rest)

    def _scan_some(self, buf: bytearray, pos: int, limit: int) -> tuple[list[bytes], int]:
        # At most ``limit`` lines, one find() each: splitting the whole rest of a
        # 256 KiB chunk to take 16 lines of it would copy it once per batch.
        delimiter, size, longest = self._delimiter, len(self._delimiter), self._max_length
        out: list[bytes] = []
        with memoryview(buf) as view:
            while len(out) < limit:
                end = buf.find(delimiter, pos)
                if end < 0 or end - pos > longest:
                    break
                out.append(view[pos:end].tobytes())
                pos = end + size
        self._scan_from = 0
        return out, pos

    def take_buffer(self) -> bytes:
        data = super().take_buffer()
        self._scan_from = 0
        return data
