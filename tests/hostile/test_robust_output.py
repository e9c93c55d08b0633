"""Log writes and plugin prints never block the loop, whoever reads (or does not read) the output.

A server's stderr (or stdout) is often a pipe: a supervisor, ``| tee``, a CI
runner. When the reader stalls, a blocking write would stop the whole hub: no
more connections served, and SIGTERM queued behind the write forever. These
tests run ``eventhub run`` with a plugin that logs and prints once per
connection, with both pipes left unread.
"""

from __future__ import annotations

import re
import signal
import subprocess

import pytest
from echo_support import LISTENING, EchoServer
from support import PluginVenv, first_party, write_dist

CONNECTIONS = 2_000
# Each connection logs and prints a line this long: 2 MB on each stream, more than
# a pipe (64 KiB) and the queue in front of it (eventhub._logging.QUEUE_LIMIT) hold.
PADDING = 1_000

CHATTY = """
    import logging

    import eventhub

    log = logging.getLogger("eventhub.chatty")
    seen = 0
    padding = "." * PADDING


    @eventhub.hookimpl
    def eventhub_connection_made(service, peer):
        global seen
        seen += 1
        log.info("connection %d from %s %s", seen, peer, padding)
        print(f"chatty {seen}: {padding}")


    @eventhub.hookimpl
    def eventhub_shutdown():
        print("chatty: goodbye")
"""


@pytest.fixture(scope="module")
def chatty_venv(tmp_path_factory: pytest.TempPathFactory) -> PluginVenv:
    root = tmp_path_factory.mktemp("chatty")
    venv = PluginVenv(root / "venv")
    venv.install(
        first_party("echo"),
        write_dist(
            root / "src",
            "eventhub-chatty",
            {"chatty": "chatty_plugin"},
            {"chatty_plugin.py": CHATTY.replace("PADDING", str(PADDING))},
        ),
    )
    return venv


def _port_from_log(process: subprocess.Popen[str]) -> int:
    """Read stderr up to the echo's 'listening' line, then leave the pipe alone."""
    assert process.stderr is not None
    for line in process.stderr:
        match = re.search(LISTENING, line)
        if match:
            return int(match.group(1))
    raise AssertionError(f"eventhub exited ({process.wait()}) before listening")


def _echo_round_trips(port: int, count: int) -> None:
    import socket

    for n in range(count):
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            payload = f"ping {n}\n".encode()
            sock.sendall(payload)
            received = b""
            while len(received) < len(payload):
                chunk = sock.recv(4096)
                assert chunk, f"connection {n}: closed before the echo"
                received += chunk
            assert received == payload


def _start(venv: PluginVenv) -> tuple[subprocess.Popen[str], int]:
    process = venv.start("run", "-v", "--set", "echo.port=0")
    try:
        return process, _port_from_log(process)
    except BaseException:
        process.kill()
        process.wait()
        raise


def test_unread_stderr_and_stdout_do_not_stop_the_server(chatty_venv: PluginVenv) -> None:
    process, port = _start(chatty_venv)
    try:
        _echo_round_trips(port, CONNECTIONS)  # fails (times out) when a log write blocks the loop
        process.send_signal(signal.SIGTERM)
        # Still nobody reads: the exit must not wait for a reader forever.
        status = process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        assert process.stdout is not None and process.stderr is not None
        process.stdout.close()
        process.stderr.close()
    assert status == 0


def test_a_reader_that_comes_back_gets_the_output_in_order_and_the_count_of_lines_dropped(
    chatty_venv: PluginVenv,
) -> None:
    process, port = _start(chatty_venv)
    try:
        _echo_round_trips(port, CONNECTIONS)
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=60)  # the reader is back
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr, stderr
    dropped = [int(n) for n in re.findall(r"dropped (\d+) lines? of standard error", stderr)]
    assert dropped and sum(dropped) > 0, stderr
    assert re.search(r"dropped \d+ lines? of standard output", stderr), stderr
    # What was written is in order, and the exit flushed the end of it.
    numbers = [int(n) for n in re.findall(r"^chatty (\d+):", stdout, re.MULTILINE)]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
    assert stdout.endswith("chatty: goodbye\n"), stdout[-500:]
    assert "received SIGTERM, shutting down" in stderr
    logged = [int(n) for n in re.findall(r"chatty: INFO: connection (\d+) from", stderr)]
    assert logged == sorted(logged)


def test_output_read_all_along_is_complete(chatty_venv: PluginVenv) -> None:
    """With a reader all along, nothing is dropped and everything is flushed at exit, in order."""
    with EchoServer(chatty_venv, "-v") as server:
        _echo_round_trips(server.port, 300)
        status, stderr = server.finish()
        stdout = server.stdout
    assert status == 0, stderr
    lines = stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == [f"chatty {n}" for n in range(1, 301)] + ["chatty"]
    assert "dropped" not in stderr
