"""Length-prefixed messages: an unsigned big-endian length (4 bytes by default), then payload."""

from __future__ import annotations

import struct

from eventhub.protocols._base import Framer
from eventhub.protocols._errors import MessageTooLong

DEFAULT_MAX_PREFIXED = 1024 * 1024

_PREFIX_FORMATS = {1: ">B", 2: ">H", 4: ">I", 8: ">Q"}
_PREFIX_SIZES = tuple(_PREFIX_FORMATS)


class LengthPrefixFramer(Framer):
    """Decode ``<length: prefix_size bytes, big-endian><payload>`` (``Int32StringReceiver``).

    A stated length above ``max_length`` breaks the framer as soon as the prefix is
    complete, before any payload is buffered.
    """

    __slots__ = ("_max_length", "_prefix_size", "_unpack_from")

    def __init__(self, max_length: int = DEFAULT_MAX_PREFIXED, prefix_size: int = 4) -> None:
        if prefix_size not in _PREFIX_SIZES:
            raise ValueError(f"prefix_size must be one of {_PREFIX_SIZES}, got {prefix_size}")
        limit = (1 << (8 * prefix_size)) - 1
        if not 0 <= max_length <= limit:
            raise ValueError(f"max_length must be in 0..{limit} for a {prefix_size}-byte prefix")
        super().__init__()
        self._max_length = max_length
        self._prefix_size = prefix_size
        self._unpack_from = struct.Struct(_PREFIX_FORMATS[prefix_size]).unpack_from

    @property
    def max_length(self) -> int:
        return self._max_length

    @property
    def prefix_size(self) -> int:
        return self._prefix_size

    def encode(self, message: bytes) -> bytes:
        if len(message) > self._max_length:
            raise MessageTooLong("message", len(message), self._max_length)
        return len(message).to_bytes(self._prefix_size, "big") + message

    def _scan(self, buf: bytearray, pos: int, count: int | None) -> tuple[list[bytes], int]:
        size, limit, unpack_from = self._prefix_size, self._max_length, self._unpack_from
        out: list[bytes] = []
        total = len(buf)
        with memoryview(buf) as view:
            while len(out) != count and total - pos >= size:
                (length,) = unpack_from(buf, pos)
                end = pos + size + length
                if length > limit or end > total:
                    break
                out.append(view[pos + size : end].tobytes())
                pos = end
        return out, pos

    def _parse_at(self, buf: bytearray, pos: int) -> tuple[bytes, int] | None:
        start = pos + self._prefix_size
        if len(buf) < start:
            return None
        length = int.from_bytes(buf[pos:start], "big")
        if length > self._max_length:
            raise MessageTooLong("message", length, self._max_length)
        end = start + length
        if len(buf) < end:
            return None
        return bytes(buf[start:end]), end
