"""Processes under measurement: spawn pinned to a core, read the port back, read /proc, stop.

A server's stdout and stderr go to temporary files rather than pipes, so a
chatty server can never block on a full pipe while it is being measured.
"""

from __future__ import annotations

import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# A port printed alone on stdout (our servers), or a logged "host:port" / "port N" (eventhub run).
_PORT_ALONE = re.compile(rb"^\s*(\d{1,5})\s*$", re.MULTILINE)
_PORT_LOGGED = re.compile(rb"(?:127\.0\.0\.1|localhost|\]):(\d{1,5})\b|\bport[ =:]+(\d{1,5})\b", re.I)


class ServerStartError(RuntimeError):
    """A server exited or never printed its port; the message carries its stderr tail."""


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (all its threads), from /proc/PID/stat."""
    raw = Path(f"/proc/{pid}/stat").read_bytes()
    # Fields after the command name, which may itself contain spaces and parentheses.
    fields = raw[raw.rindex(b")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def machine_busy_seconds() -> float:
    """CPU time every CPU of the machine spent not idle (steal included), from /proc/stat."""
    # cpu  user nice system idle iowait irq softirq steal ...
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / CLOCK_TICKS


def rss_kib(pid: int) -> int:
    """Resident set size of process ``pid`` in KiB, from /proc/PID/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise ValueError(f"no VmRSS in /proc/{pid}/status")


def raise_nofile() -> int:
    """Raise this process's soft RLIMIT_NOFILE to the hard limit; return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return max(soft, hard)


def cpus() -> list[int]:
    """The CPUs this process may run on, in order."""
    return sorted(os.sched_getaffinity(0))


def pin_cpus() -> tuple[int | None, int | None]:
    """(server CPU, load generator CPU); ``None`` each when there are fewer than two cores."""
    available = cpus()
    if len(available) < 2:
        return None, None
    return available[0], available[1]


def _preexec(cpu: int | None) -> Callable[[], None]:
    def setup() -> None:
        raise_nofile()
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})

    return setup


def child_env(extra: Mapping[str, str] | None = None, pythonpath: Sequence[str] = ()) -> dict[str, str]:
    """The environment for a child: ours, the repository on PYTHONPATH, plus ``extra``."""
    env = dict(os.environ)
    paths = [*pythonpath, str(REPO_ROOT)]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def python_module(module: str, *args: str) -> list[str]:
    """argv running ``python -m module args`` with this interpreter."""
    return [sys.executable, "-m", module, *args]


def console_script(name: str) -> str:
    """Path of a console script installed beside this interpreter (the venv's bin)."""
    candidate = Path(sys.executable).with_name(name)
    return str(candidate) if candidate.exists() else name


class Server:
    """A server subprocess pinned to one core, whose port is read back from its output."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        cpu: int | None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="eventhub-bench-srv-")
        self.stdout_path = Path(self._dir.name, "stdout")
        self.stderr_path = Path(self._dir.name, "stderr")
        self.started = time.perf_counter()
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=dict(env) if env is not None else child_env(),
                cwd=cwd or self._dir.name,
                preexec_fn=_preexec(cpu),
            )
        self.pid = self.proc.pid

    def wait_for_port(self, timeout: float = 20.0) -> int:
        """Poll the server's output until it names its port; raise ServerStartError otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            port = self._find_port()
            if port is not None:
                return port
            if self.proc.poll() is not None:
                raise ServerStartError(f"exited with status {self.proc.returncode}: {self.stderr_tail()}")
            time.sleep(0.002)
        raise ServerStartError(f"printed no port within {timeout:.0f} s: {self.stderr_tail()}")

    def _find_port(self) -> int | None:
        out = self.stdout_path.read_bytes()
        match = _PORT_ALONE.search(out)
        if match and out.endswith(b"\n"):
            return int(match.group(1))
        for line in self.stderr_path.read_bytes().splitlines(keepends=True):
            if not line.endswith(b"\n"):
                break
            found = _PORT_LOGGED.search(line)
            if found:
                port = int(found.group(1) or found.group(2))
                if port:
                    return port
        return None

    def stdout_lines(self) -> list[str]:
        return self.stdout_path.read_text(errors="replace").splitlines()

    def stderr_tail(self, lines: int = 6) -> str:
        text = self.stderr_path.read_text(errors="replace").strip().splitlines()
        return " | ".join(text[-lines:]) or "(no stderr)"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout``; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._dir.cleanup()
        return self.proc.returncode

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_pinned(
    argv: Sequence[str],
    *,
    cpu: int | None,
    timeout: float,
    env: Mapping[str, str] | None = None,
    stdin: int | None = subprocess.DEVNULL,
) -> subprocess.CompletedProcess[str]:
    """Run a helper process (the load generator) pinned to ``cpu`` and capture its output."""
    return subprocess.run(
        list(argv),
        stdin=stdin,
        capture_output=True,
        text=True,
        env=dict(env) if env is not None else child_env(),
        timeout=timeout,
        preexec_fn=_preexec(cpu),
        check=False,
    )


def spawn_pinned(
    argv: Sequence[str], *, cpu: int | None, env: Mapping[str, str] | None = None
) -> subprocess.Popen[str]:
    """Start a helper process pinned to ``cpu`` with pipes for stdin and stdout."""
    return subprocess.Popen(
        list(argv),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(env) if env is not None else child_env(),
        preexec_fn=_preexec(cpu),
    )
