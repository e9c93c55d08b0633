"""``eventhub run --workers N``: worker processes sharing the listening sockets, supervised.

Real ``eventhub run`` subprocesses with the echo plugin and a probe plugin
(a service answering each connection with its worker's pid) pip-installed in
a throwaway environment; real clients on loopback.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import PluginVenv, Served, first_party, write_dist

PROBE = """\
import os

import eventhub
from eventhub.protocol import Protocol, ServerFactory


class Pid(Protocol):
    def connection_made(self, transport):
        super().connection_made(transport)
        transport.write(str(os.getpid()).encode())
        transport.lose_connection()


class Probe:
    def eventhub_configure(self, settings):
        self.crash = settings.get("crash", False)

    def eventhub_start_services(self, reactor):
        if self.crash and os.environ.get("EVENTHUB_WORKER"):
            os._exit(3)  # a plugin that kills its worker at every start
        factory = ServerFactory()
        factory.protocol = Pid
        listener = reactor.listen_tcp(0, factory)
        import logging
        logging.getLogger("eventhub.probe").info("probe on port %d", listener.get_host().port)
        return listener
"""

WORKER_LINE = re.compile(r"\[worker (\d+) pid (\d+)\] eventhub\.probe: INFO: probe on port (\d+)")


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> PluginVenv:
    root = tmp_path_factory.mktemp("workers")
    probe = write_dist(
        root / "src", "eventhub-probe", {"probe": "eventhub_probe:Probe"}, {"eventhub_probe.py": PROBE}
    )
    environment = PluginVenv(root / "venv")
    environment.install(first_party("echo"), probe)
    return environment


class Workers(Served):
    """``eventhub run --workers N`` with echo on a free port; waits until every worker serves."""

    def __init__(self, venv: PluginVenv, count: int, *args: str) -> None:
        super().__init__(venv, "run", "--workers", str(count), "--set", "echo.port=0", *args)
        self.count = count

    def serving(self, generation_pids: set[int] | None = None) -> tuple[int, int, set[int]]:
        """(echo port, probe port, pids) once ``count`` workers (not in ``generation_pids``) listen."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            found = {int(m.group(2)): int(m.group(3)) for m in WORKER_LINE.finditer(self.stderr)}
            pids = {pid for pid in found if pid not in (generation_pids or set()) and _alive(pid)}
            if len(pids) >= self.count:
                echo = re.findall(r"eventhub\.echo: INFO: listening on 127\.0\.0\.1:(\d+)", self.stderr)
                return int(echo[-1]), found[next(iter(pids))], pids
            time.sleep(0.05)
        raise AssertionError(f"the workers did not all start; stderr:\n{self.stderr}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def pid_of_a_connection(port: int) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        data = b""
        while chunk := sock.recv(64):
            data += chunk
    return int(data)


def echo(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received


@pytest.fixture
def workers(venv: PluginVenv) -> Iterator[Workers]:
    with Workers(venv, 2) as running:
        yield running


def test_two_workers_answer_on_one_port(workers: Workers) -> None:
    echo_port, probe_port, pids = workers.serving()
    seen = {pid_of_a_connection(probe_port) for _ in range(60)}
    assert seen == pids  # the kernel spread the connections over both workers
    assert echo(echo_port, b"hello") == b"hello"
    assert "[supervisor pid" in workers.stderr and "starting 2 workers" in workers.stderr
    status, stderr = workers.finish(signal.SIGTERM)
    assert status == 0, stderr
    assert not any(_alive(pid) for pid in pids)


def test_a_killed_worker_is_replaced_and_the_others_keep_serving(workers: Workers) -> None:
    echo_port, _, pids = workers.serving()
    victim = min(pids)
    os.kill(victim, signal.SIGKILL)
    workers.wait_for(rf"worker \d \(pid {victim}\) was killed by SIGKILL; restarting it")
    _, _, now = workers.serving(generation_pids={victim})
    assert victim not in now and len(now) == 2
    assert echo(echo_port, b"still here") == b"still here"
    assert workers.finish()[0] == 0


def test_a_crash_looping_plugin_ends_the_supervisor_with_a_failure(venv: PluginVenv) -> None:
    with Workers(venv, 2, "--set", "probe.crash=true") as crashing:
        status, stderr = crashing.wait(60)
    assert status == 1, stderr
    assert "exited with status 3; restarting it" in stderr
    assert "times in a row within 10s of starting: giving up" in stderr


def test_a_bad_setting_fails_once_before_any_worker_starts(venv: PluginVenv) -> None:
    result = venv.eventhub("run", "--workers", "2", "--set", "echo.port=70000")
    assert result.returncode == 2
    assert result.stderr.count("echo.port: must be between 0 and 65535") == 1
    assert "worker" not in result.stderr


def test_workers_auto_means_one_per_usable_core(venv: PluginVenv) -> None:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    with Served(venv, "run", "--workers", "auto", "--set", "echo.port=0") as served:
        served.wait_for(rf"starting {cores} workers")
        assert served.finish()[0] == 0


def test_sighup_restarts_the_workers_without_refusing_or_losing_a_connection(workers: Workers) -> None:
    echo_port, _, old = workers.serving()
    errors: list[BaseException] = []
    answered = 0
    stop = threading.Event()

    def client_loop() -> None:
        nonlocal answered
        n = 0
        while not stop.is_set():
            payload = b"round %d " % n * 50
            try:
                assert echo(echo_port, payload) == payload
                answered += 1
            except BaseException as error:  # a refusal, a reset or a short echo: all failures
                errors.append(error)
                return
            n += 1

    thread = threading.Thread(target=client_loop)
    thread.start()
    try:
        time.sleep(0.2)  # some traffic before the restart
        workers.process.send_signal(signal.SIGHUP)
        workers.wait_for(r"new workers ready: stopping the old ones")
        _, _, new = workers.serving(generation_pids=old)
        deadline = time.monotonic() + 30
        while any(_alive(pid) for pid in old) and time.monotonic() < deadline:
            time.sleep(0.05)
        before = answered
        while answered < before + 20 and not errors and time.monotonic() < deadline:
            time.sleep(0.01)  # traffic after the old workers are gone too
    finally:
        stop.set()
        thread.join(30)
    assert not errors, errors
    assert answered > 20 and not (old & new) and not any(_alive(pid) for pid in old)
    assert workers.finish()[0] == 0


def test_workers_run_a_plugin_given_with_p(venv: PluginVenv, tmp_path: Path) -> None:
    (tmp_path / "pidprobe_w.py").write_text(PROBE)
    with Served(
        venv, "run", "--workers", "2", "-p", "pidprobe_w:Probe", "--only", "probe", cwd=tmp_path
    ) as served:
        lines = [served.wait_for(r"\[worker 0 pid \d+\] eventhub\.probe: INFO: probe on port (\d+)")]
        lines.append(served.wait_for(r"\[worker 1 pid \d+\] eventhub\.probe: INFO: probe on port (\d+)"))
        assert lines[0].group(1) == lines[1].group(1)  # one port, shared
        assert served.finish()[0] == 0


def test_workers_share_udp_and_unix_endpoints_too(venv: PluginVenv, tmp_path: Path) -> None:
    path = tmp_path / "echo.sock"
    listen = f'echo.listen=["tcp:0","udp:0","unix:{path}"]'
    with Served(venv, "run", "--workers", "2", "--only", "echo", "--set", listen) as served:
        for worker in (0, 1):
            served.wait_for(rf"\[worker {worker} pid \d+\] eventhub\.echo: INFO: listening on unix ")
        udp_port = int(served.wait_for(r"listening on udp 127\.0\.0\.1:(\d+)").group(1))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.settimeout(10)
            for n in range(5):
                udp.sendto(b"datagram %d" % n, ("127.0.0.1", udp_port))
                assert udp.recvfrom(100)[0] == b"datagram %d" % n
        for _ in range(5):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as unix:
                unix.settimeout(10)
                unix.connect(str(path))
                unix.sendall(b"over unix")
                assert unix.recv(100) == b"over unix"
        status, stderr = served.finish()
        assert status == 0, stderr
    assert not path.exists()  # the supervisor made the file, and removed it
