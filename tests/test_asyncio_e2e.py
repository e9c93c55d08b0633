"""``eventhub run --backend asyncio|uvloop`` with a pip-installed plugin that awaits asyncio libraries.

One handler awaits ``asyncio.sleep``, an ``httpx.AsyncClient`` request to a
local HTTP server and ``reactor.defer_to_thread`` in the same function; another
is cancelled at SIGTERM in the middle of an ``asyncio.sleep``. The guide's
``notify`` plugin (docs/guide/asyncio.md, taken from the page) answers an
``order.paid`` that the http plugin turns a POST into, as a newcomer runs it.
"""

from __future__ import annotations

import http.server
import json
import signal
import socket
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from echo_support import EchoServer, assert_clean_exit
from support import REPO, PluginVenv, Served, first_party, write_dist

from eventhub.reactor import available_backends

FETCHER = """\
import asyncio
import logging
import threading

import httpx

import eventhub

log = logging.getLogger("eventhub.fetcher")


class Fetcher(eventhub.Handler):
    events = ("echo.connection.made",)

    def eventhub_configure(self, hub, settings):
        self.hub = hub
        self.url = settings["url"]

    async def execute(self, event):
        await asyncio.sleep(0.001)
        async with httpx.AsyncClient() as client:
            reply = await client.get(self.url)
        worker = await self.hub.reactor.defer_to_thread(lambda: threading.current_thread().name)
        log.info("fetcher: %s %s on %s", reply.status_code, reply.text, worker)


class Sleeper(eventhub.Handler):
    events = ("eventhub.started",)

    async def execute(self, event):
        try:
            log.info("sleeper: waiting")
            await asyncio.sleep(3600)
        except asyncio.CancelledError as cancelled:
            log.info("sleeper: cancelled with %s", type(cancelled).__name__)
            raise
        finally:
            log.info("sleeper: cleanup ran")
"""

BACKENDS = [b for b in ("asyncio", "uvloop") if b in available_backends()]


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> PluginVenv:
    root = tmp_path_factory.mktemp("asyncio-e2e")
    dist = write_dist(
        root / "src",
        "eventhub-fetcher",
        {"fetcher": "eventhub_fetcher:Fetcher", "sleeper": "eventhub_fetcher:Sleeper"},
        {"eventhub_fetcher.py": FETCHER},
    )
    environment = PluginVenv(root / "venv")
    environment.install(first_party("echo"), dist)
    return environment


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"hello-from-http"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_handler_awaits_asyncio_httpx_and_a_thread_in_one_function(
    venv: PluginVenv, http_url: str, backend: str
) -> None:
    args = ("--backend", backend, "--only", "echo,fetcher", "--set", f"fetcher.url={http_url}")
    with EchoServer(venv, *args) as server:
        assert server.backend == backend
        with server.connect() as sock:
            sock.sendall(b"ping")
            assert _read(sock, 4) == b"ping"
            server.wait_for(r"fetcher: 200 hello-from-http on eventhub-worker")
        assert_clean_exit(*server.finish())


@pytest.mark.parametrize("backend", BACKENDS)
def test_sigterm_cancels_a_handler_awaiting_asyncio_sleep(venv: PluginVenv, backend: str) -> None:
    with EchoServer(venv, "--backend", backend, "--only", "echo,sleeper") as server:
        server.wait_for(r"sleeper: waiting")
        status, stderr = server.finish(signal.SIGTERM)
        assert_clean_exit(status, stderr)
        assert "sleeper: cancelled with CancelledError" in stderr
        assert "sleeper: cleanup ran" in stderr


def _read(sock: socket.socket, n: int) -> bytes:
    received = b""
    while len(received) < n:
        chunk = sock.recv(4096)
        assert chunk, "closed"
        received += chunk
    return received


def _guide_plugin() -> str:
    """The ``notify.py`` block of docs/guide/asyncio.md, as the page shows it."""
    text = (REPO / "docs" / "guide" / "asyncio.md").read_text(encoding="utf-8")
    start = text.index('```python\n"""notify.py') + len("```python\n")
    return text[start : text.index("\n```", start)] + "\n"


class _Shop(http.server.BaseHTTPRequestHandler):
    """A stand-in for the shop's web API: answers a paid order with its receipt."""

    def do_POST(self) -> None:
        order = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        body = json.dumps({"order": order["id"], "total": "9.99"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def guide_venv(tmp_path_factory: pytest.TempPathFactory) -> PluginVenv:
    root = tmp_path_factory.mktemp("asyncio-guide")
    plugin = {"notify.py": _guide_plugin()}
    dist = write_dist(root / "src", "eventhub-notify", {"notify": "notify:Notify"}, plugin)
    environment = PluginVenv(root / "venv")
    environment.install(first_party("http"), dist)
    return environment


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_guide_plugin_files_a_receipt_when_order_paid_arrives(
    guide_venv: PluginVenv, tmp_path: Path, backend: str
) -> None:
    shop = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Shop)
    thread = threading.Thread(target=shop.serve_forever, daemon=True)
    thread.start()
    settings = [f"notify.url=http://127.0.0.1:{shop.server_address[1]}/paid", 'http.listen=["tcp:0"]']
    try:
        args = ["run", "--backend", backend] + [arg for s in settings for arg in ("--set", s)]
        with Served(guide_venv, *args, cwd=tmp_path) as server:
            port = server.wait_for(r"http: listening on 127\.0\.0\.1:(\d+)").group(1)
            request = urllib.request.Request(f"http://127.0.0.1:{port}/events/order.paid", data=b'{"id": 7}')
            with urllib.request.urlopen(request, timeout=30) as reply:
                assert reply.status == 202
            server.wait_for(r"notify: order 7 paid, receipt in receipt-7\.json$")
            assert_clean_exit(*server.finish())
    finally:
        shop.shutdown()
        shop.server_close()
        thread.join(10)
    assert json.loads((tmp_path / "receipt-7.json").read_text()) == {"order": 7, "total": "9.99"}
