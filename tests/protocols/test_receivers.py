from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventhub.protocols import BadLengthPrefix, LineTooLong, MessageTooLong
from eventhub.protocols.receivers import (
    Int32StringReceiver,
    LineReceiver,
    NetstringReceiver,
)
from eventhub.testing import StringTransport

from ._chunks import cut


class Lines(LineReceiver):
    max_length = 10

    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self.raw: list[bytes] = []
        self.lost: list[BaseException | None] = []

    def line_received(self, line: bytes) -> None:
        self.lines.append(line)
        if line == b"quit":
            assert self.transport is not None
            self.transport.lose_connection()
        elif line == b"raw":
            self.set_raw_mode()
        else:
            self.send_line(b"> " + line)

    def raw_data_received(self, data: bytes) -> None:
        self.raw.append(data)
        if b"LINE" in data:
            head, _, tail = data.partition(b"LINE")
            self.raw[-1] = head
            self.set_line_mode(tail)


class Strings(NetstringReceiver):
    def __init__(self) -> None:
        self.strings: list[bytes] = []

    def string_received(self, string: bytes) -> None:
        self.strings.append(string)
        self.send_string(string.upper())


class Prefixed(Int32StringReceiver):
    max_length = 100

    def __init__(self) -> None:
        self.strings: list[bytes] = []

    def string_received(self, string: bytes) -> None:
        self.strings.append(string)
        self.send_string(string[::-1])


def connect(proto: LineReceiver | NetstringReceiver | Int32StringReceiver) -> StringTransport:
    transport = StringTransport()
    proto.connection_made(transport)
    return transport


@given(data=st.data())
def test_line_receiver_any_chunking(data: st.DataObject) -> None:
    wire = b"one\r\ntwo\r\n\r\nthree\r\n"
    proto = Lines()
    transport = connect(proto)
    for chunk in cut(wire, data.draw(st.lists(st.integers(0, len(wire))))):
        proto.data_received(chunk)
    assert proto.lines == [b"one", b"two", b"", b"three"]
    assert transport.value() == b"> one\r\n> two\r\n> \r\n> three\r\n"


def test_line_receiver_custom_delimiter() -> None:
    class Unix(Lines):
        delimiter = b"\n"

    proto = Unix()
    transport = connect(proto)
    proto.data_received(b"a\nb\r\n")
    assert proto.lines == [b"a", b"b\r"]
    assert transport.value() == b"> a\n> b\r\n"


def test_no_lines_after_the_transport_starts_closing() -> None:
    proto = Lines()
    transport = connect(proto)
    proto.data_received(b"hi\r\nquit\r\nignored\r\n")
    assert proto.lines == [b"hi", b"quit"]
    assert transport.disconnecting and not transport.aborted


def test_over_long_line_closes_after_delivering_the_good_ones(
    caplog: pytest.LogCaptureFixture,
) -> None:
    proto = Lines()
    transport = connect(proto)
    with caplog.at_level(logging.WARNING, logger="eventhub.protocols"):
        proto.data_received(b"ok\r\n" + b"x" * 50)
    assert proto.lines == [b"ok"]
    assert transport.value() == b"> ok\r\n"
    assert transport.disconnecting
    assert isinstance(proto.framing_error, LineTooLong)
    proto.data_received(b"more\r\n")  # a late chunk neither raises, delivers nor logs
    assert proto.lines == [b"ok"]
    [record] = caplog.records
    assert "127.0.0.1:54321" in record.getMessage()
    assert "max_length=10" in record.getMessage()


def test_framing_failed_can_be_overridden_to_answer_first() -> None:
    class Polite(Lines):
        def framing_failed(self, error: Exception) -> None:
            assert self.transport is not None
            self.transport.write(b"ERR line too long\r\n")
            self.transport.lose_connection()

    proto = Polite()
    transport = connect(proto)
    proto.data_received(b"y" * 20)
    assert transport.value() == b"ERR line too long\r\n"
    assert transport.disconnecting


def test_raw_mode_takes_the_rest_of_the_buffer_then_back_to_lines() -> None:
    proto = Lines()
    connect(proto)
    proto.data_received(b"a\r\nraw\r\nbytes\r\nhere")
    assert proto.lines == [b"a", b"raw"]
    assert proto.raw == [b"bytes\r\nhere"]
    proto.data_received(b" moreLINEb\r\nc")
    assert proto.raw == [b"bytes\r\nhere", b" more"]
    assert proto.lines == [b"a", b"raw", b"b"]
    proto.data_received(b"\r\n")
    assert proto.lines[-1] == b"c"


def test_send_line_refuses_a_line_with_the_delimiter() -> None:
    proto = Lines()
    transport = connect(proto)
    with pytest.raises(ValueError, match="delimiter"):
        proto.send_line(b"a\r\nb")
    assert transport.value() == b""


def test_send_before_connection_made_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match="Lines is not connected"):
        Lines().send_line(b"x")


def test_unimplemented_callback_names_the_class() -> None:
    class Bare(LineReceiver):
        pass

    proto = Bare()
    connect(proto)
    with pytest.raises(NotImplementedError, match="Bare must override line_received"):
        proto.data_received(b"x\r\n")


@pytest.mark.parametrize(
    ("base", "wire"), [(NetstringReceiver, b"1:x,"), (Int32StringReceiver, b"\x00\x00\x00\x01x")]
)
def test_string_receivers_name_the_class_that_forgot_string_received(
    base: type[NetstringReceiver | Int32StringReceiver], wire: bytes
) -> None:
    proto = type("Forgetful", (base,), {})()
    connect(proto)
    with pytest.raises(NotImplementedError, match="Forgetful must override string_received"):
        proto.data_received(wire)


@given(data=st.data())
def test_netstring_receiver_any_chunking(data: st.DataObject) -> None:
    wire = b"5:hello,0:,3:abc,"
    proto = Strings()
    transport = connect(proto)
    for chunk in cut(wire, data.draw(st.lists(st.integers(0, len(wire))))):
        proto.data_received(chunk)
    assert proto.strings == [b"hello", b"", b"abc"]
    assert transport.value() == b"5:HELLO,0:,3:ABC,"


def test_netstring_receiver_bad_length_closes() -> None:
    proto = Strings()
    transport = connect(proto)
    proto.data_received(b"2:ok,GET / HTTP/1.1\r\n")
    assert proto.strings == [b"ok"]
    assert isinstance(proto.framing_error, BadLengthPrefix)
    assert transport.disconnecting


@given(data=st.data())
def test_int32_receiver_any_chunking(data: st.DataObject) -> None:
    wire = b"\x00\x00\x00\x03abc\x00\x00\x00\x00\x00\x00\x00\x02xy"
    proto = Prefixed()
    transport = connect(proto)
    for chunk in cut(wire, data.draw(st.lists(st.integers(0, len(wire))))):
        proto.data_received(chunk)
    assert proto.strings == [b"abc", b"", b"xy"]
    assert transport.value() == b"\x00\x00\x00\x03cba\x00\x00\x00\x00\x00\x00\x00\x02yx"


def test_int32_receiver_too_long_closes_without_buffering() -> None:
    proto = Prefixed()
    transport = connect(proto)
    proto.data_received(b"\x00\x00\x01\x00")
    assert isinstance(proto.framing_error, MessageTooLong)
    assert proto.framing_error.length == 256
    assert transport.disconnecting


def test_int16_variant_through_prefix_size() -> None:
    class Short(Prefixed):
        prefix_size = 2

    proto = Short()
    transport = connect(proto)
    proto.data_received(b"\x00\x02hi")
    assert transport.value() == b"\x00\x02ih"


@given(data=st.data())
def test_raw_body_after_headers_any_chunking(data: st.DataObject) -> None:
    # An HTTP-like exchange: header lines, then a body far over max_length and full
    # of delimiters. Whatever the chunking, the body arrives whole and unframed.
    class Http(LineReceiver):
        max_length = 10

        def __init__(self) -> None:
            self.headers: list[bytes] = []
            self.body = b""

        def line_received(self, line: bytes) -> None:
            if line:
                self.headers.append(line)
            else:
                self.set_raw_mode()

        def raw_data_received(self, data: bytes) -> None:
            self.body += data

    body = b"x" * 25 + b"\r\n\r\ny\r\n" + b"z" * 30
    wire = b"Host: a\r\nLen: 40\r\n\r\n" + body
    proto = Http()
    transport = connect(proto)
    for chunk in cut(wire, data.draw(st.lists(st.integers(0, len(wire))))):
        proto.data_received(chunk)
    assert proto.headers == [b"Host: a", b"Len: 40"]
    assert proto.body == body
    assert proto.framing_error is None and not transport.disconnecting
