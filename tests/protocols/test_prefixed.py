from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventhub.protocols import LengthPrefixFramer, MessageTooLong

from ._chunks import run, same_every_way, split_points, whole


@pytest.mark.parametrize("prefix_size", [1, 2, 4, 8])
@given(data=st.data())
def test_round_trip_every_chunking(prefix_size: int, data: st.DataObject) -> None:
    messages = data.draw(st.lists(st.binary(max_size=200), max_size=8))
    wire = b"".join(LengthPrefixFramer(200, prefix_size).encode(m) for m in messages)
    points = data.draw(split_points(wire))
    outcome = same_every_way(lambda: LengthPrefixFramer(200, prefix_size), wire, points)
    assert outcome == (messages, None)


@given(data=st.data())
def test_arbitrary_bytes_agree_every_chunking(data: st.DataObject) -> None:
    wire = data.draw(st.binary(max_size=60))
    same_every_way(lambda: LengthPrefixFramer(20, 1), wire, data.draw(split_points(wire)))


def test_wire_format_is_big_endian_32_bit() -> None:
    assert LengthPrefixFramer().encode(b"hi") == b"\x00\x00\x00\x02hi"
    assert LengthPrefixFramer().feed(b"\x00\x00\x00\x02hi\x00\x00\x00\x00\x00\x00") == [b"hi", b""]


def test_too_long_is_refused_as_soon_as_the_prefix_is_complete() -> None:
    framer = LengthPrefixFramer(max_length=1000)
    wire = b"\x00\x02ok\x03\xe9"  # a good message, then a prefix of 1001
    assert run(LengthPrefixFramer(1000, 2), whole(wire)) == ([b"ok"], MessageTooLong)
    assert framer.feed(b"\x00\x00\x03") == []
    with pytest.raises(MessageTooLong, match="message of 1001 bytes exceeds max_length=1000"):
        framer.feed(b"\xe9")
    assert framer.buffered == 0


def test_hostile_prefix_does_not_allocate() -> None:
    with pytest.raises(MessageTooLong) as info:
        LengthPrefixFramer().feed(b"\xff\xff\xff\xff")
    assert info.value.length == 2**32 - 1


def test_exactly_max_length() -> None:
    assert LengthPrefixFramer(3).feed(b"\x00\x00\x00\x03abc") == [b"abc"]


def test_encode_refuses_over_max_length() -> None:
    with pytest.raises(MessageTooLong):
        LengthPrefixFramer(3).encode(b"abcd")


@pytest.mark.parametrize(
    ("args", "match"),
    [((10, 3), "prefix_size"), ((256, 1), r"0\.\.255"), ((-1,), "max_length")],
)
def test_bad_configuration(args: tuple[int, ...], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        LengthPrefixFramer(*args)
