"""Helpers for the http plugin's tests: a served hub on a thread, raw sockets, a parser switch.

The plugin is imported from its source folder (``load_source_package``): the
suite's environment has its dependencies (the ``test`` extra) but not the
plugin itself, whose entry point would show in every other test's hub.
Tests that need it installed, as a user would, use ``http_venv``.
"""

from __future__ import annotations

import functools
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from support import load_source_package

from eventhub import Hub

if TYPE_CHECKING:  # mypy reads the plugin's source; the tests import it from there too
    import eventhub_http as eventhub_http  # re-exported: the tests take it from here
else:
    eventhub_http = load_source_package("http", "eventhub_http")

HOST = "127.0.0.1"
PARSERS = ["httptools", "h11"]


class ServedHub:
    """A hub with the http plugin (and ``plugins``) serving on a free port, its reactor on a thread."""

    def __init__(
        self, plugins: Iterable[tuple[str, object]] = (), backend: str | None = None, **settings: Any
    ) -> None:
        settings.setdefault("listen", ("tcp:0",))
        self.hub = Hub(backend=backend)
        self.plugin = eventhub_http.HttpPlugin()
        self.plugin.settings = eventhub_http.HttpSettings(**settings)
        self.plugin.token = self.plugin.settings.read_token()
        self.plugin.hub = self.hub
        eventhub_http.add_hookspecs(self.hub)
        self.hub.register(self.plugin, "http")
        for name, plugin in plugins:
            self.hub.register(plugin, name)
        self.reactor = self.hub.reactor
        self.plugin.eventhub_start_services(self.hub, self.reactor)
        self.port: int = self.plugin.listeners[0].get_host().port
        assert self.plugin.factory is not None, "eventhub_start_services built no factory"
        self.factory = self.plugin.factory
        self._thread = threading.Thread(target=self.reactor.run, kwargs={"install_signal_handlers": False})
        self._thread.start()
        wait_until(lambda: self.reactor.running)

    def url(self, path: str = "/") -> str:
        return f"http://{HOST}:{self.port}{path}"

    def call(self, fn: Callable[..., object], *args: Any) -> None:
        self.reactor.call_from_thread(fn, *args)

    def stop(self) -> None:
        if self._thread.is_alive():
            self.reactor.call_from_thread(self.reactor.stop)
            self._thread.join(30)
            assert not self._thread.is_alive(), "the reactor did not stop"

    def __enter__(self) -> ServedHub:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@functools.cache
def client_tls() -> ssl.SSLContext:
    """The TLS context for the tests' httpx clients (``verify=client_tls()``), built once.

    Their requests are plain http, but httpx builds a context for every client
    (and every ``httpx.get``) all the same, reading the CA bundle: ~20 ms each.
    """
    import httpx

    return httpx.create_ssl_context()


def wait_until(condition: Callable[[], object], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the condition was never met")
        time.sleep(0.005)


def connect(port: int, timeout: float = 10) -> socket.socket:
    sock = socket.create_connection((HOST, port), timeout=timeout)
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    data = bytearray()
    while chunk := sock.recv(65536):
        data += chunk
    return bytes(data)


def read_responses(sock: socket.socket, count: int) -> list[tuple[int, dict[str, str], bytes]]:
    """Read ``count`` responses (Content-Length or chunked bodies) with h11 as the client's parser."""
    import h11

    client = h11.Connection(h11.CLIENT)
    out: list[tuple[int, dict[str, str], bytes]] = []
    while len(out) < count:
        # h11 wants a request sent before it reads a response: tell it one was.
        client.send(h11.Request(method="GET", target="/", headers=[("host", "x")]))
        client.send(h11.EndOfMessage())
        status, headers, body = 0, {}, bytearray()
        while True:
            event = client.next_event()
            if event is h11.NEED_DATA:
                data = sock.recv(65536)
                client.receive_data(data)
                continue
            if isinstance(event, h11.Response):
                status = event.status_code
                headers = {k.decode(): v.decode() for k, v in event.headers}
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise AssertionError("closed before the response was complete")
        out.append((status, headers, bytes(body)))
        if client.our_state is h11.MUST_CLOSE or client.their_state is h11.MUST_CLOSE:
            break
        client.start_next_cycle()
    return out
