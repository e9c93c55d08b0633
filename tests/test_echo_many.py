"""Many clients at once: 5,000 on epoll, and select's FD_SETSIZE reached without a crash."""

from __future__ import annotations

import contextlib
import resource
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from echo_support import EchoServer, assert_clean_exit, echo_many, raise_nofile
from support import PluginVenv

# The client's descriptors plus slack; the server raises its own limit (see eventhub_echo).
CLIENT_FDS = 5000 + 200


@pytest.fixture(scope="module")
def venv(echo_venv: PluginVenv) -> PluginVenv:
    limit = raise_nofile(CLIENT_FDS)
    if limit < CLIENT_FDS:
        pytest.skip(f"RLIMIT_NOFILE hard limit is {resource.getrlimit(resource.RLIMIT_NOFILE)[1]}")
    return echo_venv


@contextlib.contextmanager
def soft_nofile(limit: int) -> Iterator[None]:
    """Lower this process's soft descriptor limit (children inherit it), then restore it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(limit, soft), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def open_files_limit(pid: int) -> int:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    raise AssertionError(f"no open files limit for {pid}")


def test_5000_concurrent_connections_on_epoll_lose_nothing(venv: PluginVenv) -> None:
    # Started with the common default soft limit of 1024: the server raises its own.
    with soft_nofile(1024):
        server = EchoServer(venv, "--backend", "epoll", "--set", "echo.backlog=4096")
    with server:
        assert open_files_limit(server.process.pid) >= CLIENT_FDS
        result = echo_many(server.port, 5000, sizes=(1, 3000), chunk_sizes=(1, 1500), seed=5000, timeout=120)
        assert result.served == 5000
        assert_clean_exit(*server.finish())


def test_select_serves_up_to_fd_setsize_and_refuses_the_rest_with_a_log_line(venv: PluginVenv) -> None:
    with EchoServer(venv, "--backend", "select", "--set", "echo.backlog=2048") as server:
        result = echo_many(
            server.port, 1100, sizes=(1, 2000), chunk_sizes=(1, 1000), seed=1100, allow_refused=True
        )
        assert result.served + result.refused == 1100
        # Every descriptor below FD_SETSIZE (1024) that the server is not using itself serves.
        assert 1000 <= result.served < 1024
        assert result.refused > 0
        server.wait_for(r"refused the connection from 127\.0\.0\.1:\d+ .*beyond select\(\)'s FD_SETSIZE")
        # The listener survived: once the server has closed the others, a new round is served
        # in full (it may take the server a moment to see them all close: retry, bounded).
        for attempt in range(50):
            again = echo_many(server.port, 500, sizes=(1, 2000), seed=attempt, allow_refused=True)
            if again.served == 500:
                break
            time.sleep(0.1)
        else:
            pytest.fail(f"only {again.served} of 500 served after the first round closed")
        assert_clean_exit(*server.finish())
