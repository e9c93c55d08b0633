"""Events out: Server-Sent Events (and their cut-off for slow readers), /healthz, /metrics."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

import eventhub

from .http_support import HOST, ServedHub, client_tls, connect, read_responses, wait_until


@pytest.fixture
def served() -> Iterator[ServedHub]:
    with ServedHub(sse_buffer=64 * 1024) as running:
        yield running


def read_sse(response: httpx.Response, count: int) -> list[dict[str, str]]:
    """The first ``count`` events of an SSE stream, each as its fields."""
    events: list[dict[str, str]] = []
    fields: dict[str, str] = {}
    for line in response.iter_lines():
        if not line:
            if fields:
                events.append(fields)
                fields = {}
                if len(events) == count:
                    return events
            continue
        if line.startswith(":"):
            continue
        key, _, value = line.partition(": ")
        fields[key] = value
    raise AssertionError(f"the stream ended after {events}")


class Odd:
    def __repr__(self) -> str:
        return "<Odd>"


def test_sse_sends_the_matching_events(served: ServedHub) -> None:
    with (
        httpx.Client(base_url=served.url(""), timeout=10, verify=client_tls()) as client,
        client.stream("GET", "/events?match=order.*&match=chat.>") as stream,
    ):
        assert stream.headers["content-type"] == "text/event-stream"
        wait_until(lambda: served.plugin.metrics.stream_clients == 1)
        ids = [
            client.post(f"/events/{name}", json={"n": i}).json()["id"]
            for i, name in enumerate(["order.paid", "other.thing", "chat.room.said"])
        ]
        served.call(served.hub.emit, "order.odd", Odd())
        events = read_sse(stream, 3)
    assert events[0] == {"id": ids[0], "event": "order.paid", "data": '{"n": 0}'}
    assert events[1] == {"id": ids[2], "event": "chat.room.said", "data": '{"n": 2}'}
    assert events[2]["event"] == "order.odd"
    assert json.loads(events[2]["data"]) == {"repr": "<Odd>", "non_json": True}
    wait_until(lambda: served.plugin.metrics.stream_clients == 0)  # the client left: unsubscribed


def test_a_bad_pattern_is_400(served: ServedHub) -> None:
    assert httpx.get(served.url("/events?match=a.>.b"), timeout=10, verify=client_tls()).status_code == 400


def test_a_slow_sse_reader_is_cut_off_not_buffered_without_bound(served: ServedHub) -> None:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(10)
    sock.connect((HOST, served.port))
    with sock:
        sock.sendall(b"GET /events?match=big.* HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_until(lambda: served.plugin.metrics.stream_clients == 1)
        payload = "x" * 10_000
        emitted = 0
        done = threading.Semaphore(0)

        def burst() -> None:
            for _ in range(20):
                served.hub.emit("big.event", payload)
            done.release()

        while served.plugin.metrics.cut_off == 0:  # the client never reads
            served.call(burst)
            assert done.acquire(timeout=10)
            emitted += 20
            assert emitted < 10_000, "never cut off"
        wait_until(lambda: served.plugin.metrics.stream_clients == 0)
        with pytest.raises(ConnectionError):  # aborted: the stream did not end cleanly
            while sock.recv(65536):
                pass
    text = httpx.get(served.url("/metrics"), timeout=10, verify=client_tls()).text
    assert "eventhub_http_stream_cut_off_total 1" in text


def test_healthz(served: ServedHub) -> None:
    response = httpx.get(served.url("/healthz"), timeout=10, verify=client_tls())
    assert (response.status_code, response.text) == (200, "ok\n")


def test_healthz_is_503_while_stopping() -> None:
    with ServedHub() as served, connect(served.port) as sock:
        served.call(served.factory.begin_shutdown)  # what the reactor's shutdown does first
        wait_until(lambda: served.factory.stopping)
        with connect(served.port) as late:
            late.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_responses(late, 1)[0][0] == 503
        assert sock.recv(100) == b""  # idle connections were closed


class Handlers:
    @eventhub.on("order.*")
    def ok(self, event: eventhub.Event) -> None:
        pass

    @eventhub.on("order.paid")
    def broken(self, event: eventhub.Event) -> None:
        raise RuntimeError("broken")


def test_metrics_parse_as_prometheus_text() -> None:
    with (
        ServedHub([("shop", Handlers())]) as served,
        httpx.Client(base_url=served.url(""), timeout=10, verify=client_tls()) as client,
    ):
        for name in ["order.paid", "order.paid", "order.sent"]:
            assert client.post(f"/events/{name}", json={}).status_code == 202
        client.get("/nowhere")
        text = client.get("/metrics").text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples
    }
    assert samples[("eventhub_events_emitted_total", (("name", "order.paid"),))] == 2
    assert samples[("eventhub_events_emitted_total", (("name", "order.sent"),))] == 1
    # order.paid: ok, broken (and the metrics' own subscriber is not counted) -> 2 per event
    assert samples[("eventhub_events_delivered_total", (("name", "order.paid"),))] == 4
    assert samples[("eventhub_handler_failures_total", (("plugin", "shop"),))] == 2
    assert samples[("eventhub_handler_seconds_count", ())] >= 5
    assert samples[("eventhub_connections", (("service", "http"),))] >= 1
    assert samples[("eventhub_http_requests_total", ())] >= 5
    for name in ["eventhub_loop_lag_seconds", "eventhub_tasks_running", "eventhub_http_stream_clients"]:
        assert (name, ()) in samples
    assert families["eventhub_handler_seconds"].type == "histogram"
