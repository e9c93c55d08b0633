"""Start-up scenario: from spawning a server to its first accepted, echoed connection.

The clock starts before the process is spawned and stops when one byte string
has come back through a connection to the port the server printed. Beside the
wall time, the CPU time the server's threads had used by then (from
``/proc/PID/task/*/schedstat``, in nanoseconds): on a shared machine the wall
time includes waiting for a core, the CPU time does not.

Each subject starts once unmeasured first (page cache, eventhub's plugin cache,
Twisted's plugin cache).

What users get, for every subject alike (``Scene``, built once per run): eventhub
as ``pip install .`` leaves it (built from a copy of the checkout into a
``--target`` folder, byte-compiled, first on PYTHONPATH), and an interpreter
that does not run the benchmark venv's start-up extras. That venv installs
eventhub *editable*, and the editable install's ``.pth`` imports its finder
(pathlib and more, ~15 ms) at every interpreter start, whatever the program;
no user's ``pip install .`` has it. So every subject runs on the ``python`` of
a throwaway venv made for the run (no pip, so nothing of its own) whose one
``.pth`` line puts the benchmark venv's site-packages on ``sys.path``: a path
line in a ``.pth`` adds the folder without processing the ``.pth`` files in
it, so Twisted, uvloop and pluggy import as before and the finder never runs.
Console scripts (``twistd``, ``eventhub``) are run as ``python SCRIPT``.

Then ``eventhub run`` starts again with ``-X importtime`` (``PYTHONPROFILEIMPORTTIME``):
what each module of its import chain costs, up to the first echo.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
import venv
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


class Scene:
    """eventhub installed as ``pip install .`` installs it, and an interpreter without the editable finder.

    Built once per run in a temporary folder; ``adapt`` turns a subject's argv
    and environment into the same program started in this setting.
    """

    def __init__(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="eventhub-bench-startup-")
        root = Path(self._tmp.name)
        self.site = root / "site"
        self.python = str(self._make_venv(root / "venv"))
        self._install_eventhub(root / "src")

    def _install_eventhub(self, src: Path) -> None:
        # Built from a copy: pip writes build/ and egg-info beside the sources. pip byte-compiles.
        src.mkdir()
        for name in ("pyproject.toml", "README.md"):
            shutil.copy(REPO_ROOT / name, src / name)
        no_bytecode = shutil.ignore_patterns("__pycache__")
        shutil.copytree(REPO_ROOT / "eventhub", src / "eventhub", ignore=no_bytecode)
        argv = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation"]
        done = subprocess.run([*argv, "--target", str(self.site), str(src)], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"pip install eventhub failed: {done.stderr.strip()[-300:]}")

    @staticmethod
    def _make_venv(folder: Path) -> Path:
        venv.EnvBuilder(with_pip=False, symlinks=os.name != "nt").create(folder)
        python = folder / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
        where = "import sysconfig; print(sysconfig.get_path('purelib'))"
        site_packages = subprocess.run([python, "-c", where], capture_output=True, text=True, check=True)
        ours = sorted({sysconfig.get_path(k) for k in ("purelib", "platlib")})
        Path(site_packages.stdout.strip(), "benchmark-venv.pth").write_text("\n".join(ours) + "\n")
        return python

    def adapt(self, subject: Subject) -> Subject:
        """The same program on this scene's interpreter, with the installed eventhub first on PYTHONPATH."""
        program = subject.argv[0]
        if program == sys.executable:
            argv = [self.python, *subject.argv[1:]]
        else:  # a console script: the installed copy's own when it has one (eventhub's)
            installed = self.site / "bin" / Path(program).name
            argv = [self.python, str(installed if installed.exists() else program), *subject.argv[1:]]
        pythonpath = os.pathsep.join(filter(None, [str(self.site), subject.env.get("PYTHONPATH")]))
        return Subject(subject.label, argv, {**subject.env, "PYTHONPATH": pythonpath}, subject.missing)

    def cleanup(self) -> None:
        self._tmp.cleanup()


def run(cfg: Config, servers: list[ServerSpec], progress: Progress) -> dict[str, Any]:
    cpu, _ = pin_cpus()
    scene = Scene()
    try:
        return _run(cfg, [scene.adapt(s) for s in subjects(servers)], cpu, progress)
    finally:
        scene.cleanup()


def _run(cfg: Config, todo: list[Subject], cpu: int | None, progress: Progress) -> dict[str, Any]:
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
