"""Events out: one bounded queue per SSE or WebSocket client, between the bus and the connection.

The bus calls ``Feed.put`` for every matching event, on the loop; the
client's connection takes them with ``await feed.get()`` as fast as it can
write them. A client reading slower than events arrive fills its transport's
buffer (the writes pause), then its queue; past ``limit`` bytes queued it is
cut off (counted in ``Metrics.cut_off``): memory stays bounded whatever the
client does.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from eventhub import Event
from eventhub.reactor import Future

if TYPE_CHECKING:
    from eventhub import Hub
    from eventhub_http._metrics import Metrics

__all__ = ["Feed", "StreamAborted", "as_json", "event_message", "sse_message"]


class StreamAborted(Exception):
    """Raised by a streamed body to abort its connection (no clean end of the response)."""


def as_json(payload: Any) -> tuple[str, bool]:
    """``(json_text, True)``, or for a payload JSON cannot express ``(json of {"repr": ...}, False)``."""
    try:
        return json.dumps(payload, allow_nan=False), True
    except (TypeError, ValueError):
        return json.dumps({"repr": repr(payload)}), False


def sse_message(event: Event) -> bytes:
    """One Server-Sent Event: ``id`` the event's id, ``event`` its name, ``data`` its payload as JSON.

    A payload JSON cannot express is sent as ``{"repr": "...", "non_json": true}``.
    """
    text, is_json = as_json(event.payload)
    if not is_json:
        text = json.dumps({"repr": repr(event.payload), "non_json": True})
    return f"id: {event.id:032x}\nevent: {event.name}\ndata: {text}\n\n".encode()


def sse_envelope(event: Event) -> bytes:
    """One Server-Sent Event without a name, ``data`` the whole ``event_message`` (what the page reads)."""
    return f"id: {event.id:032x}\ndata: {json.dumps(event_message(event))}\n\n".encode()


def event_message(event: Event) -> dict[str, Any]:
    """An event as the WebSocket sends it (and the page shows it)."""
    text, is_json = as_json(event.payload)
    message: dict[str, Any] = {
        "id": f"{event.id:032x}",
        "name": event.name,
        "source": event.source,
        "time": event.time,
        "payload": json.loads(text) if is_json else repr(event.payload),
    }
    if not is_json:
        message["non_json"] = True
    return message


class Feed:
    """One client's queue of encoded events (see the module docstring)."""

    def __init__(
        self,
        hub: Hub,
        patterns: Sequence[str],
        encode: Callable[[Event], bytes],
        limit: int,
        metrics: Metrics,
        registry: set[Feed] | None = None,
    ) -> None:
        self._encode = encode
        self._limit = limit
        self._metrics = metrics
        self._queue: deque[bytes] = deque()
        self._size = 0
        self._waiter: Future[None] | None = None
        self.cut_off = False
        self.closed = False
        self._subscription = hub.subscribe(list(patterns), self.put) if patterns else None
        metrics.stream_clients += 1
        self._registry = registry
        if registry is not None:
            registry.add(self)

    def subscribe(self, hub: Hub, patterns: Sequence[str]) -> None:
        """Replace what this feed receives (the WebSocket's ``subscribe``)."""
        if self._subscription is not None:
            self._subscription.cancel()
        self._subscription = hub.subscribe(list(patterns), self.put) if patterns else None

    def put(self, event: Event) -> None:
        if self.closed:
            return
        data = self._encode(event)
        if self._size + len(data) > self._limit:
            self.cut_off = True
            self._metrics.cut_off += 1
            self._queue.clear()
            self._size = 0
            self.close()
            return
        self._queue.append(data)
        self._size += len(data)
        self._wake()

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self) -> bytes | None:
        """What is queued, at least one event's worth; ``None`` once closed, ``StreamAborted`` if cut off."""
        while not self._queue:
            if self.cut_off:
                raise StreamAborted("cut off: the client reads too slowly")
            if self.closed:
                return None
            self._waiter = Future()
            await self._waiter
        data = b"".join(self._queue)
        self._queue.clear()
        self._size = 0
        return data

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._metrics.stream_clients -= 1
        if self._registry is not None:
            self._registry.discard(self)
        if self._subscription is not None:
            self._subscription.cancel()
            self._subscription = None
        self._wake()
