"""Start-up scenario: from spawning a server to its first accepted, echoed connection.

The clock starts before the process is spawned and stops when one byte string
has come back through a connection to the port the server printed.
"""

from __future__ import annotations

import socket
import time
from typing import Any

from benchmarks._config import Config
from benchmarks._proc import REPO_ROOT, Server, ServerStartError, child_env, console_script, pin_cpus
from benchmarks._progress import Progress
from benchmarks._servers import ServerSpec
from benchmarks._stats import summarize

# The floor: a Python process that listens, says where, accepts one client and echoes once.
BARE_SERVER = (
    "import socket;s=socket.create_server(('127.0.0.1',0));print(s.getsockname()[1],flush=True);"
    "c,_=s.accept();c.sendall(c.recv(64))"
)
PROBE = b"eventhub-startup-probe"


class Subject:
    """Something to start: a label, its argv and environment, or why it cannot run."""

    def __init__(self, label: str, argv: list[str], env: dict[str, str], missing: str | None = None):
        self.label, self.argv, self.env, self.missing = label, argv, env, missing


def subjects(servers: list[ServerSpec]) -> list[Subject]:
    by_name = {s.name: s for s in servers}
    out = []
    eh = by_name.get("eventhub-epoll")
    if eh is not None:
        missing = eh.missing or (None if eh.via == "eventhub run" else "the echo plugin is not available")
        out.append(Subject("eventhub run (echo plugin)", eh.argv(False), eh.env(), missing))
    python = console_script("python")
    out.append(Subject("bare python -c server", [python, "-c", BARE_SERVER], child_env()))
    for name, label in (
        ("asyncio", "asyncio script"),
        ("uvloop", "uvloop script"),
        ("twisted-epoll", "Twisted script (epoll)"),
    ):
        spec = by_name.get(name)
        if spec is not None:
            out.append(Subject(label, spec.argv(False), spec.env(), spec.missing))
    twisted = by_name.get("twisted-epoll")
    if twisted is not None:
        tac = str(REPO_ROOT / "benchmarks" / "servers" / "echo.tac")
        argv = [console_script("twistd"), "-n", "--pidfile=", "-y", tac]
        out.append(Subject("twistd -y echo.tac", argv, child_env(), twisted.missing))
    return out


def first_echo(server: Server) -> float:
    """Wait for the port, connect, echo one probe; return seconds since the spawn."""
    port = server.wait_for_port()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(PROBE)
        got = b""
        while len(got) < len(PROBE):
            chunk = sock.recv(64)
            if not chunk:
                raise ServerStartError("closed before echoing the probe")
            got += chunk
    if got != PROBE:
        raise ServerStartError(f"echoed {got!r}, not the probe")
    return time.perf_counter() - server.started


def run(cfg: Config, servers: list[ServerSpec], progress: Progress) -> dict[str, Any]:
    cpu, _ = pin_cpus()
    todo = subjects(servers)
    runnable = [s for s in todo if s.missing is None]
    progress.begin("startup", cfg.startup_runs * len(runnable))
    samples: dict[str, list[float]] = {s.label: [] for s in todo}
    errors: dict[str, str] = {s.label: s.missing for s in todo if s.missing}
    for rep in range(cfg.startup_runs):
        shift = rep % max(1, len(runnable))
        for subject in runnable[shift:] + runnable[:shift]:
            outcome = _once(subject, cpu)
            if isinstance(outcome, str):
                errors[subject.label] = outcome
                progress.step(subject.label, "ERROR " + outcome[:120])
            else:
                samples[subject.label].append(outcome * 1000)
                progress.step(subject.label, f"{outcome * 1000:.0f} ms")
    rows = [
        {"subject": s.label, "summary": summarize(samples[s.label]), "error": errors.get(s.label)}
        for s in todo
    ]
    return {"unit": "ms", "rows": rows}


def _once(subject: Subject, cpu: int | None) -> float | str:
    try:
        with Server(subject.argv, cpu=cpu, env=subject.env) as server:
            return first_echo(server)
    except (OSError, ServerStartError) as exc:
        return str(exc)
