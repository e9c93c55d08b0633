"""``GET /ws``: events both ways over a WebSocket (wsproto, sans-IO).

The client sends JSON text messages::

    {"subscribe": ["order.*", "chat.>"]}        -> {"subscribed": [...]}   (replaces the last list)
    {"emit": {"name": "order.paid", "payload": {...}}}  -> {"emitted": "<event id>"}

and receives each matching event as ``{"id", "name", "source", "time", "payload"}``
(``"non_json": true`` with the payload's ``repr`` when JSON cannot express it).
A message it cannot act on gets ``{"error": "..."}``. Pings are answered.
Close codes: the client's own code echoed; 1001 when the server stops; 1003 for
a binary message; 1009 for a message over ``max_message`` bytes; a protocol
error closes with wsproto's code (1002, 1007). A client reading slower than
the events arrive is cut off like an SSE client (``_feeds``).
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Message, Ping, TextMessage
from wsproto.utilities import generate_accept_token

from eventhub import Event
from eventhub.errors import UsageError
from eventhub.names import check_name, check_pattern
from eventhub_http._feeds import Feed, StreamAborted, event_message
from eventhub_http._messages import HTTPError, Request, Response

if TYPE_CHECKING:
    from eventhub import Hub
    from eventhub_http._metrics import Metrics
    from eventhub_http._server import HttpProtocol

__all__ = ["WebSocketSession", "accept"]

log = logging.getLogger("eventhub.http")

GOING_AWAY, UNSUPPORTED, TOO_BIG = 1001, 1003, 1009


def accept(
    request: Request, hub: Hub, metrics: Metrics, limit: int, max_message: int, feeds: set[Feed] | None = None
) -> Response:
    """The 101 answer to a WebSocket handshake (400 when it is not one), switching to a session."""
    headers = request.headers
    key = headers.get("sec-websocket-key")
    upgrade = (headers.get("upgrade") or "").lower()
    if upgrade != "websocket" or not key:
        raise HTTPError(400, "a WebSocket handshake is expected here (Upgrade: websocket)")
    if headers.get("sec-websocket-version") != "13":
        raise HTTPError(426, "WebSocket version 13 only", [("sec-websocket-version", "13")])
    response = Response(
        None,
        101,
        [
            ("upgrade", "websocket"),
            ("connection", "Upgrade"),
            ("sec-websocket-accept", generate_accept_token(key.encode()).decode()),
        ],
    )
    response.upgrade = lambda protocol: WebSocketSession(protocol, hub, metrics, limit, max_message, feeds)
    return response


class WebSocketSession:
    """One WebSocket connection after the handshake: frames in, events and answers out."""

    def __init__(
        self,
        protocol: HttpProtocol,
        hub: Hub,
        metrics: Metrics,
        limit: int,
        max_message: int,
        feeds: set[Feed] | None = None,
    ) -> None:
        self._protocol = protocol
        self._hub = hub
        self._ws = Connection(ConnectionType.SERVER)
        self._max_message = max_message
        self._parts: list[str] = []
        self._size = 0
        self._feed = Feed(hub, (), self._encode, limit, metrics, feeds)
        protocol.spawn(self._pump(), "http: websocket out")

    def _encode(self, event: Event) -> bytes:
        return self._ws.send(Message(data=json.dumps(event_message(event))))

    async def _pump(self) -> None:
        protocol = self._protocol
        try:
            while (data := await self._feed.get()) is not None:
                if protocol.transport is None:
                    return
                protocol.transport.write(data)
                await protocol.drain()
        except StreamAborted as why:
            if self._feed.cut_off and protocol.transport is not None:
                log.info("http: websocket %s %s", protocol.peer, why)
                protocol.transport.abort_connection()
        except ConnectionError:
            return
        finally:
            self._feed.close()

    def data_received(self, data: bytes) -> None:
        self._ws.receive_data(data)
        for event in self._ws.events():
            if isinstance(event, Ping):
                self._send(self._ws.send(event.response()))
            elif isinstance(event, CloseConnection):
                if self._ws.state is not ConnectionState.CLOSED:
                    self._send(self._ws.send(event.response()))
                self._finish()
                return
            elif isinstance(event, BytesMessage):
                self.close(UNSUPPORTED, "text messages (JSON) only")
                return
            elif isinstance(event, TextMessage):
                self._size += len(event.data)
                if self._size > self._max_message:
                    self.close(TOO_BIG, f"a message is at most {self._max_message} bytes")
                    return
                self._parts.append(event.data)
                if event.message_finished:
                    text = "".join(self._parts)
                    self._parts, self._size = [], 0
                    self._send_json(self._handle(text))

    def _handle(self, text: str) -> dict[str, Any]:
        try:
            message = json.loads(text)
        except ValueError:
            return {"error": "a message is a JSON object"}
        if not isinstance(message, dict):
            return {"error": "a message is a JSON object"}
        try:
            if "subscribe" in message:
                patterns = message["subscribe"]
                if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
                    return {"error": "subscribe takes a list of patterns"}
                for pattern in patterns:
                    check_pattern(pattern)
                self._feed.subscribe(self._hub, patterns)
                return {"subscribed": patterns}
            if "emit" in message:
                emit = message["emit"]
                if not isinstance(emit, dict) or not isinstance(emit.get("name"), str):
                    return {"error": 'emit takes {"name": ..., "payload": ...}'}
                event = Event(check_name(emit["name"]), emit.get("payload"), source="http")
                self._hub.dispatch(event)
                return {"emitted": f"{event.id:032x}"}
        except UsageError as error:
            return {"error": str(error)}
        return {"error": 'unknown message: send {"subscribe": [...]} or {"emit": {...}}'}

    def _send_json(self, message: dict[str, Any]) -> None:
        if self._ws.state is ConnectionState.OPEN:
            self._send(self._ws.send(Message(data=json.dumps(message))))

    def _send(self, data: bytes) -> None:
        if self._protocol.transport is not None:
            self._protocol.transport.write(data)

    def close(self, code: int, reason: str = "") -> None:
        """Send a close frame with ``code`` and close the connection once it is flushed."""
        if self._ws.state is ConnectionState.OPEN:
            self._send(self._ws.send(CloseConnection(code=code, reason=reason)))
        self._finish()

    def _finish(self) -> None:
        self._feed.close()
        if self._protocol.transport is not None:
            self._protocol.transport.lose_connection()

    def connection_lost(self) -> None:
        self._feed.close()
