"""Events end to end: a third-party plugin, pip-installed, handles the echo service's events.

The plugin is a real distribution written to a temporary folder and installed
into a throwaway environment beside the echo plugin; ``eventhub run`` runs in a
subprocess and real clients connect to it on loopback.
"""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import pytest
from echo_support import EchoServer, assert_clean_exit
from support import PluginVenv, first_party, write_dist

WATCHER = """\
import logging
import threading
import time

import eventhub

log = logging.getLogger("eventhub.watcher")


class Watcher(eventhub.Handler):
    events = ("echo.connection.*",)

    def eventhub_configure(self, hub):
        self.hub = hub

    async def execute(self, event):
        reactor = self.hub.reactor
        await reactor.sleep(0.01)
        shouted = await reactor.defer_to_thread(str.upper, event.name)
        log.info("watcher: %s %s %s from %s", shouted, event.payload["peer"],
                 event.payload.get("bytes_received", "-"), event.source)


class Blocker(eventhub.Handler):
    events = ("echo.connection.made",)
    blocking = True

    def execute(self, event):
        log.info("blocker: started on %s", threading.current_thread().name)
        time.sleep(2)  # a blocking library call: the loop must go on meanwhile
        log.info("blocker: done")


class Lingerer(eventhub.Handler):
    events = ("eventhub.started",)

    def eventhub_configure(self, hub):
        self.hub = hub

    async def execute(self, event):
        try:
            log.info("lingerer: waiting")
            await self.hub.reactor.sleep(3600)
        finally:
            log.info("lingerer: cleanup ran")
"""


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> PluginVenv:
    root = tmp_path_factory.mktemp("events")
    dist = write_dist(
        root / "src",
        "eventhub-watcher",
        {
            "watcher": "eventhub_watcher:Watcher",
            "blocker": "eventhub_watcher:Blocker",
            "lingerer": "eventhub_watcher:Lingerer",
        },
        {"eventhub_watcher.py": WATCHER},
    )
    environment = PluginVenv(root / "venv")
    environment.install(first_party("echo"), dist)
    return environment


def roundtrip(sock: socket.socket, data: bytes) -> bytes:
    sock.sendall(data)
    received = b""
    while len(received) < len(data):
        chunk = sock.recv(4096)
        assert chunk, "closed"
        received += chunk
    return received


@pytest.mark.parametrize("backend", ["select", "poll", "epoll"])
def test_an_installed_async_handler_receives_the_echo_connection_events(
    venv: PluginVenv, backend: str
) -> None:
    with EchoServer(venv, "--backend", backend, "--only", "echo,watcher") as server:
        with server.connect() as sock:
            assert roundtrip(sock, b"hello") == b"hello"
            port = sock.getsockname()[1]
            server.wait_for(rf"watcher: ECHO\.CONNECTION\.MADE 127\.0\.0\.1:{port} - from echo")
        server.wait_for(rf"watcher: ECHO\.CONNECTION\.LOST 127\.0\.0\.1:{port} 5 from echo")
        assert_clean_exit(*server.finish())


def test_a_blocking_handler_does_not_stall_the_echo_service(venv: PluginVenv) -> None:
    with EchoServer(venv, "--only", "echo,blocker") as server:
        with server.connect() as first:
            server.wait_for(r"blocker: started on eventhub-worker")
            # Answered while the handler is still asleep in its thread:
            with server.connect() as second:
                for n in range(20):
                    assert roundtrip(second, b"ping %d" % n) == b"ping %d" % n
                assert "blocker: done" not in server.stderr
            assert roundtrip(first, b"still here") == b"still here"
        server.wait_for(r"blocker: done")
        assert_clean_exit(*server.finish())


def test_sigterm_cancels_running_tasks_and_their_finally_blocks_run(venv: PluginVenv) -> None:
    with EchoServer(venv, "--only", "echo,lingerer") as server:
        server.wait_for(r"lingerer: waiting")
        status, stderr = server.finish(signal.SIGTERM)
        assert_clean_exit(status, stderr)
        assert "lingerer: cleanup ran" in stderr


def test_sighup_emits_eventhub_reload_and_keeps_serving(venv: PluginVenv, tmp_path: Path) -> None:
    plugin = write_dist(
        tmp_path,
        "eventhub-reloader",
        {"reloader": "eventhub_reloader"},
        {
            "eventhub_reloader.py": """\
            import logging
            import eventhub

            @eventhub.on("eventhub.reload")
            def reloaded(event):
                logging.getLogger("eventhub.reloader").info("reloader: got %s", event.name)
            """
        },
    )
    venv.install(plugin)
    try:
        with EchoServer(venv, "--only", "echo,reloader") as server:
            server.process.send_signal(signal.SIGHUP)
            server.wait_for(r"reloader: got eventhub\.reload")
            with server.connect() as sock:
                assert roundtrip(sock, b"after reload") == b"after reload"
            assert_clean_exit(*server.finish())
    finally:
        venv.uninstall("eventhub-reloader")


def test_a_schedule_in_the_config_file_emits_while_serving(venv: PluginVenv, tmp_path: Path) -> None:
    (tmp_path / "eventhub.toml").write_text(
        '[[eventhub.schedule]]\nevery = "50ms"\nemit = "echo.connection.made"\n'
        'payload = { peer = "schedule", host = "-", port = 0 }\n'
    )
    with EchoServer(venv, "--only", "echo,watcher", "--config", str(tmp_path / "eventhub.toml")) as server:
        server.wait_for(r"watcher: ECHO\.CONNECTION\.MADE schedule - from None")
        assert_clean_exit(*server.finish())
