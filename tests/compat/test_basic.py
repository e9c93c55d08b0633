"""protocols.basic and protocols.wire: fed whole, byte by byte and at hypothesis-chosen split points.

Tests taking ``basic`` run on the compat module and on Twisted's ``basic`` where
installed, with each side's own string transport.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from protocols._chunks import bytewise, cut, split_points, whole

from eventhub.compat.twisted.internet.protocol import TwistedTransport
from eventhub.compat.twisted.protocols import basic as compat_basic
from eventhub.compat.twisted.protocols import wire
from eventhub.testing import StringTransport


def _twisted_basic() -> ModuleType:
    twisted_basic: ModuleType = pytest.importorskip("twisted.protocols.basic")
    return twisted_basic


@pytest.fixture(params=["compat", "twisted"])
def basic(request: pytest.FixtureRequest) -> ModuleType:
    return compat_basic if request.param == "compat" else _twisted_basic()


class Wire:
    """One side's transport, seen the same way: bytes written, closing or not."""

    def __init__(self, proto: Any, basic: ModuleType) -> None:
        if basic is compat_basic:
            self._ours = StringTransport()
            proto.makeConnection(TwistedTransport(self._ours))
        else:
            from twisted.internet.testing import StringTransport as TwistedStringTransport

            self._theirs = TwistedStringTransport()  # type: ignore[no-untyped-call]  # unannotated in Twisted
            proto.makeConnection(self._theirs)
        self.basic = basic

    def value(self) -> bytes:
        if self.basic is compat_basic:
            return self._ours.value()
        theirs: bytes = self._theirs.value()  # type: ignore[no-untyped-call]  # unannotated in Twisted
        return theirs

    @property
    def disconnecting(self) -> bool:
        return self._ours.disconnecting if self.basic is compat_basic else bool(self._theirs.disconnecting)


def recorder(basic: ModuleType) -> Any:
    """A LineReceiver: ``RAW n`` switches to raw mode for n bytes; ``BYE`` closes."""

    class Recorder(basic.LineReceiver):  # type: ignore[name-defined,misc]
        delimiter = b"\n"
        MAX_LENGTH = 20

        def __init__(self) -> None:
            self.events: list[tuple[str, bytes]] = []
            self.raw_left = 0

        def lineReceived(self, line: bytes) -> None:
            self.events.append(("line", line))
            if line.startswith(b"RAW "):
                self.raw_left = int(line[4:])
                self.setRawMode()
            elif line == b"BYE":
                self.transport.loseConnection()

        def rawDataReceived(self, data: bytes) -> None:
            body, rest = data[: self.raw_left], data[self.raw_left :]
            self.raw_left -= len(body)
            if self.events and self.events[-1][0] == "raw":
                self.events[-1] = ("raw", self.events[-1][1] + body)
            else:
                self.events.append(("raw", body))
            if self.raw_left == 0:
                self.setLineMode(rest)

        def lineLengthExceeded(self, line: bytes) -> None:
            self.events.append(("too long", line))
            self.transport.loseConnection()

    return Recorder


def feed(basic: ModuleType, chunks: list[bytes]) -> tuple[list[tuple[str, bytes]], Wire]:
    proto = recorder(basic)()
    wire_ = Wire(proto, basic)
    for chunk in chunks:
        proto.dataReceived(chunk)
    return proto.events, wire_


# A conversation: lines, raw blocks of any bytes (delimiters included), lines again.
lines = st.binary(max_size=20).filter(lambda b: b"\n" not in b and not b.startswith((b"RAW ", b"BYE")))
raw_blocks = st.binary(min_size=1, max_size=30)
steps = st.lists(
    st.one_of(lines.map(lambda b: ("line", b)), raw_blocks.map(lambda b: ("raw", b))), max_size=8
)


def encode(conversation: list[tuple[str, bytes]]) -> tuple[bytes, list[tuple[str, bytes]]]:
    wire_, expected = b"", []
    for kind, data in conversation:
        if kind == "line":
            wire_ += data + b"\n"
            expected.append(("line", data))
        else:
            header = b"RAW %d" % len(data)
            wire_ += header + b"\n" + data
            expected += [("line", header), ("raw", data)]
    return wire_, expected


@settings(max_examples=60, deadline=None)
@given(conversation=steps, data=st.data())
def test_lines_and_raw_mode_every_chunking(
    conversation: list[tuple[str, bytes]], data: st.DataObject
) -> None:
    wire_bytes, expected = encode(conversation)
    points = data.draw(split_points(wire_bytes))
    sides = [compat_basic]
    with contextlib.suppress(pytest.skip.Exception):
        sides.append(_twisted_basic())  # the same bytes, the same chunks, on Twisted's LineReceiver
    for side in sides:
        for chunking in (whole(wire_bytes), bytewise(wire_bytes), cut(wire_bytes, points)):
            events, _ = feed(side, chunking)
            assert events == expected, (side.__name__, chunking)


def test_no_line_is_delivered_after_lose_connection(basic: ModuleType) -> None:
    events, wire_ = feed(basic, [b"one\nBYE\nafter\n"])
    assert events == [("line", b"one"), ("line", b"BYE")]
    assert wire_.disconnecting


@pytest.mark.parametrize("chunking", [whole, bytewise])
def test_over_long_line_with_its_delimiter(
    basic: ModuleType, chunking: Callable[[bytes], list[bytes]]
) -> None:
    data = b"ok\n" + b"x" * 21 + b"\nlater\n"
    events, wire_ = feed(basic, chunking(data))
    assert events[0] == ("line", b"ok")
    kind, exceeded = events[1]
    assert kind == "too long" and exceeded.startswith(b"x" * 21)
    assert wire_.disconnecting
    if chunking is whole:
        assert exceeded == b"x" * 21 + b"\nlater\n"  # the rest of the buffer, as Twisted passes it
        assert len(events) == 2
    # Byte by byte, the bytes after the error arrive in later calls, which parse afresh (as in
    # Twisted; a real transport reads nothing more once loseConnection was called).


def test_over_long_line_without_delimiter_is_refused_once_max_length_plus_delimiter_arrive(
    basic: ModuleType,
) -> None:
    proto = recorder(basic)()
    wire_ = Wire(proto, basic)
    for _ in range(20):
        proto.dataReceived(b"y")
    assert proto.events == [] and not wire_.disconnecting
    proto.dataReceived(b"y")  # 21 bytes: MAX_LENGTH + len(delimiter), and no delimiter
    assert proto.events == [("too long", b"y" * 21)] and wire_.disconnecting


def test_after_line_length_exceeded_without_closing_parsing_starts_afresh(basic: ModuleType) -> None:
    class Lenient(recorder(basic)):  # type: ignore[misc]
        def lineLengthExceeded(self, line: bytes) -> None:
            self.events.append(("too long", line))

    proto = Lenient()
    Wire(proto, basic)
    proto.dataReceived(b"z" * 25)
    proto.dataReceived(b"tail\nnext\n")
    assert proto.events == [("too long", b"z" * 25), ("line", b"tail"), ("line", b"next")]


def test_pause_producing_holds_lines_back(basic: ModuleType) -> None:
    class Pausing(basic.LineReceiver):  # type: ignore[name-defined,misc]
        def __init__(self) -> None:
            self.lines: list[bytes] = []

        def lineReceived(self, line: bytes) -> None:
            self.lines.append(line)
            if line == b"PAUSE":
                self.pauseProducing()

    proto = Pausing()
    Wire(proto, basic)
    proto.dataReceived(b"a\r\nPAUSE\r\nb\r\n")
    proto.dataReceived(b"c\r\n")
    assert proto.lines == [b"a", b"PAUSE"]
    proto.resumeProducing()
    assert proto.lines == [b"a", b"PAUSE", b"b", b"c"]


def test_send_line_and_clear_line_buffer(basic: ModuleType) -> None:
    class Clearing(basic.LineReceiver):  # type: ignore[name-defined,misc]
        cleared = b""

        def lineReceived(self, line: bytes) -> None:
            self.sendLine(b"got " + line)
            self.cleared = self.clearLineBuffer()

    proto = Clearing()
    wire_ = Wire(proto, basic)
    proto.dataReceived(b"first\r\nsecond\r\nthi")
    assert wire_.value() == b"got first\r\n"
    assert proto.cleared == b"second\r\nthi"
    proto.dataReceived(b"rd\r\n")
    assert wire_.value() == b"got first\r\ngot rd\r\n"


def test_delimiter_changed_between_chunks(basic: ModuleType) -> None:
    class Switching(basic.LineReceiver):  # type: ignore[name-defined,misc]
        def __init__(self) -> None:
            self.lines: list[bytes] = []

        def lineReceived(self, line: bytes) -> None:
            self.lines.append(line)
            self.delimiter = b"|"

    proto = Switching()
    Wire(proto, basic)
    proto.dataReceived(b"a\r\nb|c")
    proto.dataReceived(b"|")
    assert proto.lines == [b"a", b"b", b"c"]


# -- string receivers ------------------------------------------------------------------


def strings(basic: ModuleType, base: str) -> Any:
    class Strings(getattr(basic, base)):  # type: ignore[misc]
        MAX_LENGTH = 10

        def __init__(self) -> None:
            self.got: list[bytes] = []
            self.limits: list[int] = []

        def stringReceived(self, string: bytes) -> None:
            self.got.append(string)

        def lengthLimitExceeded(self, length: int) -> None:
            self.limits.append(length)
            super().lengthLimitExceeded(length)

    return Strings


@pytest.mark.parametrize(
    ("base", "framed"),
    [
        ("NetstringReceiver", b"5:hello,0:,3:abc,"),
        ("Int32StringReceiver", b"\x00\x00\x00\x05hello\x00\x00\x00\x00\x00\x00\x00\x03abc"),
        ("Int16StringReceiver", b"\x00\x05hello\x00\x00\x00\x03abc"),
        ("Int8StringReceiver", b"\x05hello\x00\x03abc"),
    ],
)
@pytest.mark.parametrize("chunking", [whole, bytewise])
def test_string_receivers_round_trip(
    basic: ModuleType, base: str, framed: bytes, chunking: Callable[[bytes], list[bytes]]
) -> None:
    proto = strings(basic, base)()
    wire_ = Wire(proto, basic)
    for chunk in chunking(framed):
        proto.dataReceived(chunk)
    assert proto.got == [b"hello", b"", b"abc"]
    for string in proto.got:
        proto.sendString(string)
    assert wire_.value() == framed


def test_netstring_parse_error_closes(basic: ModuleType) -> None:
    proto = strings(basic, "NetstringReceiver")()
    wire_ = Wire(proto, basic)
    proto.dataReceived(b"3:abc,x:oops,")
    assert proto.got == [b"abc"] and proto.brokenPeer and wire_.disconnecting
    too_long = strings(basic, "NetstringReceiver")()
    wire_ = Wire(too_long, basic)
    too_long.dataReceived(b"11:hello world,")
    assert too_long.got == [] and wire_.disconnecting


def test_length_prefix_over_max_length(basic: ModuleType) -> None:
    proto = strings(basic, "Int32StringReceiver")()
    wire_ = Wire(proto, basic)
    proto.dataReceived(b"\x00\x00\x00\x02ok\x00\x00\x00\x0b")
    assert proto.got == [b"ok"] and proto.limits == [11] and wire_.disconnecting


def test_int_n_send_string_too_long(basic: ModuleType) -> None:
    proto = strings(basic, "Int8StringReceiver")()
    Wire(proto, basic)
    with pytest.raises(basic.StringTooLongError):
        proto.sendString(b"x" * 256)


# -- wire ------------------------------------------------------------------------------


def test_wire_protocols() -> None:
    echo, discard, daytime = wire.Echo(), wire.Discard(), wire.Daytime()
    echo_wire, discard_wire, day_wire = Wire(echo, compat_basic), Wire(discard, compat_basic), None
    echo.dataReceived(b"ping")
    discard.dataReceived(b"into the void")
    day_wire = Wire(daytime, compat_basic)
    assert echo_wire.value() == b"ping" and discard_wire.value() == b""
    assert day_wire.value().endswith(b"\r\n") and day_wire.disconnecting
