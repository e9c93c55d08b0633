"""Twisted-documentation-style programs and a .tac file, run in subprocesses with real clients.

Each program in ``programs/`` imports from ``eventhub.compat.twisted``. Where Twisted
is installed, the same source with ``eventhub.compat.twisted`` replaced by ``twisted``
runs too, and the real clients must receive the same bytes from both.
"""

from __future__ import annotations

import hashlib
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from eventhub.testing import HANG_TIMEOUT

PROGRAMS = Path(__file__).parent / "programs"


@pytest.fixture(params=["compat", "twisted"])
def flavour(request: pytest.FixtureRequest) -> str:
    if request.param == "twisted":
        pytest.importorskip("twisted.internet.reactor")
    return str(request.param)


class Program:
    """A program in a subprocess: its stdout line by line, SIGTERM, its exit; killed if it hangs."""

    def __init__(self, argv: list[str], cwd: Path | None = None) -> None:
        self.process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd
        )
        self._guard = threading.Timer(HANG_TIMEOUT, self.process.kill)
        self._guard.start()

    @classmethod
    def source(cls, name: str, flavour: str) -> Program:
        code = (PROGRAMS / name).read_text()
        if flavour == "twisted":
            code = code.replace("eventhub.compat.twisted", "twisted")
        return cls([sys.executable, "-c", code])

    def line(self) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line, f"the program ended early:\n{self.finish()[1]}"
        return line.rstrip("\n")

    def port(self) -> int:
        words = self.line().split()
        assert words[0] in ("PORT", "started"), words
        return int(words[-1])

    def terminate(self) -> tuple[str, str]:
        self.process.send_signal(signal.SIGTERM)
        return self.finish()

    def finish(self) -> tuple[str, str]:
        try:
            out, err = self.process.communicate(timeout=HANG_TIMEOUT)
        finally:
            self._guard.cancel()
        return out, err

    def close(self) -> None:
        self._guard.cancel()
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate()


@pytest.fixture
def programs() -> Iterator[list[Program]]:
    started: list[Program] = []
    yield started
    for program in started:
        program.close()


class Client:
    """A blocking socket client reading up to a marker; the socket timeout is the hang guard."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=HANG_TIMEOUT)
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            chunk = self.sock.recv(4096)
            assert chunk, f"closed before {marker!r}; got {self.buffer!r}"
            self.buffer += chunk
        end = self.buffer.index(marker) + len(marker)
        data, self.buffer = self.buffer[:end], self.buffer[end:]
        return data

    def read_to_eof(self) -> bytes:
        while chunk := self.sock.recv(4096):
            self.buffer += chunk
        data, self.buffer = self.buffer, b""
        return data

    def close(self) -> None:
        self.sock.close()


def test_chat_server(flavour: str, programs: list[Program]) -> None:
    program = Program.source("chat_server.py", flavour)
    programs.append(program)
    port = program.port()
    alice, bob = Client(port), Client(port)
    transcript = [alice.read_until(b"\r\n"), bob.read_until(b"\r\n")]
    alice.send(b"alice\r\n")
    transcript.append(alice.read_until(b"\r\n"))
    bob.send(b"alice\r\nbob\r\n")
    transcript += [bob.read_until(b"\r\n"), bob.read_until(b"\r\n")]
    bob.send(b"hi all\r\n")
    transcript.append(alice.read_until(b"\r\n"))
    alice.send(b"hello ")  # a line in two packets
    alice.send(b"bob\r\n")
    transcript.append(bob.read_until(b"\r\n"))
    alice.close()
    bob.close()
    assert transcript == [
        b"What's your name?\r\n",
        b"What's your name?\r\n",
        b"Welcome, alice!\r\n",
        b"Name taken, please choose another.\r\n",
        b"Welcome, bob!\r\n",
        b"<bob> hi all\r\n",
        b"<alice> hello bob\r\n",
    ]
    _, err = program.terminate()
    assert program.process.returncode == 0, err
    assert "Traceback" not in err


def test_finger_server_with_endpoints_and_deferreds(flavour: str, programs: list[Program]) -> None:
    program = Program.source("finger_server.py", flavour)
    programs.append(program)
    port = program.port()
    answers = []
    for user in (b"moshez", b"nobody", b"crash"):
        client = Client(port)
        client.send(user + b"\r\n")
        answers.append(client.read_to_eof())
        client.close()
    assert answers == [b"Happy and well\r\n", b"No such user\r\n", b"Internal error in server\r\n"]
    _, err = program.terminate()
    assert program.process.returncode == 0, err


def test_looping_call_ticker(flavour: str, programs: list[Program]) -> None:
    program = Program.source("ticker.py", flavour)
    programs.append(program)
    out, err = program.finish()
    assert program.process.returncode == 0, err
    assert out.splitlines() == ["tick 1", "tick 2", "tick 3", "stopped after 3 ticks True", "done"]


def test_defer_to_thread_line_server(flavour: str, programs: list[Program]) -> None:
    program = Program.source("thread_hasher.py", flavour)
    programs.append(program)
    client = Client(program.port())
    lines = [b"one", b"two", b"three" * 1000, b""]
    client.send(b"".join(line + b"\n" for line in lines))
    answers = [client.read_until(b"\n") for _ in lines]
    client.close()
    assert answers == [hashlib.sha256(line).hexdigest().encode() + b"\n" for line in lines]
    _, err = program.terminate()
    assert program.process.returncode == 0, err


def test_coroutines_awaiting_deferreds(flavour: str, programs: list[Program]) -> None:
    program = Program.source("async_server.py", flavour)
    programs.append(program)
    client = Client(program.port())
    client.send(b"hello world\r\nsome missing words\r\n")
    answers = [client.read_until(b"\r\n"), client.read_until(b"\r\n")]
    client.close()
    assert answers == [b"HELLO WORLD\r\n", b"not found: missing\r\n"]
    _, err = program.terminate()
    assert program.process.returncode == 0, err
    assert "Unhandled error" not in err  # consumeErrors: the failure was handled


# -- a .tac file ----------------------------------------------------------------------------

TAC = PROGRAMS / "two_services.tac"
TWISTD_SAID = "[stdout#info] "  # twistd logs what the .tac prints as "<time> [stdout#info] <text>"


def _said(lines: list[str], twistd: bool) -> list[str]:
    """What the .tac printed: its own lines, or (twistd) the log lines of its stdout."""
    if twistd:
        return [line.split(TWISTD_SAID, 1)[1] for line in lines if TWISTD_SAID in line]
    return lines


@pytest.mark.parametrize(
    "runner", ["eventhub run --tac", "python -m eventhub.compat.twisted", "twistd -n -y (Twisted)"]
)
def test_tac_with_two_services_stopped_by_sigterm(
    runner: str, programs: list[Program], tmp_path: Path
) -> None:
    twistd = runner.startswith("twistd")
    if twistd:
        pytest.importorskip("twisted.scripts.twistd")
        tac = tmp_path / "two_services.tac"
        tac.write_text(TAC.read_text().replace("eventhub.compat.twisted", "twisted"))
        run_twistd = "from twisted.scripts.twistd import run; run()"
        argv = [sys.executable, "-c", run_twistd, "-n", "--pidfile=", "-y", str(tac)]
    elif runner.startswith("eventhub"):
        argv = [sys.executable, "-m", "eventhub", "run", "--tac", str(TAC)]
    else:
        argv = [sys.executable, "-m", "eventhub.compat.twisted", "-n", "-y", str(TAC)]
    program = Program(argv, cwd=tmp_path)
    programs.append(program)
    started: list[str] = []
    while len(started) < 4:
        started += _said([program.line()], twistd)
    assert started[0].startswith("started echo ")
    assert started[1:] == ["started ticker", "tick 1", "tick 2"]
    out, err = program.terminate()
    # twistd ends by re-raising the signal that stopped it; eventhub exits 0 after a clean stop.
    assert program.process.returncode == (-signal.SIGTERM if twistd else 0), err
    # The reverse of the start order, and the shutdown waited for the echo service's Deferred.
    assert _said(out.splitlines(), twistd) == ["stopping ticker", "stopping echo", "echo stopped"]
    assert "Traceback" not in out + err


def test_tac_echo_service_serves(programs: list[Program]) -> None:
    program = Program([sys.executable, "-m", "eventhub", "run", "--tac", str(TAC)])
    programs.append(program)
    client = Client(program.port())
    client.send(b"through the tac")
    assert client.read_until(b"tac") == b"through the tac"
    client.close()
    program.terminate()
    assert program.process.returncode == 0


def test_tac_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty.tac"
    empty.write_text("x = 1\n")
    out = subprocess.run(
        [sys.executable, "-m", "eventhub", "run", "--tac", str(empty)],
        capture_output=True,
        text=True,
        timeout=HANG_TIMEOUT,
    )
    assert out.returncode == 2 and "defines no 'application'" in out.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "eventhub.compat.twisted", str(tmp_path / "missing.tac")],
        capture_output=True,
        text=True,
        timeout=HANG_TIMEOUT,
    )
    assert missing.returncode == 2 and "no such file" in missing.stderr
