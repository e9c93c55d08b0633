"""``eventhub run`` with the echo plugin pip-installed: serving, settings, limits, signals.

One environment for the whole module (pip installs are the slow part); each
test starts its own server on a free port (``echo.port=0``, read from the log).
"""

from __future__ import annotations

import asyncio
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from echo_support import (
    HOST,
    EchoServer,
    assert_clean_exit,
    echo_many,
    is_closed_by_peer,
    read_until_closed,
)
from support import PluginVenv


@pytest.fixture(scope="module")
def venv(echo_venv: PluginVenv) -> PluginVenv:
    return echo_venv


@pytest.fixture
def server(venv: PluginVenv) -> Iterator[EchoServer]:
    with EchoServer(venv) as running:
        yield running


def roundtrip(sock: socket.socket, data: bytes) -> bytes:
    sock.sendall(data)
    received = bytearray()
    while len(received) < len(data):
        chunk = sock.recv(65536)
        assert chunk, f"closed after {len(received)} of {len(data)} bytes"
        received += chunk
    return bytes(received)


# -- serving ---------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["select", "poll", "epoll", "asyncio", "uvloop"])
def test_random_binary_data_in_random_chunks_across_hundreds_of_connections(
    venv: PluginVenv, backend: str
) -> None:
    with EchoServer(venv, "--backend", backend) as server:
        assert server.backend == backend
        # select is capped at FD_SETSIZE: 300 connections fit every backend.
        result = echo_many(server.port, 300, sizes=(1, 40000), chunk_sizes=(1, 9000), seed=len(backend))
        assert result.served == 300
        assert_clean_exit(*server.finish())


def test_backend_from_the_config_file(venv: PluginVenv, tmp_path: Path) -> None:
    config = tmp_path / "eventhub.toml"
    config.write_text('[eventhub]\nbackend = "poll"\n\n[plugins.echo]\nport = 0\n')
    with EchoServer(venv, "--config", str(config)) as server:
        assert server.backend == "poll"
        with server.connect() as sock:
            assert roundtrip(sock, b"from the config file") == b"from the config file"
        assert_clean_exit(*server.finish())


def test_an_unknown_backend_is_a_usage_error(venv: PluginVenv) -> None:
    result = venv.eventhub("run", "--set", "echo.port=0", "--backend", "kqueue-please")
    assert result.returncode == 2, result.stderr
    assert "kqueue-please" in result.stderr
    assert "Traceback" not in result.stderr


# The seed's client, ported to Python 3: the same file the Twisted compatibility tests run.
SEED_CLIENT = Path(__file__).parent / "compat" / "seed" / "echo_client.py"


def test_the_seeds_client_ported_to_python3(server: EchoServer) -> None:
    lines = "hello\n执行了自定义execute方法\nbye\n"
    result = subprocess.run(
        [sys.executable, str(SEED_CLIENT), str(server.port)],
        input=lines,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("please input:") == ["", "hello\n", "执行了自定义execute方法\n", "bye\n", ""]


def test_an_asyncio_client(server: EchoServer) -> None:
    async def one(index: int) -> bool:
        reader, writer = await asyncio.open_connection(HOST, server.port)
        message = random.Random(index).randbytes(1000 + index * 100)
        writer.write(message)
        await writer.drain()
        echoed = await reader.readexactly(len(message))
        writer.write_eof()
        assert await reader.read() == b""  # the server closes after our EOF, having echoed all
        writer.close()
        await writer.wait_closed()
        return echoed == message

    async def main() -> list[bool]:
        return await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(50))), 30)

    assert all(asyncio.run(main()))


def test_half_close_gets_the_whole_echo_then_eof(server: EchoServer) -> None:
    data = random.Random(7).randbytes(3_000_000)
    with server.connect() as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        echoed, error = read_until_closed(sock, timeout=30)
    assert error is None
    assert echoed == data


# -- settings --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "words"),
    [
        ("echo.port=abc", "must be an integer"),
        ("echo.port=70000", "between 0 and 65535"),
        ("echo.port=-1", "between 0 and 65535"),
        ("echo.idle_timeout=-1", ">= 0"),
        ("echo.idle_timeout=nan", ">= 0"),
        ("echo.idle_timeout=1e-9", "must be 0 (off) or a number of seconds >= 0.1, not 1e-09"),
        ("echo.max_connections=-5", ">= 0"),
        ("echo.backlog=0", "between 1 and 65535"),
        ("echo.write_buffer_low=100000", "must not exceed write_buffer_high"),
        ("echo.backlog=lots", "must be an integer"),
        # Empty is not "every interface": that is asked for by name.
        ("echo.host=", 'must not be empty; "0.0.0.0" or "::" listen on every interface'),
    ],
)
def test_a_bad_setting_exits_2_naming_the_key(venv: PluginVenv, setting: str, words: str) -> None:
    result = venv.eventhub("run", "--set", setting)
    key = setting.partition("=")[0]
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"eventhub: error: {key}: "), result.stderr
    assert words in last


def test_a_bad_value_in_the_config_file_names_the_key(venv: PluginVenv, tmp_path: Path) -> None:
    (tmp_path / "eventhub.toml").write_text('[plugins.echo]\nport = "8000"\n')
    result = venv.eventhub("run", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "echo.port: must be an integer, not a string '8000'" in result.stderr


def test_an_unknown_key_is_a_warning_not_an_error(venv: PluginVenv) -> None:
    with EchoServer(venv, "--set", "echo.prot=9000") as server:
        server.wait_for(r"--set: unknown key 'prot' in \[plugins\.echo\]")
        assert_clean_exit(*server.finish())


def test_a_port_in_use_is_one_line_and_exit_1(venv: PluginVenv) -> None:
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = venv.eventhub("run", "--set", f"echo.port={port}")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert errors == [f"eventhub: error: cannot listen on 127.0.0.1:{port}: address already in use"]


# -- limits ----------------------------------------------------------------------


def test_idle_connections_are_closed_and_active_ones_are_not(venv: PluginVenv) -> None:
    timeout = 0.6
    with EchoServer(venv, "--set", f"echo.idle_timeout={timeout}") as server:
        idle = server.connect()
        active = server.connect()
        assert roundtrip(idle, b"once") == b"once"
        started = time.monotonic()
        # The active one talks every 0.1 s for about three idle timeouts.
        while time.monotonic() - started < 3 * timeout:
            assert roundtrip(active, b"ping") == b"ping"
            time.sleep(0.1)
        assert is_closed_by_peer(idle)
        closed_after = time.monotonic() - started
        assert closed_after >= timeout  # never before the timeout
        assert roundtrip(active, b"still here") == b"still here"
        active.close()
        idle.close()
        assert_clean_exit(*server.finish())


def test_max_connections_closes_the_excess_and_serves_the_rest(venv: PluginVenv) -> None:
    with EchoServer(venv, "--set", "echo.max_connections=3") as server:
        first = [server.connect() for _ in range(3)]
        for index, sock in enumerate(first):
            assert roundtrip(sock, b"in %d" % index) == b"in %d" % index
        with server.connect() as extra:
            assert is_closed_by_peer(extra)
        server.wait_for(r"max_connections \(3\) reached")
        for sock in first:
            assert roundtrip(sock, b"still served") == b"still served"
        first.pop().close()
        # The slot frees when the server has seen the close: retry, bounded.
        for _ in range(100):
            with server.connect() as again:
                try:
                    again.sendall(b"x")
                    if again.recv(1) == b"x":
                        break
                except ConnectionResetError:  # still full: closed with our byte unread
                    pass
            time.sleep(0.05)
        else:
            pytest.fail("no connection was served again after one closed")
        for sock in first:
            sock.close()
        assert_clean_exit(*server.finish())


# -- backpressure ----------------------------------------------------------------

TOTAL = 200 * 1024 * 1024
BLOCK = 1024 * 1024


def _block(index: int, pattern: bytes) -> bytes:
    return index.to_bytes(8, "big") + pattern[8:]


def test_a_client_that_does_not_read_cannot_grow_the_servers_memory(venv: PluginVenv) -> None:
    """200 MB sent without reading: the server stops reading, RSS stays put, nothing is lost."""
    import hashlib
    import threading

    pattern = random.Random(1).randbytes(BLOCK)
    with EchoServer(venv, "--set", "echo.write_buffer_high=65536") as server:
        with server.connect(timeout=60) as warm:  # let the server reach its steady size
            assert roundtrip(warm, pattern) == pattern
        baseline = server.status("VmRSS")
        sock = server.connect(timeout=60)
        sent = [0]
        sent_digest = hashlib.sha256()

        def send_all() -> None:
            for index in range(TOTAL // BLOCK):
                block = _block(index, pattern)
                sent_digest.update(block)
                view = memoryview(block)
                while view:
                    n = sock.send(view)
                    sent[0] += n
                    view = view[n:]

        sender = threading.Thread(target=send_all, daemon=True)
        sender.start()
        # Wait until sending stalls: the server stopped reading and every buffer is full.
        last, still = -1, 0
        deadline = time.monotonic() + 60
        while still < 5 and time.monotonic() < deadline:
            time.sleep(0.1)
            still = still + 1 if sent[0] == last else 0
            last = sent[0]
        stalled_at = sent[0]
        stalled_rss = server.status("VmRSS")
        assert stalled_at < TOTAL // 2, "the server kept reading from a client that does not read"

        received = 0
        received_digest = hashlib.sha256()
        while received < TOTAL:
            chunk = sock.recv(1 << 20)
            assert chunk, f"closed after {received} bytes"
            received_digest.update(chunk)
            received += len(chunk)
        sender.join(30)
        sock.close()
        peak = server.status("VmHWM")
        assert received == TOTAL
        assert received_digest.hexdigest() == sent_digest.hexdigest()
        growth_mib = (peak - baseline) / 1024
        print(
            f"\nbackpressure: stalled after {stalled_at / 2**20:.1f} MiB sent; server VmRSS "
            f"{baseline / 1024:.1f} MiB before, {stalled_rss / 1024:.1f} MiB stalled, "
            f"VmHWM {peak / 1024:.1f} MiB (+{growth_mib:.1f} MiB for {TOTAL / 2**20:.0f} MiB echoed)"
        )
        # Bounded by the write buffer (64 KiB) plus a read (256 KiB), plus allocator slack:
        # nowhere near the data sent.
        assert growth_mib < 16, f"server memory grew by {growth_mib:.1f} MiB"
        assert_clean_exit(*server.finish())


# -- stopping --------------------------------------------------------------------


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGINT"])
def test_a_signal_stops_the_server_and_flushes_what_it_owes(venv: PluginVenv, signame: str) -> None:
    data = random.Random(3).randbytes(48 * 1024)  # within TCP's first window: read in one go
    with EchoServer(venv) as server:
        owed = server.connect()
        owed.sendall(data)  # and do not read the echo yet
        with server.connect() as probe:  # once this is echoed, the server has read `owed` too
            assert roundtrip(probe, b"probe") == b"probe"
        server.process.send_signal(getattr(signal, signame))
        echoed, error = read_until_closed(owed, timeout=30)
        owed.close()
        status, stderr = server.wait()
    assert_clean_exit(status, stderr)
    assert f"received {signame}, shutting down" in stderr
    assert error is None
    assert echoed == data


def test_a_signal_mid_stream_delivers_every_byte_the_server_read(venv: PluginVenv) -> None:
    """The server holds echoed bytes and has unread input: it must not reset the tail away."""
    data = random.Random(4).randbytes(64 * 1024 * 1024)
    with EchoServer(venv) as server:
        sock = server.connect(timeout=30)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
        sock.setblocking(False)
        sent, deadline = 0, time.monotonic() + 1
        while sent < len(data) and time.monotonic() < deadline:  # until the server stops reading
            try:
                sent += sock.send(data[sent : sent + 65536])
            except BlockingIOError:
                time.sleep(0.01)
        sock.setblocking(True)
        server.process.send_signal(signal.SIGTERM)
        echoed, error = read_until_closed(sock, timeout=30)
        sock.close()
        status, stderr = server.wait()
    assert_clean_exit(status, stderr)
    assert echoed == data[: len(echoed)]
    assert error is None, f"the connection was reset after {len(echoed)} of {sent} bytes sent"


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGINT"])
def test_a_signal_right_after_the_listening_line_is_graceful(venv: PluginVenv, signame: str) -> None:
    """A supervisor may signal as soon as the service announces itself, before the loop runs."""
    for _ in range(3):
        with EchoServer(venv) as server:
            status, stderr = server.finish(getattr(signal, signame))
        assert_clean_exit(status, stderr)
