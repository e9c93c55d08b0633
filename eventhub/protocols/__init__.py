"""Sans-IO framers (bytes in, messages out) and the Protocol adapters that drive them.

Framers: ``LineFramer``, ``NetstringFramer``, ``LengthPrefixFramer``.
Adapters (``eventhub.protocol.Protocol`` subclasses): ``LineReceiver``,
``NetstringReceiver``, ``Int32StringReceiver``.

A framer never touches a socket: ``feed(data)`` returns the complete messages,
``encode(message)`` returns the bytes to send. Bad bytes raise a subclass of
:class:`FramingError` and leave the framer broken (see ``eventhub.protocols._base``).
"""

from __future__ import annotations

from eventhub.protocols._base import Framer
from eventhub.protocols._errors import (
    BadLengthPrefix,
    DelimiterInMessage,
    FramingError,
    LineTooLong,
    MessageTooLong,
    MissingComma,
)
from eventhub.protocols.lines import LineFramer
from eventhub.protocols.netstrings import NetstringFramer
from eventhub.protocols.prefixed import LengthPrefixFramer
from eventhub.protocols.receivers import Int32StringReceiver, LineReceiver, NetstringReceiver

__all__ = [
    "BadLengthPrefix",
    "DelimiterInMessage",
    "Framer",
    "FramingError",
    "Int32StringReceiver",
    "LengthPrefixFramer",
    "LineFramer",
    "LineReceiver",
    "LineTooLong",
    "MessageTooLong",
    "MissingComma",
    "NetstringFramer",
    "NetstringReceiver",
]
