"""Start-up scenario: from spawning a server to its first accepted, echoed connection.

The clock starts before the process is spawned and stops when one byte string
has come back through a connection to the port the server printed. Beside the
wall time, the CPU time the server's threads had used by then (from
``/proc/PID/task/*/schedstat``, in nanoseconds): on a shared machine the wall
time includes waiting for a core, the CPU time does not.

Each subject starts once unmeasured first (page cache, eventhub's plugin cache,
Twisted's plugin cache), and eventhub's modules are byte-compiled first, as
``pip install`` does: with ``PYTHONDONTWRITEBYTECODE`` set, a source checkout
would compile every module on every start, which no installed copy does.

Then ``eventhub run`` starts again with ``-X importtime`` (``PYTHONPROFILEIMPORTTIME``):
what each module of its import chain costs, up to the first echo.
"""

from __future__ import annotations

import compileall
import re
import socket
import statistics
import time
from pathlib import Path
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
EVENTHUB = "eventhub run (echo plugin)"
TWISTD = "twistd -y echo.tac"
IMPORTS_SHOWN = 12
# "import time: self [us] | cumulative | <indent>package" (the header line has no digits)
_IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", re.MULTILINE)


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
        out.append(Subject(EVENTHUB, eh.argv(False), eh.env(), missing))
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
        out.append(Subject(TWISTD, argv, child_env(), twisted.missing))
    return out


def first_echo(server: Server) -> tuple[float, float]:
    """Wait for the port, connect, echo one probe; return (seconds since the spawn, CPU seconds used)."""
    port = server.wait_for_port()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(PROBE)
        got = b""
        while len(got) < len(PROBE):
            chunk = sock.recv(64)
            if not chunk:
                raise ServerStartError("closed before echoing the probe")
            got += chunk
    wall = time.perf_counter() - server.started
    if got != PROBE:
        raise ServerStartError(f"echoed {got!r}, not the probe")
    return wall, cpu_seconds(server.pid)


def cpu_seconds(pid: int) -> float:
    """CPU time of every live thread of ``pid``, from schedstat (ns; /proc/PID/stat counts 10 ms ticks)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, IndexError, ValueError):  # a thread that ended meanwhile
            continue
    return total / 1e9


def byte_compile() -> None:
    """Write eventhub's ``.pyc`` files, as ``pip install`` does, whatever PYTHONDONTWRITEBYTECODE says."""
    compileall.compile_dir(str(REPO_ROOT / "eventhub"), quiet=1)


def run(cfg: Config, servers: list[ServerSpec], progress: Progress) -> dict[str, Any]:
    cpu, _ = pin_cpus()
    byte_compile()
    todo = subjects(servers)
    runnable = [s for s in todo if s.missing is None]
    progress.begin("startup", (cfg.startup_runs + 1) * len(runnable))
    wall: dict[str, list[float]] = {s.label: [] for s in todo}
    used: dict[str, list[float]] = {s.label: [] for s in todo}
    errors: dict[str, str] = {s.label: s.missing for s in todo if s.missing}
    for subject in runnable:  # warm-up, not counted
        outcome = _once(subject, cpu)
        progress.step(subject.label, "warm-up " + (outcome if isinstance(outcome, str) else "ok")[:120])
    for rep in range(cfg.startup_runs):
        shift = rep % max(1, len(runnable))
        for subject in runnable[shift:] + runnable[:shift]:
            outcome = _once(subject, cpu)
            if isinstance(outcome, str):
                errors[subject.label] = outcome
                progress.step(subject.label, "ERROR " + outcome[:120])
            else:
                wall[subject.label].append(outcome[0] * 1000)
                used[subject.label].append(outcome[1] * 1000)
                progress.step(subject.label, f"{outcome[0] * 1000:.0f} ms, CPU {outcome[1] * 1000:.0f} ms")
    rows = [
        {
            "subject": s.label,
            "summary": summarize(wall[s.label]),
            "cpu": summarize(used[s.label]),
            "error": errors.get(s.label),
        }
        for s in todo
    ]
    eventhub = next((s for s in runnable if s.label == EVENTHUB), None)
    imports = import_times(eventhub, cfg.startup_runs, cpu, progress) if eventhub else None
    return {"unit": "ms", "rows": rows, "imports": imports}


def _once(subject: Subject, cpu: int | None) -> tuple[float, float] | str:
    try:
        with Server(subject.argv, cpu=cpu, env=subject.env) as server:
            return first_echo(server)
    except (OSError, ServerStartError) as exc:
        return str(exc)


def import_times(subject: Subject, runs: int, cpu: int | None, progress: Progress) -> dict[str, Any]:
    """``-X importtime`` of ``eventhub run`` up to its first echo: the modules costing most, medians.

    ``cumulative`` includes what a module imported; ``self`` is its own code.
    The profiler's own overhead inflates both, so compare modules with each
    other, not with the wall times above.
    """
    env = {**subject.env, "PYTHONPROFILEIMPORTTIME": "1"}
    per_module: dict[str, list[tuple[int, int, int]]] = {}
    totals: list[int] = []
    for _ in range(runs):
        try:
            with Server(subject.argv, cpu=cpu, env=env) as server:
                first_echo(server)
                text = server.stderr_path.read_text(errors="replace")
        except (OSError, ServerStartError) as exc:
            return {"error": str(exc)}
        lines = _IMPORT_LINE.findall(text)
        totals.append(sum(int(own) for own, _, _, _ in lines))
        for own, cumulative, indent, name in lines:
            per_module.setdefault(name, []).append((int(own), int(cumulative), len(indent) // 2))
    progress.note(f"startup: -X importtime of eventhub run, {runs} runs: {len(per_module)} modules")
    rows = [
        {
            "module": name,
            "depth": min(t[2] for t in times),
            "self_us": statistics.median(t[0] for t in times),
            "cumulative_us": statistics.median(t[1] for t in times),
        }
        for name, times in per_module.items()
    ]
    rows.sort(key=lambda r: -r["cumulative_us"])
    return {
        "runs": runs,
        "modules": len(per_module),
        "total_self_us": statistics.median(totals) if totals else None,
        "top": rows[:IMPORTS_SHOWN],
        "eventhub_modules": sorted(n for n in per_module if n == "eventhub" or n.startswith("eventhub.")),
    }
