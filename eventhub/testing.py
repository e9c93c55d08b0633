"""Test helpers for code built on eventhub: no sockets, no real time.

- ``StringTransport``: a ``Transport`` that records what the protocol writes
  (``value()``) and what it asked for (closed, aborted, paused...).
- ``Clock``: fake time for ``call_later``; ``advance(seconds)`` runs what is due.
- ``MemoryReactor``: records ``listen_tcp`` / ``connect_tcp`` calls, runs
  ``call_soon`` callbacks and timers on a ``Clock``; nothing touches the network.

Typical use::

    transport = StringTransport()
    proto = Echo()
    proto.connection_made(transport)
    proto.data_received(b"hi")
    assert transport.value() == b"hi"
"""

from __future__ import annotations

from collections.abc import Iterable

from eventhub.protocol import Address, Producer

__all__ = ["StringTransport"]

Data = bytes | bytearray | memoryview


class StringTransport:
    """A ``Transport`` whose writes land in memory.

    Like the reactor's connection, writes after ``lose_connection`` or
    ``abort_connection`` are dropped quietly (``dropped`` counts the bytes), and
    writing anything but bytes-like raises ``TypeError``. Nothing here calls the
    protocol back: call ``connection_lost`` yourself when the test needs it.

    Attributes a test reads: ``disconnecting`` (``lose_connection`` was called),
    ``aborted``, ``eof_written``, ``reading_paused``, ``producer`` / ``streaming``,
    ``write_buffer_limits`` (``(high, low)`` as last set), ``dropped``.
    """

    def __init__(
        self,
        peer: Address | None = None,
        host: Address | None = None,
    ) -> None:
        self.peer = peer if peer is not None else Address("127.0.0.1", 54321)
        self.host = host if host is not None else Address("127.0.0.1", 8000)
        self.io = bytearray()
        self.disconnecting = False
        self.aborted = False
        self.eof_written = False
        self.reading_paused = False
        self.producer: Producer | None = None
        self.streaming: bool | None = None
        self.write_buffer_limits: tuple[int, int] = (64 * 1024, 16 * 1024)
        self.dropped = 0

    # What the test reads.
    def value(self) -> bytes:
        """Everything written so far (and not cleared)."""
        return bytes(self.io)

    def clear(self) -> None:
        """Forget what was written so far."""
        self.io.clear()

    @property
    def closed(self) -> bool:
        """True once ``lose_connection`` or ``abort_connection`` was called."""
        return self.disconnecting or self.aborted

    # The Transport interface.
    def write(self, data: Data) -> None:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"write() takes bytes-like data, not {type(data).__name__}")
        if self.closed or self.eof_written:
            self.dropped += len(data)
            return
        self.io += data

    def write_sequence(self, data: Iterable[Data]) -> None:
        for item in data:
            self.write(item)

    def write_eof(self) -> None:
        self.eof_written = True

    def lose_connection(self) -> None:
        self.disconnecting = True

    def abort_connection(self) -> None:
        self.aborted = True

    def is_closing(self) -> bool:
        return self.closed

    def get_peer(self) -> Address:
        return self.peer

    def get_host(self) -> Address:
        return self.host

    def pause_reading(self) -> None:
        self.reading_paused = True

    def resume_reading(self) -> None:
        self.reading_paused = False

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        if high is None:
            high = 64 * 1024 if low is None else max(4 * low, low)
        if low is None:
            low = high // 4
        if not 0 <= low <= high:
            raise ValueError(f"write buffer limits need 0 <= low <= high, got {high=} {low=}")
        self.write_buffer_limits = (high, low)

    def get_write_buffer_size(self) -> int:
        """Always 0: a string transport takes every byte at once."""
        return 0

    def register_producer(self, producer: Producer, streaming: bool) -> None:
        if self.producer is not None:
            raise RuntimeError(f"a producer is already registered: {self.producer!r}")
        self.producer = producer
        self.streaming = streaming

    def unregister_producer(self) -> None:
        self.producer = None
        self.streaming = None
