"""Length-prefixed messages: an unsigned big-endian length (4 bytes by default), then payload."""

from __future__ import annotations

from eventhub.protocols._base import Framer
from eventhub.protocols._errors import MessageTooLong

DEFAULT_MAX_PREFIXED = 1024 * 1024

_PREFIX_SIZES = (1, 2, 4, 8)


class LengthPrefixFramer(Framer):
    """Decode ``<length: prefix_size bytes, big-endian><payload>`` (``Int32StringReceiver``).

    A stated length above ``max_length`` breaks the framer as soon as the prefix is
    complete, before any payload is buffered.
    """

    __slots__ = ("_max_length", "_prefix_size")

    def __init__(self, max_length: int = DEFAULT_MAX_PREFIXED, prefix_size: int = 4) -> None:
        if prefix_size not in _PREFIX_SIZES:
            raise ValueError(f"prefix_size must be one of {_PREFIX_SIZES}, got {prefix_size}")
        limit = (1 << (8 * prefix_size)) - 1
        if not 0 <= max_length <= limit:
            raise ValueError(f"max_length must be in 0..{limit} for a {prefix_size}-byte prefix")
        super().__init__()
        self._max_length = max_length
        self._prefix_size = prefix_size

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

    def _parse(self) -> bytes | None:
        buf = self._buf
        size = self._prefix_size
        if len(buf) < size:
            return None
        length = int.from_bytes(buf[:size], "big")
        if length > self._max_length:
            raise MessageTooLong("message", length, self._max_length)
        end = size + length
        if len(buf) < end:
            return None
        message = bytes(buf[size:end])
        del buf[:end]
        return message
