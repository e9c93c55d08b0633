"""The HTTP/1.1 server over real sockets, run over both parsers (httptools and h11).

Real clients: curl (keep-alive, chunked upload, 100-continue, HEAD),
http.client, httpx; pipelining and malformed requests over raw sockets.
"""

from __future__ import annotations

import http.client
import select
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

import eventhub
from eventhub.reactor import Future, ReactorAPI

from .http_support import (
    HOST,
    ServedHub,
    client_tls,
    connect,
    eventhub_http,
    read_responses,
    read_until_closed,
    wait_until,
)

Request = eventhub_http.Request
Response = eventhub_http.Response


class Demo:
    """A plugin adding the routes these tests need."""

    def __init__(self) -> None:
        self.reactor: ReactorAPI | None = None  # the served hub's, set once it runs
        self.held: list[Future[None]] = []  # one per /held request, pending until the test completes it

    def eventhub_http_routes(self, router: eventhub_http.Router) -> None:
        router.add("GET", "/hello", lambda request: "hello\n")
        router.add("GET", "/items/{id}", lambda request: {"id": request.params["id"], "q": request.query})
        router.add("POST", "/echo", self.echo)
        router.add("PUT", "/size", lambda request: str(len(request.content)))
        router.add("GET", "/stream", self.stream)
        router.add("GET", "/slow/{n}", self.slow)
        router.add("GET", "/held", self.hold)
        router.add("GET", "/boom", self.boom)

    async def echo(self, request: Request) -> Response:
        return Response(await request.body(), headers=[("content-type", "application/octet-stream")])

    async def stream(self, request: Request) -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            for i in range(5):
                yield b"part %d\n" % i

        return Response(chunks(), headers=[("content-type", "text/plain")])

    async def slow(self, request: Request) -> str:
        assert self.reactor is not None
        await self.reactor.sleep(int(request.params["n"]) / 100)
        return request.params["n"]

    async def hold(self, request: Request) -> str:
        """Answers once the test completes ``held[-1]`` (on the reactor's thread): no time to wait out."""
        self.held.append(Future())
        await self.held[-1]
        return "held"

    def boom(self, request: Request) -> str:
        raise RuntimeError("boom")


@pytest.fixture
def demo() -> Demo:
    return Demo()


@pytest.fixture
def served(parser: str, demo: Demo) -> Iterator[ServedHub]:
    with ServedHub([("demo", demo)], parser=parser, header_timeout=1.0) as running:
        demo.reactor = running.reactor
        yield running


def curl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["curl", "-sS", "--max-time", "20", *args], capture_output=True, text=True)


# -- clients -----------------------------------------------------------------------


@pytest.mark.e2e  # another program
def test_curl_keep_alive_reuses_one_connection(served: ServedHub) -> None:
    result = curl("-v", served.url("/hello"), served.url("/items/7?a=1"))
    assert result.returncode == 0, result.stderr
    assert result.stdout == 'hello\n{"id": "7", "q": {"a": ["1"]}}'
    assert "Re-using existing connection" in result.stderr or "Reusing existing" in result.stderr


@pytest.mark.e2e  # another program
def test_curl_chunked_upload(served: ServedHub) -> None:
    data = "x" * 100_000
    result = subprocess.run(
        [
            "curl",
            "-sS",
            "--max-time",
            "20",
            "-H",
            "Transfer-Encoding: chunked",
            "--data-binary",
            "@-",
            served.url("/echo"),
        ],
        input=data,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == data


@pytest.mark.e2e  # another program
def test_curl_expect_100_continue(served: ServedHub) -> None:
    result = subprocess.run(
        [
            "curl",
            "-sS",
            "-v",
            "--max-time",
            "20",
            "-H",
            "Expect: 100-continue",
            "-X",
            "PUT",
            "--data-binary",
            "@-",
            served.url("/size"),
        ],
        input="y" * 5000,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "HTTP/1.1 100 Continue" in result.stderr
    assert result.stdout == "5000"


@pytest.mark.e2e  # another program
def test_curl_head_has_the_get_headers_and_no_body(served: ServedHub) -> None:
    result = curl("-I", served.url("/hello"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.lower().splitlines()
    assert lines[0].startswith("http/1.1 200")
    assert "content-length: 6" in lines
    assert any(line.startswith("date: ") for line in lines)


def test_http_client_many_requests_on_one_connection(served: ServedHub) -> None:
    conn = http.client.HTTPConnection(HOST, served.port, timeout=10)
    try:
        for i in range(20):
            conn.request("POST", "/echo", body=b"%d" % i)
            response = conn.getresponse()
            assert response.status == 200
            assert response.read() == b"%d" % i
        assert len(served.factory.connections) == 1
    finally:
        conn.close()


def test_httpx_json_streaming_and_errors(served: ServedHub) -> None:
    with httpx.Client(base_url=served.url(""), timeout=10, verify=client_tls()) as client:
        assert client.get("/items/a%2Fb").json() == {"id": "a/b", "q": {}}
        streamed = client.get("/stream")
        assert streamed.headers["transfer-encoding"] == "chunked"
        assert streamed.text == "".join(f"part {i}\n" for i in range(5))
        missing = client.get("/nowhere")
        assert missing.status_code == 404
        wrong = client.delete("/hello")
        assert wrong.status_code == 405
        assert wrong.headers["allow"] == "GET, HEAD"
        failed = client.get("/boom")
        assert failed.status_code == 500
        assert client.get("/hello").text == "hello\n"  # the connection survived all that


# -- framing -----------------------------------------------------------------------


def test_pipelined_requests_are_answered_in_order(served: ServedHub) -> None:
    with connect(served.port) as sock:
        sock.sendall(
            b"GET /slow/5 HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /slow/1 HTTP/1.1\r\nHost: x\r\n\r\n"
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
            b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        responses = read_responses(sock, 4)
    assert [body for _, _, body in responses] == [b"5", b"1", b"abc", b"hello\n"]


def test_pipelined_requests_byte_by_byte(served: ServedHub) -> None:
    data = b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n" * 3
    with connect(served.port) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(len(data)):
            sock.send(data[i : i + 1])
        responses = read_responses(sock, 3)
    assert [status for status, _, _ in responses] == [200, 200, 200]


def test_http_10_gets_connection_close_and_a_content_length(served: ServedHub) -> None:
    with connect(served.port) as sock:
        sock.sendall(b"GET /hello HTTP/1.0\r\n\r\n")
        data = read_until_closed(sock)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\nconnection: close" in head.lower()
    assert b"\r\ncontent-length: 6" in head.lower()
    assert body == b"hello\n"


def test_connection_close_is_honoured(served: ServedHub) -> None:
    with connect(served.port) as sock:
        sock.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /hello HTTP/1.1\r\n")
        data = read_until_closed(sock)
    assert data.count(b"HTTP/1.1 200") == 1


def test_chunked_request_body_byte_by_byte(served: ServedHub) -> None:
    data = (
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    )
    with connect(served.port) as sock:
        for i in range(len(data)):
            sock.send(data[i : i + 1])
        [(status, _, body)] = read_responses(sock, 1)
    assert (status, body) == (200, b"hello world")


# -- limits and malformed requests -------------------------------------------------

MALFORMED = [
    pytest.param(b"GARBAGE\r\n\r\n", 400, id="no-version"),
    pytest.param(b"GET / HTTP/1.1\r\n\r\n", 400, id="no-host"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\nbad header\r\n\r\n", 400, id="header-without-colon"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: x\r\n\r\n", 400, id="bad-length"),
    pytest.param(
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400, id="two-lengths"
    ),
    pytest.param(
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400, id="bad-chunk"
    ),
    pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 20000 + b"\r\n\r\n", 431, id="huge-header"),
    pytest.param(
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n", 413, id="body-too-large"
    ),
    pytest.param(
        b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Many: 1\r\n" * 3000 + b"\r\n", 431, id="many-headers"
    ),
    pytest.param(b"GET nowhere HTTP/1.1\r\nHost: x\r\n\r\n", 400, id="bad-target"),
]


@pytest.mark.parametrize(("data", "status"), MALFORMED)
def test_malformed_request_gets_its_status_and_a_close_while_others_are_served(
    served: ServedHub, data: bytes, status: int
) -> None:
    with (
        connect(served.port) as bad,
        httpx.Client(base_url=served.url(""), timeout=10, verify=client_tls()) as good,
    ):
        assert good.get("/hello").status_code == 200
        bad.sendall(data)
        answer = read_until_closed(bad)
        assert answer.startswith(b"HTTP/1.1 %d " % status), answer[:200]
        assert b"connection: close" in answer.lower()
        assert good.get("/hello").status_code == 200
    assert served.factory.rejected.get(status, 0) >= 1


def test_chunked_body_over_max_body_is_413(parser: str) -> None:
    with ServedHub(parser=parser, max_body=1000) as served, connect(served.port) as sock:
        sock.sendall(b"POST /events/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        sock.sendall(b"400\r\n" + b"a" * 1024 + b"\r\n")
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b"\r\nconnection: close\r\n" in answer


def test_pipelined_requests_then_a_half_close_are_all_answered(served: ServedHub) -> None:
    with connect(served.port) as sock:
        sock.sendall(b"GET /slow/5 HTTP/1.1\r\nHost: x\r\n\r\n" + b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.shutdown(socket.SHUT_WR)
        data = read_until_closed(sock)
    assert data.count(b"HTTP/1.1 200 OK") == 2 and data.endswith(b"hello\n")


def test_slow_head_gets_408(parser: str) -> None:
    with ServedHub(parser=parser, header_timeout=0.1) as served, connect(served.port) as sock:
        sock.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 408 ")


def test_a_body_that_stops_or_trickles_gets_408_after_body_timeout(parser: str) -> None:
    emitted: list[eventhub.Event] = []

    class Watcher:
        @eventhub.on("order.paid")
        def seen(self, event: eventhub.Event) -> None:
            emitted.append(event)

    with ServedHub([("watcher", Watcher())], parser=parser, body_timeout=0.1) as served:
        head = b"POST /events/order.paid HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\n\r\n"
        with connect(served.port) as stopped, connect(served.port) as trickled:
            stopped.sendall(head + b'{"id"')  # and nothing more
            trickled.sendall(head)
            started = time.monotonic()
            for byte in b'{"id": 1, "more": 2}'[:19]:  # a byte every 25 ms, until the server answers
                if select.select([trickled], [], [], 0.025)[0]:
                    break
                trickled.sendall(bytes([byte]))
            assert time.monotonic() - started < 19 * 0.025  # answered before the 19th byte: not all came
            for sock in (stopped, trickled):
                answer = read_until_closed(sock)
                assert answer.startswith(b"HTTP/1.1 408 ") and b"connection: close" in answer, answer
                assert b"the request body took too long" in answer
            # Meanwhile another client is served, body and all, at its own pace.
            with connect(served.port) as fine:
                body = b'{"id": 2, "x": "ab"}'
                assert len(body) == 20
                fine.sendall(head + body)
                assert read_responses(fine, 1)[0][0] == 202
        wait_until(lambda: len(emitted) == 1)
        assert served.factory.rejected.get(408) == 2


def test_expect_continue_starts_the_body_timeout_at_the_100(parser: str) -> None:
    with ServedHub(parser=parser, body_timeout=0.1) as served, connect(served.port) as sock:
        sock.sendall(
            b"POST /events/a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n"
        )
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue")
        answer = read_until_closed(sock)  # the body never comes
        assert answer.startswith(b"HTTP/1.1 408 "), answer


def test_connections_past_max_per_address_get_503(parser: str) -> None:
    with ServedHub(parser=parser, max_per_address=2, loopback_exempt=False) as served:
        first, second = connect(served.port), connect(served.port)
        try:
            wait_until(lambda: len(served.factory.connections) == 2)
            with connect(served.port) as third:
                answer = read_until_closed(third)
            assert answer.startswith(b"HTTP/1.1 503 ") and b"from your address" in answer
            first.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_responses(first, 1)[0][0] == 200
            first.close()  # its place is free again
            wait_until(lambda: served.factory.per_address.open_from(HOST) == 1)
            with connect(served.port) as fourth:
                fourth.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                assert read_responses(fourth, 1)[0][0] == 200
        finally:
            first.close()
            second.close()
        wait_until(lambda: served.factory.per_address.open_from(HOST) == 0)
    assert served.factory.per_address.refused == 1


def test_loopback_is_exempt_from_max_per_address_by_default(parser: str) -> None:
    served = ServedHub(parser=parser, max_per_address=1)
    with served, connect(served.port) as one, connect(served.port) as two:
        for sock in (one, two):
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_responses(sock, 1)[0][0] == 200


def test_a_connection_is_in_one_state_at_a_time(served: ServedHub, demo: Demo) -> None:
    State = eventhub_http._server.State

    def state() -> eventhub_http._server.State:
        (connection,) = served.factory.connections
        return connection.state

    with connect(served.port) as sock:
        wait_until(lambda: len(served.factory.connections) == 1)
        assert state() is State.WAITING
        sock.sendall(b"GET /held HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_until(lambda: state() is State.ANSWERING)
        wait_until(lambda: demo.held)  # its handler runs, awaiting held[0] until the test completes it
        served.call(demo.held[0].set_result, None)
        assert read_responses(sock, 1)[0][0] == 200
        wait_until(lambda: state() is State.WAITING)
        sock.sendall(b"GET /events?match=x HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_until(lambda: state() is State.STREAMING)
        connection = next(iter(served.factory.connections))
    wait_until(lambda: connection.state is State.CLOSED)


def test_response_headers_given_as_lists_are_served(parser: str) -> None:
    class Lists:
        @eventhub.hookimpl
        def eventhub_http_routes(self, router: eventhub_http.Router) -> None:
            headers = [["x-list", "1"], ["Connection", "close"]]
            # Lists where tuples are declared, on purpose: what a JSON-minded handler writes.
            router.add("GET", "/lists", lambda request: Response("x", headers=headers))  # type: ignore[arg-type]

    served = ServedHub([("lists", Lists())], parser=parser)
    with served, connect(served.port) as sock:
        sock.sendall(b"GET /lists HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = read_until_closed(sock)  # closed after it: the handler's Connection: close
    assert answer.startswith(b"HTTP/1.1 200 ") and b"\r\nx-list: 1\r\n" in answer, answer
    assert answer.count(b"onnection: close") == 1


def test_idle_connection_is_closed_after_keep_alive_timeout(parser: str) -> None:
    with ServedHub(parser=parser, keep_alive_timeout=0.1) as served, connect(served.port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_responses(sock, 1)[0][0] == 200
        assert sock.recv(100) == b""  # closed by the server, without a response
        sock.close()  # else the server lingers for this side's close (2 s) before it forgets the connection
        wait_until(lambda: not served.factory.connections)


def test_connections_past_max_connections_get_503(parser: str) -> None:
    with ServedHub(parser=parser, max_connections=2) as served:
        first, second = connect(served.port), connect(served.port)
        try:
            wait_until(lambda: len(served.factory.connections) == 2)
            with connect(served.port) as third:
                assert read_until_closed(third).startswith(b"HTTP/1.1 503 ")
            first.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_responses(first, 1)[0][0] == 200
        finally:
            first.close()
            second.close()
