"""The errors every framer raises: one base class, one subclass per way the bytes were wrong."""

from __future__ import annotations


class FramingError(ValueError):
    """The peer's bytes broke the framing; the framer that raised it is unusable from now on.

    ``messages`` holds the messages that :meth:`feed` completed, in this call, before
    the error (so nothing the peer framed correctly is lost); it is empty when the
    error is raised again by a later call on the broken framer.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.messages: tuple[bytes, ...] = ()


class MessageTooLong(FramingError):
    """A message is longer than the framer's ``max_length``.

    ``length`` is the announced length when the framing states it (netstrings,
    length prefixes), else the number of bytes seen without an end, so a lower bound.
    """

    def __init__(self, what: str, length: int, max_length: int, *, at_least: bool = False) -> None:
        bound = "at least " if at_least else ""
        super().__init__(f"{what} of {bound}{length} bytes exceeds max_length={max_length}")
        self.length = length
        self.max_length = max_length


class LineTooLong(MessageTooLong):
    """A line (without its delimiter) is longer than ``max_length``."""


class BadLengthPrefix(FramingError):
    """A netstring's length is not ``0`` or a decimal number without leading zeros."""


class MissingComma(FramingError):
    """A netstring's payload is not followed by ``,``."""


class DelimiterInMessage(FramingError):
    """A line given to ``encode`` contains the delimiter, so the peer would split it."""
