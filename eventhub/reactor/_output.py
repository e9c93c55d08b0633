"""The server-wide bound on output buffered toward peers: one owner, per reactor.

Each connection bounds its own write buffer only by asking its protocol to
pause (the high-water mark). That bounds one connection, not a thousand: the
members of a busy chat room that read slowly, or protocols that ignore
``pause_writing``, can together buffer without limit. ``OutputBound`` counts
the bytes buffered in every connection of a reactor (updated only where a
connection buffers or drains, never on the direct-send path), and past
``limit`` it aborts the connections with the most unsent data, biggest first,
until the total is back under three quarters of the limit. Each is closed with
a ``BufferError`` as the reason its protocol hears; they are counted in
``shed`` and reported in one warning line, at most every few seconds.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from eventhub._logging import RateLimitedLog
from eventhub.errors import PLUGIN_ERRORS, reraise_user_interrupt

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from eventhub.protocol import Address, Producer, Protocol
    from eventhub.reactor._aio import AsyncioReactor
    from eventhub.reactor._aio_tcp import AsyncioConnection
    from eventhub.reactor._loop import Reactor
    from eventhub.reactor._tcp import Connection

__all__ = ["HIGH_WATER", "MAX_BUFFERED_OUTPUT", "FlowControl", "OutputBound", "write_buffer_limits"]

log = logging.getLogger("eventhub.reactor")

# A transport's default high-water mark: above it the protocol is asked to pause.
HIGH_WATER = 64 * 1024
MAX_BUFFERED_OUTPUT = 128 * 1024 * 1024


def write_buffer_limits(high: int | None = None, low: int | None = None) -> tuple[int, int]:
    """What ``set_write_buffer_limits(high, low)`` sets on every transport: ``(high, low)``.

    The defaults: ``HIGH_WATER`` (64 KiB), or four times ``low`` when only that
    is given; ``low`` defaults to ``high // 4``. ``ValueError`` unless
    ``0 <= low <= high``. The one place for them: the connections of both
    reactors and ``testing.StringTransport`` agree by construction.
    """
    if high is None:
        high = HIGH_WATER if low is None else max(4 * low, HIGH_WATER)
    if low is None:
        low = high // 4
    if not 0 <= low <= high:
        raise ValueError(f"need 0 <= low <= high for write buffer limits, got {high=}, {low=}")
    return high, low


class FlowControl:
    """A connection's protocol (and streaming producer) paused and resumed at its water marks.

    One owner for both reactors' connections (``_tcp.Connection`` and
    ``_aio_tcp.AsyncioConnection``), which differ only in where their unsent
    bytes are (``get_write_buffer_size``), when they take writes
    (``_takes_writes``), whether they are closed and how they close
    (``_is_closed``, ``_force_close``) and, on asyncio, in watching the loop's
    buffer drain for a pull producer (``_pulling``).
    """

    __slots__ = ("_high", "_low", "_peer", "_producer", "_protocol", "_protocol_paused", "_streaming")

    _protocol: Protocol | None
    _protocol_paused: bool
    _producer: Producer | None
    _streaming: bool
    _high: int
    _low: int
    _peer: Address | None

    if TYPE_CHECKING:
        _reactor: Reactor | AsyncioReactor

        def get_write_buffer_size(self) -> int: ...

        def _takes_writes(self) -> bool: ...

        def _is_closed(self) -> bool: ...

        def _force_close(self, reason: BaseException | None) -> None: ...

    def _apply_write_buffer_limits(self, high: int, low: int) -> None:
        """Limits just set: pause or resume the protocol as the buffer now stands."""
        size = self.get_write_buffer_size()
        if size > high:
            self._pause_protocol()
        elif self._protocol_paused and size <= low:
            self._resume_protocol()

    def _pause_protocol(self) -> None:
        if self._protocol_paused or self._protocol is None:
            return
        self._protocol_paused = True
        try:
            self._protocol.pause_writing()
            if self._producer is not None and self._streaming:
                self._producer.pause_producing()
        except PLUGIN_ERRORS as exc:
            reraise_user_interrupt(exc)
            self._protocol_failed(exc, "pause_writing")

    def _resume_protocol(self) -> None:
        if self._protocol is None:
            return
        self._protocol_paused = False
        try:
            self._protocol.resume_writing()
            if self._producer is not None and self._streaming:
                self._producer.resume_producing()
        except PLUGIN_ERRORS as exc:
            reraise_user_interrupt(exc)
            self._protocol_failed(exc, "resume_writing")

    def register_producer(self, producer: Producer, streaming: bool) -> None:
        """Attach ``producer``; see ``eventhub.protocol.Producer`` for when it is called."""
        if self._producer is not None:
            raise RuntimeError(f"{self!r} already has a producer: {self._producer!r}")
        if self._is_closed():
            producer.stop_producing()
            return
        self._producer, self._streaming = producer, streaming
        if streaming:
            if self._protocol_paused:
                producer.pause_producing()
        else:
            self._pulling()
            self._reactor.call_soon(self._pull)

    def unregister_producer(self) -> None:
        self._producer = None

    def _pulling(self) -> None:
        """A pull producer was registered (asyncio's connection then watches the loop's buffer)."""

    def _pull(self) -> None:
        """Ask a pull producer for more while it keeps the buffer empty and writes are taken.

        Not after ``write_eof`` or a close: its writes would be dropped, the
        buffer would stay empty and the loop would spin asking for more.
        """
        producer = self._producer
        if producer is None or self._streaming or self.get_write_buffer_size() or not self._takes_writes():
            return
        try:
            producer.resume_producing()
        except PLUGIN_ERRORS as exc:
            reraise_user_interrupt(exc)
            self._protocol_failed(exc, "resume_producing")
            return
        if self._producer is producer and not self.get_write_buffer_size():
            self._reactor.call_soon(self._pull)

    def _protocol_failed(self, exc: BaseException, callback: str) -> None:
        """Protocol code raised: log it once, close this connection with it as the reason."""
        log.error(
            "%s.%s raised %s; closing the connection with %s",
            type(self._protocol).__name__,
            callback,
            type(exc).__name__,
            self._peer,
            exc_info=exc,
        )
        self._force_close(exc)


class OutputBound:
    """Bytes buffered toward all peers of one reactor (``buffered``); past ``limit`` it sheds."""

    __slots__ = ("_reactor", "_recount", "_scheduled", "_throttle", "buffered", "limit", "shed")

    def __init__(
        self,
        reactor: Reactor | AsyncioReactor,
        limit: int = MAX_BUFFERED_OUTPUT,
        recount: Callable[[], None] | None = None,
    ) -> None:
        """``recount``: makes ``buffered`` exact before shedding, where it is kept as an upper bound."""
        self._reactor = reactor
        self._recount = recount
        self.limit = limit
        self.buffered = 0
        self.shed = 0  # connections closed for it, in all
        self._scheduled = False
        self._throttle = RateLimitedLog(logging.getLogger("eventhub.reactor"))

    def over(self) -> None:
        """``buffered`` passed ``limit``: shed on the next pass (not inside the write that passed it)."""
        if not self._scheduled:
            self._scheduled = True
            self._reactor.call_soon(self._shed)

    def _shed(self) -> None:
        if self._recount is not None:  # the asyncio backends: counts as of each connection's last look
            self._recount()
        self._scheduled = False
        if self.buffered <= self.limit:
            return  # drained meanwhile
        target = self.limit * 3 // 4
        connections: Iterable[Connection | AsyncioConnection] = self._reactor._connections
        by_size = sorted(connections, key=lambda c: c.get_write_buffer_size(), reverse=True)
        closed, biggest, peer = 0, 0, None
        for conn in by_size:
            size = conn.get_write_buffer_size()
            if self.buffered <= target or not size:
                break
            if not closed:
                biggest, peer = size, conn.get_peer()
            reason = BufferError(f"{size} bytes unsent when the server's output passed its bound")
            conn.abort_connection(reason)
            closed += 1
        self.shed += closed
        self._throttle.log(
            logging.WARNING,
            "output buffered toward all peers passed %d bytes: closed %d connection(s) with the most "
            "unsent data (the biggest: %d bytes to %s)",
            self.limit,
            closed,
            biggest,
            peer,
        )
