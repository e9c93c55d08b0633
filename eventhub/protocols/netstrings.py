"""Netstrings (https://cr.yp.to/proto/netstrings.txt): ``b"5:hello,"`` is ``b"hello"``."""

from __future__ import annotations

from eventhub.protocols._base import Framer
from eventhub.protocols._errors import BadLengthPrefix, MessageTooLong, MissingComma

DEFAULT_MAX_NETSTRING = 1024 * 1024

_COLON = 0x3A
_COMMA = 0x2C
_ZERO = 0x30
_NINE = 0x39


class NetstringFramer(Framer):
    """Decode ``<decimal length>:<payload>,``, as the spec says: no leading zeros, no sign.

    The length is checked byte by byte as it arrives, so a peer that sends
    ``b"99999999999..."`` or ``b"GET / HTTP/1.1"`` is refused after at most
    ``len(str(max_length)) + 1`` bytes, and a stated length above ``max_length`` is
    refused before any of the payload is buffered.
    """

    __slots__ = ("_max_digits", "_max_length")

    def __init__(self, max_length: int = DEFAULT_MAX_NETSTRING) -> None:
        if max_length < 0:
            raise ValueError(f"max_length must be >= 0, got {max_length}")
        super().__init__()
        self._max_length = max_length
        self._max_digits = len(str(max_length))

    @property
    def max_length(self) -> int:
        return self._max_length

    def encode(self, message: bytes) -> bytes:
        if len(message) > self._max_length:
            raise MessageTooLong("netstring", len(message), self._max_length)
        return b"%d:%s," % (len(message), message)

    def _scan(self, buf: bytearray, pos: int, count: int | None) -> tuple[list[bytes], int]:
        window, limit = self._max_digits + 1, self._max_length
        out: list[bytes] = []
        total = len(buf)
        with memoryview(buf) as view:
            while len(out) != count and (colon := buf.find(b":", pos, pos + window)) > pos:
                digits = buf[pos:colon]
                if not digits.isdigit() or (digits[0] == _ZERO and colon > pos + 1):
                    break
                length = int(digits)
                end = colon + 1 + length
                if length > limit or end >= total or buf[end] != _COMMA:
                    break
                out.append(view[colon + 1 : end].tobytes())
                pos = end + 1
        return out, pos

    def _parse_at(self, buf: bytearray, pos: int) -> tuple[bytes, int] | None:
        colon = self._find_colon(buf, pos)
        if colon is None:
            return None
        length = int(buf[pos:colon])
        if length > self._max_length:
            raise MessageTooLong("netstring", length, self._max_length)
        end = colon + 1 + length
        if len(buf) <= end:
            return None
        if buf[end] != _COMMA:
            got = bytes(buf[end : end + 1])
            raise MissingComma(f"netstring of {length} bytes ends with {got!r}, not b','")
        return bytes(buf[colon + 1 : end]), end + 1

    def _find_colon(self, buf: bytearray, pos: int) -> int | None:
        """Validate the length digits at ``pos``; the colon's index once it is here."""
        colon = buf.find(b":", pos, pos + self._max_digits + 1)
        if colon > pos:
            digits = buf[pos:colon]
            if digits.isdigit() and (digits[0] != _ZERO or colon == pos + 1):
                return colon  # the common case, checked in C
        return self._check_digits(buf, pos)

    def _check_digits(self, buf: bytearray, pos: int) -> int | None:
        """Byte by byte: the colon's index, None if more are needed, or the first error.

        The loop visits at most ``max_digits + 1`` bytes, and it raises at the first
        bad byte whatever the chunking was, so the error does not depend on it.
        """
        for i in range(min(len(buf) - pos, self._max_digits + 1)):
            byte = buf[pos + i]
            if byte == _COLON:
                if i == 0:
                    raise BadLengthPrefix("netstring length is empty (b':' came first)")
                return pos + i
            if not _ZERO <= byte <= _NINE:
                got = bytes([byte])
                raise BadLengthPrefix(f"netstring length has the non-digit {got!r} at offset {i}")
            if i == 1 and buf[pos] == _ZERO:
                raise BadLengthPrefix("netstring length has a leading zero")
            if i == self._max_digits:
                digits = int(buf[pos : pos + i + 1])
                raise MessageTooLong("netstring", digits, self._max_length, at_least=True)
        return None
