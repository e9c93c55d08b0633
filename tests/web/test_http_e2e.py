"""``eventhub run`` with eventhub-http pip-installed beside a third-party plugin that adds a route.

The third-party plugin's entry point (``admin``) sorts before ``http``: it is
validated before the http plugin is even imported, so the hook specification
must come from the ``eventhub.hookspecs`` entry point, not from the plugin.
"""

from __future__ import annotations

import json
import re
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support import PluginVenv, Served, assert_clean_exit, first_party, write_dist

ORDERS = """\
import json
import logging

import eventhub
from eventhub_http import Response

log = logging.getLogger("eventhub.orders")


class Orders:
    def eventhub_configure(self, hub):
        self.hub = hub

    @eventhub.hookimpl
    def eventhub_http_routes(self, router):
        router.add("POST", "/orders/{id}", self.create)
        router.add("GET", "/orders", lambda request: {"orders": "all"})
        router.add("GET", "/slow", self.slow)

    async def slow(self, request):
        log.info("orders: slow request started")
        await self.hub.reactor.sleep(0.5)
        return "slow but done"

    async def create(self, request):
        data = await request.json()
        self.hub.emit("order.created", {"id": request.params["id"], **data}, source="admin")
        return Response({"created": request.params["id"]}, 201)

    @eventhub.on("order.*")
    def seen(self, event):
        log.info("orders: saw %s %s from %s", event.name, json.dumps(event.payload), event.source)
"""

CLASH = """\
class Clash:
    def eventhub_http_routes(self, router):
        router.add("GET", "/orders", lambda request: "mine")
"""


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> PluginVenv:
    root = tmp_path_factory.mktemp("http")
    orders = write_dist(
        root / "src", "eventhub-admin", {"admin": "eventhub_admin:Orders"}, {"eventhub_admin.py": ORDERS}
    )
    clash = write_dist(
        root / "src", "eventhub-clash", {"zclash": "eventhub_clash:Clash"}, {"eventhub_clash.py": CLASH}
    )
    environment = PluginVenv(root / "venv")
    environment.install(first_party("http"), orders, clash)
    return environment


@pytest.fixture
def server(venv: PluginVenv) -> Iterator[tuple[Served, str]]:
    with Served(venv, "run", "--set", 'http.listen=["tcp:0"]', "--set", "http.token=s3cret") as served:
        match = served.wait_for(r"http: listening on 127\.0\.0\.1:(\d+)")
        yield served, f"http://127.0.0.1:{match.group(1)}"


def test_plugins_lists_http_and_the_route_plugin_loads_whatever_the_order(venv: PluginVenv) -> None:
    result = venv.eventhub("plugins", "--json")
    assert result.returncode == 0, result.stderr
    records = {r["name"]: r for r in json.loads(result.stdout)}
    assert records["http"]["status"] == "loaded"
    assert records["admin"]["status"] == "loaded", records["admin"]["reason"]
    assert "http_routes" in records["admin"]["hooks"]  # hook names without the eventhub_ prefix


def test_a_third_party_route_emits_events_it_subscribes_to(server: tuple[Served, str]) -> None:
    served, url = server
    with httpx.Client(base_url=url, timeout=10) as client:
        created = client.post("/orders/42", json={"total": 9})
        assert created.status_code == 201
        assert created.json() == {"created": "42"}
        served.wait_for(r'orders: saw order\.created \{"id": "42", "total": 9\} from admin')
        # Two plugins claim GET /orders: the error names both, the first keeps it.
        assert client.get("/orders").json() == {"orders": "all"}
        page = client.get("/")  # page.html is shipped in the installed package
        assert page.status_code == 200
        assert "<td>admin</td><td>loaded</td><td><code>order.*</code>" in page.text
    served.wait_for(r"route GET /orders: plugin 'zclash' adds it, but plugin 'admin' already did")
    status, stderr = served.finish()
    assert_clean_exit(status, stderr)


def test_post_events_with_a_token(server: tuple[Served, str]) -> None:
    served, url = server
    auth = {"authorization": "Bearer s3cret"}
    with httpx.Client(base_url=url, timeout=10) as client:
        assert client.post("/events/order.paid", json={"id": 1}).status_code == 401
        assert (
            client.post(
                "/events/order.paid", json={"id": 1}, headers={"authorization": "Bearer no"}
            ).status_code
            == 401
        )
        assert client.post("/events/bad..name", json={}, headers=auth).status_code == 400
        assert client.post("/events/order.paid", content=b"{not json", headers=auth).status_code == 400
        accepted = client.post("/events/order.paid", json={"id": 1}, headers=auth)
        assert accepted.status_code == 202
        assert re.fullmatch(r"[0-9a-f]{32}", accepted.json()["id"])
    served.wait_for(r'orders: saw order\.paid \{"id": 1\} from http')
    assert served.stderr.count("orders: saw order.paid") == 1  # the refused ones emitted nothing
    status, stderr = served.finish()
    assert_clean_exit(status, stderr)


def test_sigterm_lets_requests_in_flight_finish_and_closes_idle_ones(server: tuple[Served, str]) -> None:
    served, url = server
    host, port = url.removeprefix("http://").split(":")
    with (
        socket.create_connection((host, int(port)), timeout=10) as idle,
        socket.create_connection((host, int(port)), timeout=10) as busy,
        httpx.Client(base_url=url, timeout=10) as client,
        client.stream("GET", "/events", params={"access_token": "s3cret"}) as stream,
    ):
        idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert idle.recv(65536).startswith(b"HTTP/1.1 200 ")
        busy.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        served.wait_for("orders: slow request started")
        served.process.send_signal(signal.SIGTERM)
        answer = read_until_closed(busy)
        assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b"slow but done")
        assert b"connection: close" in answer
        assert idle.recv(65536) == b""  # the idle keep-alive connection was closed
        assert list(stream.iter_bytes()) == [b": eventhub\n\n"]  # the event stream ended cleanly
    status, stderr = served.wait()
    assert_clean_exit(status, stderr)


def read_until_closed(sock: socket.socket) -> bytes:
    data = bytearray()
    while chunk := sock.recv(65536):
        data += chunk
    return bytes(data)


def test_bad_settings_are_one_line_naming_the_key(venv: PluginVenv, tmp_path: Path) -> None:
    result = venv.eventhub("run", "--set", 'http.listen=["udp:9"]')
    assert result.returncode == 2
    assert "http.listen" in result.stderr and "Traceback" not in result.stderr
