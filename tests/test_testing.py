from __future__ import annotations

import pytest

from eventhub.protocol import Address, Producer, Transport
from eventhub.testing import StringTransport


class _Producer:
    def pause_producing(self) -> None: ...
    def resume_producing(self) -> None: ...
    def stop_producing(self) -> None: ...


def test_string_transport_is_a_transport() -> None:
    assert isinstance(StringTransport(), Transport)


def test_records_writes_in_order() -> None:
    t = StringTransport()
    t.write(b"a")
    t.write(bytearray(b"b"))
    t.write(memoryview(b"cd")[1:])
    t.write_sequence([b"e", b"f"])
    assert t.value() == b"abdef"
    t.clear()
    assert t.value() == b""


def test_write_refuses_text() -> None:
    with pytest.raises(TypeError, match="not str"):
        StringTransport().write("text")  # type: ignore[arg-type]


def test_lose_connection_then_writes_are_dropped() -> None:
    t = StringTransport()
    t.write(b"kept")
    assert not t.is_closing()
    t.lose_connection()
    t.write(b"lost")
    assert (t.value(), t.dropped, t.disconnecting, t.aborted) == (b"kept", 4, True, False)
    assert t.is_closing() and t.closed


def test_abort_connection() -> None:
    t = StringTransport()
    t.abort_connection()
    assert t.aborted and t.is_closing() and not t.disconnecting


def test_write_eof_drops_later_writes() -> None:
    t = StringTransport()
    t.write_eof()
    t.write(b"x")
    assert t.eof_written and t.value() == b"" and t.dropped == 1


def test_addresses() -> None:
    t = StringTransport(peer=Address("127.0.0.1", 1), host=Address("127.0.0.1", 2))
    assert (t.get_peer().port, t.get_host().port) == (1, 2)
    assert str(StringTransport().get_peer()) == "127.0.0.1:54321"


def test_reading_pause_resume() -> None:
    t = StringTransport()
    t.pause_reading()
    assert t.reading_paused
    t.resume_reading()
    assert not t.reading_paused


def test_write_buffer_limits() -> None:
    t = StringTransport()
    assert t.get_write_buffer_size() == 0
    t.set_write_buffer_limits(high=1000)
    assert t.write_buffer_limits == (1000, 250)
    t.set_write_buffer_limits(high=10, low=5)
    assert t.write_buffer_limits == (10, 5)
    with pytest.raises(ValueError, match="low <= high"):
        t.set_write_buffer_limits(high=1, low=5)


def test_one_producer_at_a_time() -> None:
    t = StringTransport()
    producer: Producer = _Producer()
    t.register_producer(producer, streaming=True)
    assert (t.producer, t.streaming) == (producer, True)
    with pytest.raises(RuntimeError, match="already registered"):
        t.register_producer(_Producer(), streaming=False)
    t.unregister_producer()
    assert t.producer is None
    t.register_producer(producer, streaming=False)
    assert t.streaming is False
