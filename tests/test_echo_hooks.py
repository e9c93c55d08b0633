"""Network hooks end to end: plugins installed beside echo see, refuse and survive its connections."""

from __future__ import annotations

import random
import socket
from collections.abc import Iterator

import pytest
from echo_support import EchoServer, assert_clean_exit, is_closed_by_peer
from support import PluginVenv, first_party, write_dist

GATE = """
    import eventhub

    class Gate:
        '''Refuses every second connection.'''

        def __init__(self):
            self.seen = 0

        @eventhub.hookimpl
        def eventhub_connection_accept(self, service):
            self.seen += 1
            return None if self.seen % 2 else False
"""

BROKEN_GATE = """
    import eventhub

    @eventhub.hookimpl
    def eventhub_connection_accept(peer):
        raise OSError("the deny list is unreadable")
"""

TAP = """
    import logging
    import eventhub

    log = logging.getLogger("eventhub.tap")

    class Tap:
        '''Counts each connection's bytes; its made and data hooks also fail, every time.'''

        def __init__(self):
            self.bytes = {}

        @eventhub.hookimpl
        def eventhub_connection_made(self, peer):
            self.bytes[peer] = 0
            raise RuntimeError("tap made broke")

        @eventhub.hookimpl
        def eventhub_connection_data(self, peer, data):
            self.bytes[peer] += len(data)
            raise RuntimeError("tap data broke")

        @eventhub.hookimpl
        def eventhub_connection_lost(self, service, peer, reason):
            log.info("%s %s sent %d bytes, reason %r", service, peer, self.bytes.pop(peer), reason)
"""


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PluginVenv]:
    src = tmp_path_factory.mktemp("hook-dists")
    env = PluginVenv(tmp_path_factory.mktemp("echo-hooks") / "venv")
    env.install(
        first_party("echo"),
        first_party("connlog"),
        write_dist(src, "eventhub-gate", {"gate": "gate_plugin:Gate"}, {"gate_plugin.py": GATE}),
        write_dist(src, "eventhub-brokengate", {"brokengate": "brokengate"}, {"brokengate.py": BROKEN_GATE}),
        write_dist(src, "eventhub-tap", {"tap": "tap_plugin:Tap"}, {"tap_plugin.py": TAP}),
    )
    yield env


def echoes(sock: socket.socket, data: bytes) -> bool:
    sock.sendall(data)
    received = bytearray()
    while len(received) < len(data):
        chunk = sock.recv(65536)
        if not chunk:
            return False
        received += chunk
    return received == data


def test_connlog_logs_each_connection(venv: PluginVenv) -> None:
    with EchoServer(venv, "--only", "echo,connlog", "--set", 'connlog.allow=["127.0.0.0/8"]') as server:
        with server.connect() as sock:
            assert echoes(sock, b"logged")
            local = sock.getsockname()[1]
        server.wait_for(rf"eventhub\.connlog: INFO: echo: connection from 127\.0\.0\.1:{local}$")
        server.wait_for(rf"echo: connection from 127\.0\.0\.1:{local} closed after \d+\.\d+s$")
        assert_clean_exit(*server.finish())


def test_connlog_refuses_a_denied_address(venv: PluginVenv) -> None:
    with EchoServer(venv, "--only", "echo,connlog", "--set", 'connlog.deny=["127.0.0.1"]') as server:
        with server.connect() as sock:
            local = sock.getsockname()[1]
            sock.sendall(b"let me in")
            assert is_closed_by_peer(sock)
        server.wait_for(rf"echo: refused 127\.0\.0\.1:{local}: denied by 127\.0\.0\.1/32")
        assert_clean_exit(*server.finish())


def test_connlog_refuses_what_is_not_allowed(venv: PluginVenv) -> None:
    with EchoServer(venv, "--only", "echo,connlog", "--set", 'connlog.allow=["10.0.0.0/8", "::1"]') as server:
        with server.connect() as sock:
            assert is_closed_by_peer(sock)
        server.wait_for(r"echo: refused 127\.0\.0\.1:\d+: not in the allow list")
        assert_clean_exit(*server.finish())


def test_connlog_watches_only_the_services_it_is_told(venv: PluginVenv) -> None:
    args = ("--set", 'connlog.deny=["127.0.0.1"]', "--set", 'connlog.services=["chat"]')
    with EchoServer(venv, "--only", "echo,connlog", *args) as server:
        with server.connect() as sock:
            assert echoes(sock, b"not watched")
        assert_clean_exit(*server.finish())


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        (
            'connlog.deny=["127.0.0.1", "localhost"]',
            "connlog.deny[1]: not an IP address or network: 'localhost'",
        ),
        ("connlog.allow=127.0.0.1", "connlog.allow: must be a list, not a string"),
    ],
)
def test_connlog_bad_settings_exit_2(venv: PluginVenv, setting: str, message: str) -> None:
    result = venv.eventhub("run", "--only", "echo,connlog", "--set", "echo.port=0", "--set", setting)
    assert result.returncode == 2, result.stderr
    assert f"eventhub: error: {message}" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_refused_client_is_closed_and_the_others_are_served(venv: PluginVenv) -> None:
    with EchoServer(venv, "--only", "echo,gate") as server:
        kept = []
        for index in range(6):
            sock = server.connect()
            if index % 2:  # the gate refuses every second connection
                assert is_closed_by_peer(sock)
                sock.close()
            else:
                assert echoes(sock, b"served %d" % index)
                kept.append(sock)
        for sock in kept:  # still served after the refusals
            assert echoes(sock, b"again")
            sock.close()
        assert_clean_exit(*server.finish())


def test_an_accept_hook_that_fails_refuses_and_says_which_plugin(venv: PluginVenv) -> None:
    with EchoServer(venv, "--only", "echo,brokengate") as server:
        with server.connect() as sock:
            assert is_closed_by_peer(sock)
        server.wait_for(r"plugin 'brokengate' failed in eventhub_connection_accept .*OSError")
        server.wait_for(r"echo: refused the connection from 127\.0\.0\.1:\d+: plugin 'brokengate' failed")
        status, stderr = server.finish()
    assert status == 0, stderr


def test_failing_observers_do_not_disturb_the_echo(venv: PluginVenv) -> None:
    data = random.Random(9).randbytes(300_000)
    with EchoServer(venv, "--only", "echo,tap") as server:
        for _ in range(3):
            with server.connect() as sock:
                assert echoes(sock, data)
                local = sock.getsockname()[1]
            server.wait_for(rf"eventhub\.tap: INFO: echo 127\.0\.0\.1:{local} sent 300000 bytes, reason None")
        status, stderr = server.finish()
    assert status == 0, stderr
    # Each failing hook: one ERROR with its traceback, then DEBUG (not shown at the default level).
    assert stderr.count("plugin 'tap' failed in eventhub_connection_made") == 1
    assert stderr.count("plugin 'tap' failed in eventhub_connection_data") == 1
    assert stderr.count("RuntimeError: tap data broke") == 2  # the message and its traceback
