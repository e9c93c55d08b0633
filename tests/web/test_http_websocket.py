"""``GET /ws`` with a real client library (websockets): subscribe, emit, pings, close codes, limits."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from .http_support import ServedHub, client_tls, wait_until


@pytest.fixture(params=["httptools", "h11"])
def served(request: pytest.FixtureRequest) -> Iterator[ServedHub]:
    with ServedHub(parser=request.param, ws_max_message=1000, token="t0k") as running:
        yield running


def open_ws(served: ServedHub) -> ClientConnection:
    return connect(
        f"ws://127.0.0.1:{served.port}/ws",
        additional_headers={"authorization": "Bearer t0k"},
        open_timeout=10,
        close_timeout=10,
    )


def receive(ws: ClientConnection) -> dict[str, object]:
    message = json.loads(ws.recv(timeout=10))
    assert isinstance(message, dict)
    return message


def test_subscribe_emit_and_receive(served: ServedHub) -> None:
    with open_ws(served) as ws:
        ws.send(json.dumps({"subscribe": ["order.*"]}))
        assert receive(ws) == {"subscribed": ["order.*"]}
        ws.send(json.dumps({"emit": {"name": "order.paid", "payload": {"id": 3}}}))
        # Our own event (we subscribe to it) and the answer, in the order the hub made them.
        first, second = receive(ws), receive(ws)
        event, answer = (first, second) if "name" in first else (second, first)
        assert event["name"] == "order.paid" and event["payload"] == {"id": 3} and event["source"] == "http"
        assert answer == {"emitted": event["id"]}
        posted = httpx.post(
            served.url("/events/order.sent"),
            json=[1],
            headers={"authorization": "Bearer t0k"},
            timeout=10,
            verify=client_tls(),
        )
        assert receive(ws)["id"] == posted.json()["id"]
        ws.send(json.dumps({"emit": {"name": "bad..name"}}))
        assert "error" in receive(ws)
        ws.send("not json")
        assert "error" in receive(ws)
        assert ws.ping().wait(10)  # answered with a pong


def test_a_token_is_required(served: ServedHub) -> None:
    with pytest.raises(Exception, match="401"):
        connect(f"ws://127.0.0.1:{served.port}/ws", open_timeout=10)


def test_a_message_over_the_limit_closes_with_1009(served: ServedHub) -> None:
    with open_ws(served) as ws:
        ws.send(json.dumps({"emit": {"name": "x", "payload": "a" * 2000}}))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


def test_a_binary_message_closes_with_1003(served: ServedHub) -> None:
    with open_ws(served) as ws:
        ws.send(b"\x00\x01")
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1003


def test_the_client_close_code_is_echoed_and_the_feed_released(served: ServedHub) -> None:
    with open_ws(served) as ws:
        ws.send(json.dumps({"subscribe": [">"]}))
        receive(ws)
        ws.close(code=4000, reason="bye")
        assert ws.protocol.close_rcvd is not None and ws.protocol.close_rcvd.code == 4000
    wait_until(lambda: served.plugin.metrics.stream_clients == 0)


def test_the_server_stopping_closes_with_1001(served: ServedHub) -> None:
    with open_ws(served) as ws:
        served.call(served.factory.begin_shutdown)
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
