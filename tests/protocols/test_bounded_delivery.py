"""Framers hand out a bounded number of messages at a time; receivers deliver so many per callback.

A client that sends 100,000 short lines in one write must not hold the loop
for the time it takes to handle them all: the receivers deliver
``messages_per_call`` of them, pause reading and go on from ``call_soon``.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventhub.protocols import Framer, FramingError, LengthPrefixFramer, LineFramer, NetstringFramer
from eventhub.protocols.receivers import LineReceiver
from eventhub.testing import MemoryReactor, StringTransport

from ._chunks import cut, run, whole

FRAMERS: dict[str, tuple[Callable[[], Framer], bytes]] = {
    "lines": (lambda: LineFramer(b"\r\n", 8), b"one\r\n\r\ntwo\r\nthree\r\n" * 3 + b"12345678\r\nx"),
    "netstrings": (lambda: NetstringFramer(8), b"3:one,0:,3:two,5:three," * 3 + b"8:12345678,1:"),
    "prefixed": (
        lambda: LengthPrefixFramer(8, 2),
        b"\x00\x03one\x00\x00\x00\x03two" * 3 + b"\x00\x0812345678\x00",
    ),
}


def take_in_batches(framer: Framer, chunks: list[bytes], limit: int) -> tuple[list[bytes], type | None]:
    """Feed each chunk, then take at most ``limit`` messages at a time until none is complete."""
    got: list[bytes] = []
    try:
        for chunk in chunks:
            framer.receive_data(chunk)
            while True:
                batch = framer.take_ready(limit)
                assert len(batch) <= limit
                got.extend(batch)
                if batch:
                    continue
                message = framer.next_message()
                if message is None:
                    break
                got.append(message)
    except FramingError as err:
        return got, type(err)
    return got, None


@pytest.mark.parametrize("name", sorted(FRAMERS))
@given(points=st.lists(st.integers(0, 200), max_size=12), limit=st.integers(1, 5))
def test_taking_a_few_at_a_time_gives_what_feeding_gives(name: str, points: list[int], limit: int) -> None:
    make, wire = FRAMERS[name]
    expected = run(make(), whole(wire))
    framer = make()
    assert take_in_batches(framer, cut(wire, points), limit) == expected
    assert framer.buffered == (len(wire) - len(b"".join(expected[0])) - _overhead(name, expected[0]))


def _overhead(name: str, messages: list[bytes]) -> int:
    """The framing bytes of ``messages`` (what the framer consumed besides their payloads)."""
    if name == "lines":
        return 2 * len(messages)
    if name == "prefixed":
        return 2 * len(messages)
    return sum(len(str(len(m))) + 2 for m in messages)


def test_take_ready_leaves_the_rest_buffered_and_take_buffer_returns_it() -> None:
    framer = LineFramer(b"\n")
    framer.receive_data(b"a\nb\nc\npartial")
    assert framer.take_ready(2) == [b"a", b"b"]
    assert framer.buffered == len(b"c\npartial")
    framer.receive_data(b" line\n")
    assert framer.take_ready(5) == [b"c", b"partial line"]
    assert framer.buffered == 0
    framer.receive_data(b"d\nrest")
    assert framer.take_ready(1) == [b"d"]
    assert framer.take_buffer() == b"rest"


class Lines(LineReceiver):
    delimiter = b"\n"
    messages_per_call = 10

    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self.raw: list[bytes] = []

    def line_received(self, line: bytes) -> None:
        self.lines.append(line)
        if line == b"raw":
            self.set_raw_mode()

    def raw_data_received(self, data: bytes) -> None:
        self.raw.append(data)


def connect(proto: Lines) -> tuple[MemoryReactor, StringTransport]:
    reactor = MemoryReactor()
    transport = StringTransport(reactor=reactor)
    proto.connection_made(transport)
    return reactor, transport


def test_a_big_chunk_is_delivered_a_bounded_batch_per_callback_with_reading_paused() -> None:
    proto = Lines()
    reactor, transport = connect(proto)
    wire = b"".join(b"%d\n" % i for i in range(95))
    proto.data_received(wire + b"tail")
    assert len(proto.lines) == 10
    assert transport.reading_paused  # the peer's next bytes wait in the kernel meanwhile
    passes = 1
    while reactor.run_pass():
        passes += 1
        assert len(proto.lines) <= 10 * passes
    assert proto.lines == [b"%d" % i for i in range(95)]
    assert not transport.reading_paused
    assert proto.framer.buffered == len(b"tail")


def test_without_a_reactor_a_string_transport_delivers_everything_at_once() -> None:
    proto = Lines()
    transport = StringTransport()
    proto.connection_made(transport)
    proto.data_received(b"x\n" * 1000)
    assert proto.lines == [b"x"] * 1000
    assert not transport.reading_paused


def test_raw_mode_in_a_later_batch_takes_the_exact_rest() -> None:
    proto = Lines()
    reactor, _ = connect(proto)
    wire = b"l\n" * 25 + b"raw\n" + b"not\na\nline\n"
    proto.data_received(wire)
    reactor.run_ready()
    assert proto.lines == [b"l"] * 25 + [b"raw"]
    assert proto.raw == [b"not\na\nline\n"]


class Throttled(Lines):
    """Stops receiving after every third line."""

    def line_received(self, line: bytes) -> None:
        super().line_received(line)
        if len(self.lines) % 3 == 0:
            self.pause_receiving()


def test_pause_receiving_keeps_the_rest_of_a_batch_for_resume_receiving() -> None:
    proto = Throttled()
    reactor, transport = connect(proto)
    proto.data_received(b"".join(b"%d\n" % i for i in range(8)))
    reactor.run_ready()
    assert proto.lines == [b"0", b"1", b"2"]
    assert transport.reading_paused
    proto.resume_receiving()
    reactor.run_ready()
    assert proto.lines == [b"%d" % i for i in range(6)]
    proto.resume_receiving()
    reactor.run_ready()
    assert proto.lines == [b"%d" % i for i in range(8)]
    assert not transport.reading_paused
