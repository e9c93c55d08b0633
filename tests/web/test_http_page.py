"""``GET /``: the page, in headless Chromium (Debian's ``chromium``; ``.ci/run`` installs it).

Two ways: an event posted before loading is in the page as served (what a
browser with scripts off shows; read with ``--dump-dom``, which itself needs
scripts); and an event posted while the page is open is added to its list by
its EventSource, read from the DOM over the DevTools protocol (a small CDP
client on the ``websockets`` library).
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

import eventhub

from .http_support import ServedHub, client_tls, wait_until

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (.ci/run installs it: apt-get install chromium)"
)
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
    "--no-proxy-server",
]


class Shop:
    @eventhub.on("order.*")
    def seen(self, event: eventhub.Event) -> None:
        pass


@pytest.fixture
def served() -> Iterator[ServedHub]:
    with ServedHub([("shop", Shop())]) as running:
        yield running


def post(served: ServedHub, name: str, payload: object) -> str:
    response = subprocess.run(
        ["curl", "-sS", "--max-time", "10", "-H", "content-type: application/json",
         "--data-binary", json.dumps(payload), served.url(f"/events/{name}")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    event_id = json.loads(response.stdout)["id"]
    assert isinstance(event_id, str)
    return event_id


def test_the_page_as_served_lists_plugins_counts_events_and_a_form(served: ServedHub) -> None:
    event_id = post(served, "order.paid", {"id": 7, "note": "<script>"})
    html = httpx.get(served.url("/"), timeout=10, verify=client_tls()).text
    assert '<tr class="loaded"><td>shop</td><td>loaded</td><td><code>order.*</code>' in html
    assert '<tr data-name="order.paid"><td>order.paid</td><td>1</td></tr>' in html
    assert f'<li data-id="{event_id}"><strong>order.paid</strong>' in html
    assert "&lt;script&gt;" in html  # payloads are escaped
    assert '<form method="post" action="/emit">' in html
    assert "http://" not in html and "https://" not in html  # self-contained: nothing fetched elsewhere


def test_the_form_emits_without_scripts(served: ServedHub) -> None:
    response = httpx.post(
        served.url("/emit"),
        data={"name": "order.sent", "payload": '{"n": 1}'},
        timeout=10,
        verify=client_tls(),
    )
    assert (response.status_code, response.headers["location"]) == (303, "/")
    assert served.plugin.metrics.emitted["order.sent"] == 1
    assert (
        httpx.post(
            served.url("/emit"), data={"name": "bad..", "payload": ""}, timeout=10, verify=client_tls()
        ).status_code
        == 400
    )


@pytest.mark.e2e  # a browser in a subprocess
@needs_chromium
def test_dump_dom_shows_an_event_posted_before(served: ServedHub, tmp_path: Path) -> None:
    event_id = post(served, "order.paid", {"id": 1})
    assert CHROMIUM is not None
    dom = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path}",
         "--dump-dom", served.url("/")],
        capture_output=True, text=True, timeout=120,
    ).stdout  # fmt: skip
    assert f'<li data-id="{event_id}">' in dom


class DevTools:
    """Just enough of the Chrome DevTools Protocol: evaluate JavaScript in one page."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.ids = itertools.count(1)

    def evaluate(self, expression: str) -> object:
        call_id = next(self.ids)
        self.ws.send(json.dumps({"id": call_id, "method": "Runtime.evaluate",
                                 "params": {"expression": expression, "returnByValue": True}}))  # fmt: skip
        while True:
            message = json.loads(self.ws.recv(timeout=30))
            if message.get("id") == call_id:
                return message["result"]["result"].get("value")


@pytest.mark.e2e  # a browser in a subprocess
@needs_chromium
def test_an_event_posted_with_curl_appears_live_in_the_page(served: ServedHub, tmp_path: Path) -> None:
    assert CHROMIUM is not None
    browser = subprocess.Popen(
        [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path}", "--remote-debugging-port=0", served.url("/")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        port_file = tmp_path / "DevToolsActivePort"
        wait_until(lambda: port_file.exists() and port_file.read_text().count("\n") >= 1, timeout=60)
        port = int(port_file.read_text().split()[0])
        targets: list[dict[str, str]] = []

        def page_listed() -> bool:
            nonlocal targets
            targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
            return any(t["type"] == "page" and t["url"].startswith(served.url("/")) for t in targets)

        wait_until(page_listed, timeout=60)
        target = next(t for t in targets if t["type"] == "page" and t["url"].startswith(served.url("/")))
        with connect(target["webSocketDebuggerUrl"], max_size=None, open_timeout=30) as ws:
            devtools = DevTools(ws)
            poll(lambda: devtools.evaluate("document.getElementById('live').textContent") == "(live)")
            event_id = post(served, "order.paid", {"id": 42})
            query = f"document.querySelector('#events li[data-id=\"{event_id}\"]')?.textContent"
            poll(lambda: devtools.evaluate(query) is not None)
            text = devtools.evaluate(query)
            count = devtools.evaluate(
                "document.querySelector('#counts tr[data-name=\"order.paid\"]').cells[1].textContent"
            )
        assert isinstance(text, str)
        assert re.fullmatch(r'order\.paid \{"id":42\} from http', text)
        assert count == "1"
    finally:
        browser.terminate()
        try:
            browser.wait(30)
        except subprocess.TimeoutExpired:
            browser.kill()
            browser.wait()


def poll(condition: Callable[[], object], timeout: float = 60) -> None:
    """Like ``wait_until``, for conditions that each take a round trip to the browser."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the page never got there"
        time.sleep(0.05)
