"""Helpers for end-to-end tests: real plugin distributions, real pip installs, real subprocesses.

Each test gets its own virtual environment (``PluginVenv``): created without pip,
it sees the test run's own environment (eventhub, pluggy, pip, setuptools) through
a ``.pth`` file, and plugins are ``pip install``ed into it for real, so
``pip uninstall`` works too and the test controls exactly which plugins exist.
"""

from __future__ import annotations

import importlib.util
import io
import os
import re
import shutil
import signal
import site
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import venv
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import IO, TypeVar

REPO = Path(__file__).resolve().parents[1]
FIRST_PARTY = REPO / "plugins"


def write_dist(
    root: Path,
    dist: str,
    entry_points: Mapping[str, str],
    modules: Mapping[str, str],
    version: str = "1.0",
) -> Path:
    """Write a plugin distribution (pyproject.toml + top-level modules) under ``root/dist``."""
    folder = root / dist
    folder.mkdir(parents=True)
    eps = "\n".join(f'{name} = "{value}"' for name, value in entry_points.items())
    module_names = sorted({name.split("/")[0].removesuffix(".py") for name in modules})
    (folder / "pyproject.toml").write_text(
        textwrap.dedent(f"""\
        [build-system]
        requires = ["setuptools>=64"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "{dist}"
        version = "{version}"

        [project.entry-points."eventhub.plugins"]
        """)
        + eps
        + "\n\n[tool.setuptools]\npy-modules = "
        + repr(module_names).replace("'", '"')
        + "\n"
    )
    for name, source in modules.items():
        (folder / name).write_text(textwrap.dedent(source))
    return folder


class PluginVenv:
    """A throwaway environment in which tests install plugins and run ``eventhub``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        venv.EnvBuilder(with_pip=False, symlinks=True).create(root)
        self.python = root / "bin" / "python"
        purelib = subprocess.run(
            [str(self.python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        # addsitedir (not a bare path line) so the outer site's own .pth files, such as
        # an editable install of eventhub, are processed too.
        outer = [p for p in site.getsitepackages() if os.path.isdir(p)]
        lines = "".join(f"import site; site.addsitedir({p!r})\n" for p in outer)
        (Path(purelib) / "_eventhub_tests_outer.pth").write_text(lines)
        self.cache = root / "cache"
        self.env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("EVENTHUB_", "PYTHON", "VIRTUAL_ENV"))
        }
        self.env.update(EVENTHUB_CACHE_DIR=str(self.cache), PYTHONUNBUFFERED="1")

    def pip(self, *args: str) -> None:
        subprocess.run(
            [str(self.python), "-m", "pip", "--disable-pip-version-check", "-q", *args],
            check=True,
            capture_output=True,
            text=True,
            env=self.env,
        )

    def install(self, *projects: Path) -> None:
        """pip install ``projects`` (source folders), each built from a copy of its own.

        pip builds a source folder in place (``build/`` and ``*.egg-info`` beside
        the sources): two test workers (``-n auto``) installing one plugin at once
        raced on them and failed, and the checkout kept the leftovers.
        """
        leftovers = shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
        copies = []
        for project in projects:
            copy = Path(tempfile.mkdtemp(prefix=f"{project.name}-", dir=self.root)) / project.name
            shutil.copytree(project, copy, ignore=leftovers)
            copies.append(str(copy))
        self.pip("install", "--no-deps", "--no-build-isolation", *copies)

    def uninstall(self, *dists: str) -> None:
        self.pip("uninstall", "-y", *dists)

    def eventhub(
        self,
        *args: str,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.python), "-m", "eventhub", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=cwd or self.root,
            env={**self.env, **(env or {})},
        )

    def start(
        self, *args: str, cwd: Path | None = None, env: Mapping[str, str] | None = None
    ) -> subprocess.Popen[str]:
        """Start ``eventhub ARGS`` in the background (stdin closed, output piped)."""
        return subprocess.Popen(
            [str(self.python), "-m", "eventhub", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=cwd or self.root,
            env={**self.env, **(env or {})},
        )


_Served = TypeVar("_Served", bound="Served")


class Served:
    """``eventhub ARGS`` running in the background, its output collected line by line on threads.

    Threads, not a selector and ``readline``: two log lines can arrive in one
    read, and a line left in Python's buffer is invisible to ``select``; and a
    chatty server whose pipe nobody drains would block. Use as a context
    manager: a server still running at the end is killed.
    """

    def __init__(self, venv: PluginVenv, *args: str, cwd: Path | None = None) -> None:
        self.process = venv.start(*args, cwd=cwd)
        self.lines: list[str] = []
        self.stdout_lines: list[str] = []
        self._changed = threading.Condition()
        self._readers = [
            threading.Thread(target=self._collect, args=(self.process.stderr, self.lines), daemon=True),
            threading.Thread(
                target=self._collect, args=(self.process.stdout, self.stdout_lines), daemon=True
            ),
        ]
        for reader in self._readers:
            reader.start()

    def _collect(self, stream: IO[str] | None, into: list[str]) -> None:
        assert stream is not None
        for line in stream:
            with self._changed:
                into.append(line)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def stderr(self) -> str:
        with self._changed:
            return "".join(self.lines)

    @property
    def stdout(self) -> str:
        with self._changed:
            return "".join(self.stdout_lines)

    def wait_for(self, pattern: str, timeout: float = 30) -> re.Match[str]:
        """The first stderr line matching ``pattern`` (waiting for it); fail with all of stderr."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines:
                    match = regex.search(line)
                    if match:
                        return match
                left = deadline - time.monotonic()
                if left <= 0 or not any(reader.is_alive() for reader in self._readers):
                    break
                self._changed.wait(min(left, 0.1))
        raise AssertionError(f"no stderr line matching {pattern!r}; stderr was:\n{self.stderr}")

    def status(self, field_name: str) -> int:
        """A ``/proc/PID/status`` memory field (``VmRSS``, ``VmHWM``) in KiB."""
        text = Path(f"/proc/{self.process.pid}/status").read_text()
        match = re.search(rf"^{field_name}:\s+(\d+) kB$", text, re.MULTILINE)
        assert match, f"no {field_name} in /proc/{self.process.pid}/status"
        return int(match.group(1))

    def finish(self, sig: int = signal.SIGTERM, timeout: float = 30) -> tuple[int, str]:
        """Send ``sig`` (if still running) and wait for the exit; return (status, all of stderr)."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.wait(timeout)

    def wait(self, timeout: float = 30) -> tuple[int, str]:
        """Wait for the exit; return (status, all of stderr). Kill it and fail after ``timeout``."""
        try:
            status = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"eventhub did not exit; stderr was:\n{self.stderr}") from None
        for reader in self._readers:
            reader.join(10)
        return status, self.stderr

    def __enter__(self: _Served) -> _Served:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for reader in self._readers:
            reader.join(10)


def talk(command: Sequence[str], line: bytes, expect: bytes | None = None) -> bytes:
    """Start a peer program, write ``line`` to it, read its output until ``expect`` (the line), end it.

    For peers that never exit by themselves (``socat -``, ``nc -u``, ``openssl
    s_client``): the test waits for what it expects, not for a time.
    """
    expect = line if expect is None else expect
    with subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as proc:
        assert proc.stdin is not None and isinstance(proc.stdout, io.BufferedReader)  # PIPE, buffered
        try:
            proc.stdin.write(line)
            proc.stdin.flush()
            got = b""
            while expect not in got:
                chunk = proc.stdout.read1(4096)
                if not chunk:
                    break
                got += chunk
            return got
        finally:
            proc.kill()


def assert_clean_exit(status: int, stderr: str) -> None:
    assert status == 0, f"exit status {status}; stderr:\n{stderr}"
    assert "Traceback" not in stderr, stderr


def load_source_package(folder: str, package: str) -> ModuleType:
    """Import a first-party plugin package from its source folder, without ``sys.path``.

    Putting ``plugins/NAME`` on ``sys.path`` would also expose the
    ``*.egg-info`` a pip install leaves there, and with it the plugin's entry
    point, to every other test of the session (which expect no plugins).
    """
    if package in sys.modules:
        return sys.modules[package]
    root = FIRST_PARTY / folder / package
    spec = importlib.util.spec_from_file_location(
        package, root / "__init__.py", submodule_search_locations=[str(root)]
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[package] = module
    spec.loader.exec_module(module)
    return module


def first_party(name: str) -> Path:
    return FIRST_PARTY / name


def python_cmd(code: str) -> Sequence[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]
