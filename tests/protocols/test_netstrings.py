from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventhub.protocols import (
    BadLengthPrefix,
    FramingError,
    MessageTooLong,
    MissingComma,
    NetstringFramer,
)

from ._chunks import run, same_every_way, split_points, whole


@given(data=st.data())
def test_round_trip_every_chunking(data: st.DataObject) -> None:
    messages = data.draw(st.lists(st.binary(max_size=120), max_size=8))
    wire = b"".join(NetstringFramer(120).encode(m) for m in messages)
    points = data.draw(split_points(wire))
    assert same_every_way(lambda: NetstringFramer(120), wire, points) == (messages, None)


@given(data=st.data())
def test_arbitrary_bytes_agree_every_chunking(data: st.DataObject) -> None:
    alphabet = st.sampled_from([b"0", b"1", b"3", b"9", b":", b",", b"x", b"abc"])
    wire = b"".join(data.draw(st.lists(alphabet, max_size=30)))
    same_every_way(lambda: NetstringFramer(20), wire, data.draw(split_points(wire)))


def test_spec_examples() -> None:
    assert NetstringFramer().encode(b"hello world!") == b"12:hello world!,"
    assert NetstringFramer().encode(b"") == b"0:,"
    assert NetstringFramer().feed(b"5:hello,0:,3:abc,1:") == [b"hello", b"", b"abc"]


BAD = [
    (b"5:hello,x", BadLengthPrefix, [b"hello"], "non-digit b'x' at offset 0"),
    (b":hello,", BadLengthPrefix, [], "empty"),
    (b"05:hello,", BadLengthPrefix, [], "leading zero"),
    (b"00:,", BadLengthPrefix, [], "leading zero"),
    (b"-1:,", BadLengthPrefix, [], "non-digit b'-'"),
    (b" 5:hello,", BadLengthPrefix, [], "non-digit b' '"),
    (b"5 :hello,", BadLengthPrefix, [], "non-digit b' ' at offset 1"),
    (b"GET / HTTP/1.1\r\n", BadLengthPrefix, [], "non-digit b'G'"),
    (b"5:hello;", MissingComma, [], "ends with b';'"),
    (b"3:abcd", MissingComma, [], "of 3 bytes ends with b'd'"),
    (b"1:a,5:helloo", MissingComma, [b"a"], "ends with b'o'"),
    (b"101:" + b"x" * 200, MessageTooLong, [], "netstring of 101 bytes exceeds max_length=100"),
    (b"1000", MessageTooLong, [], "netstring of at least 1000 bytes"),
    (b"99999999999999999999", MessageTooLong, [], "max_length=100"),
]


@pytest.mark.parametrize(("wire", "error", "before", "match"), BAD)
@given(data=st.data())
def test_bad_input_every_chunking(
    wire: bytes, error: type[FramingError], before: list[bytes], match: str, data: st.DataObject
) -> None:
    outcome = same_every_way(lambda: NetstringFramer(100), wire, data.draw(split_points(wire)))
    assert outcome == (before, error)
    with pytest.raises(error, match=match):
        NetstringFramer(100).feed(wire)


def test_too_long_is_refused_before_the_payload_is_buffered() -> None:
    framer = NetstringFramer(max_length=1000)
    with pytest.raises(MessageTooLong) as info:
        framer.feed(b"1001:")
    assert (info.value.length, info.value.max_length) == (1001, 1000)


def test_length_digits_are_bounded() -> None:
    framer = NetstringFramer(max_length=1000)
    assert framer.feed(b"1000") == []
    with pytest.raises(MessageTooLong):
        framer.feed(b"0")  # a fifth digit: at least 10000 bytes


def test_message_of_exactly_max_length() -> None:
    assert run(NetstringFramer(3), whole(b"3:abc,")) == ([b"abc"], None)


def test_broken_framer_stays_broken() -> None:
    framer = NetstringFramer()
    with pytest.raises(MissingComma):
        framer.feed(b"1:ab")
    with pytest.raises(MissingComma):
        framer.feed(b"1:a,")


def test_encode_refuses_over_max_length() -> None:
    with pytest.raises(MessageTooLong, match="netstring of 4 bytes exceeds max_length=3"):
        NetstringFramer(3).encode(b"abcd")


def test_bad_configuration() -> None:
    with pytest.raises(ValueError, match="max_length"):
        NetstringFramer(-1)


def test_partial_then_take_buffer() -> None:
    framer = NetstringFramer()
    assert framer.feed(b"5:hel") == []
    assert framer.take_buffer() == b"5:hel"
    assert framer.feed(b"1:x,") == [b"x"]
