"""Hostile clients against the http plugin's service on every reactor backend.

A slowloris head, a body that stops, a body that trickles, and one address
opening more connections than ``max_per_address``: each is answered as
specified (408, 408, 408, 503) while another client is served at once.
"""

from __future__ import annotations

import select
import socket
import time

import pytest
from web.http_support import HOST, ServedHub, connect, read_responses, read_until_closed, wait_until

from eventhub.reactor import available_backends

BACKENDS = [b for b in ("select", "poll", "epoll", "asyncio", "uvloop") if b in available_backends()]
HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
POST_HEAD = b"POST /events/a HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\n\r\n"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def answered_normally(port: int) -> None:
    with connect(port) as sock:
        sock.sendall(HEALTHZ)
        assert read_responses(sock, 1)[0][0] == 200


def test_slow_heads_and_bodies_get_408_and_others_are_served(backend: str) -> None:
    with ServedHub(backend=backend, header_timeout=0.1, body_timeout=0.1) as served:
        with connect(served.port) as loris, connect(served.port) as stopped, connect(served.port) as trickled:
            loris.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
            stopped.sendall(POST_HEAD + b'{"a"')
            trickled.sendall(POST_HEAD)
            answered_normally(served.port)
            started = time.monotonic()
            for byte in b'{"a": 1, "bb": 22}':  # a byte every 25 ms until the server answers
                if select.select([trickled], [], [], 0.025)[0]:
                    break
                trickled.sendall(bytes([byte]))
            assert time.monotonic() - started < 18 * 0.025  # answered before the last byte
            for sock in (loris, stopped, trickled):
                answer = read_until_closed(sock)
                assert answer.startswith(b"HTTP/1.1 408 "), answer
        answered_normally(served.port)
        assert served.factory.rejected.get(408) == 3


def test_one_address_cannot_take_every_connection(backend: str) -> None:
    with ServedHub(backend=backend, max_per_address=3, loopback_exempt=False) as served:
        held = [connect(served.port) for _ in range(3)]
        try:
            wait_until(lambda: len(served.factory.connections) == 3)
            for _ in range(3):  # the address's next connections get a 503 and are closed
                with connect(served.port) as extra:
                    assert read_until_closed(extra).startswith(b"HTTP/1.1 503 ")
            with socket.create_connection((HOST, served.port), source_address=("127.0.0.2", 0)) as other:
                other.sendall(HEALTHZ)  # another address still gets in
                assert read_responses(other, 1)[0][0] == 200
        finally:
            for sock in held:
                sock.close()
        wait_until(lambda: served.factory.per_address.open_from(HOST) == 0)
        answered_normally(served.port)
