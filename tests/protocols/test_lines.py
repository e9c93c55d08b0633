from __future__ import annotations

import functools
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventhub.protocols import DelimiterInMessage, FramingError, LineFramer, LineTooLong

from ._chunks import bytewise, run, same_every_way, split_points, whole

DELIMITERS = [b"\r\n", b"\n", b"\x00", b"aba", b"--END--"]


@functools.cache  # built once per delimiter, not at every draw (hypothesis analyses the filter each time)
def lines_without(delimiter: bytes, max_length: int = 40) -> st.SearchStrategy[list[bytes]]:
    line = st.binary(max_size=max_length).filter(lambda b: (b + delimiter).find(delimiter) == len(b))
    return st.lists(line, max_size=8)


@pytest.mark.parametrize("delimiter", DELIMITERS)
@given(data=st.data())
def test_round_trip_every_chunking(delimiter: bytes, data: st.DataObject) -> None:
    lines = data.draw(lines_without(delimiter))
    wire = b"".join(LineFramer(delimiter, 40).encode(line) for line in lines)
    points = data.draw(split_points(wire))
    assert same_every_way(lambda: LineFramer(delimiter, 40), wire, points) == (lines, None)


@given(data=st.data())
def test_arbitrary_bytes_agree_every_chunking(data: st.DataObject) -> None:
    # Whatever the peer sends, the result depends on the bytes, not on how TCP cut them.
    wire = data.draw(st.binary(max_size=60).map(lambda b: b.replace(b"z", b"\r\n")))
    same_every_way(lambda: LineFramer(max_length=5), wire, data.draw(split_points(wire)))


def test_lines_and_trailing_partial_line() -> None:
    framer = LineFramer()
    assert framer.feed(b"one\r\ntwo\r\nthr") == [b"one", b"two"]
    assert framer.buffered == 3
    assert framer.feed(b"ee\r\n") == [b"three"]
    assert framer.feed(b"\r\n") == [b""]


def test_delimiter_split_across_chunks() -> None:
    framer = LineFramer(b"--END--")
    chunks = (b"a--E", b"ND-", b"-b--END", b"--")
    assert [framer.feed(c) for c in chunks] == [[], [], [b"a"], [b"b"]]


def test_line_of_exactly_max_length_passes() -> None:
    data = b"x" * 10 + b"\r\n"
    assert run(LineFramer(max_length=10), whole(data)) == ([b"x" * 10], None)
    assert run(LineFramer(max_length=10), bytewise(data)) == ([b"x" * 10], None)


@pytest.mark.parametrize("chunking", [whole, bytewise])
def test_over_long_line_breaks_after_the_good_lines(chunking: Callable[[bytes], list[bytes]]) -> None:
    data = b"ok\r\n" + b"x" * 11 + b"\r\nlater\r\n"
    assert run(LineFramer(max_length=10), chunking(data)) == ([b"ok"], LineTooLong)


def test_over_long_line_without_delimiter_is_refused_with_bounded_buffer() -> None:
    framer = LineFramer(max_length=100)
    fed = 0
    with pytest.raises(LineTooLong) as info:
        while fed < 10_000:  # bounded: the error must come long before
            framer.feed(b"y")
            fed += 1
            assert framer.buffered <= 100 + 1  # max_length + len(delimiter) - 1
    assert fed == 101  # the 102nd byte proves the line has more than 100 bytes
    assert info.value.max_length == 100
    assert info.value.length >= 101
    assert "max_length=100" in str(info.value)


def test_error_messages_name_what_was_wrong() -> None:
    with pytest.raises(LineTooLong, match=r"line of 12 bytes exceeds max_length=4"):
        LineFramer(max_length=4).feed(b"123456789012\r\n")


def test_broken_framer_stays_broken() -> None:
    framer = LineFramer(max_length=3)
    with pytest.raises(LineTooLong) as first:
        framer.feed(b"a\r\nabcdef\r\n")
    assert first.value.messages == (b"a",)
    assert framer.broken is first.value
    assert framer.buffered == 0
    for call in (lambda: framer.feed(b"b\r\n"), framer.next_message, framer.take_buffer):
        with pytest.raises(LineTooLong) as again:
            call()
        assert again.value is first.value
        assert again.value.messages == ()


def test_error_is_a_value_error() -> None:
    assert issubclass(LineTooLong, FramingError)
    assert issubclass(FramingError, ValueError)


def test_pull_api_gives_one_message_at_a_time() -> None:
    framer = LineFramer(b"\n")
    framer.receive_data(b"a\nb\nrest")
    assert framer.next_message() == b"a"
    assert framer.take_buffer() == b"b\nrest"
    assert framer.next_message() is None
    framer.receive_data(b"c\n")
    assert framer.next_message() == b"c"


def test_take_buffer_resets_the_scan_position() -> None:
    framer = LineFramer(b"\n")
    assert framer.feed(b"long partial line") == []
    assert framer.take_buffer() == b"long partial line"
    assert framer.feed(b"x\n") == [b"x"]


def test_encode() -> None:
    assert LineFramer().encode(b"hi") == b"hi\r\n"
    assert LineFramer(b"\n").encode(b"a\r") == b"a\r\n"


@pytest.mark.parametrize(
    ("delimiter", "line"),
    [(b"\r\n", b"a\r\nb"), (b"\n", b"\n"), (b"aa", b"a"), (b"aba", b"xab")],
)
def test_encode_refuses_lines_the_peer_would_split(delimiter: bytes, line: bytes) -> None:
    with pytest.raises(DelimiterInMessage, match="contains the delimiter"):
        LineFramer(delimiter).encode(line)


def test_encode_refuses_lines_over_max_length() -> None:
    with pytest.raises(LineTooLong):
        LineFramer(max_length=2).encode(b"abc")


@pytest.mark.parametrize(("args", "match"), [((b"",), "delimiter"), ((b"\n", -1), "max_length")])
def test_bad_configuration(args: tuple[bytes, int], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        LineFramer(*args)


def test_accepts_memoryview_and_bytearray() -> None:
    framer = LineFramer(b"\n")
    assert framer.feed(memoryview(b"a\nb")) == [b"a"]
    assert framer.feed(bytearray(b"\n")) == [b"b"]
