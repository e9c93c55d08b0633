"""Helpers for end-to-end tests: real plugin distributions, real pip installs, real subprocesses.

Each test gets its own virtual environment (``PluginVenv``): created without pip,
it sees the test run's own environment (eventhub, pluggy, pip, setuptools) through
a ``.pth`` file, and plugins are ``pip install``ed into it for real, so
``pip uninstall`` works too and the test controls exactly which plugins exist.
"""

from __future__ import annotations

import os
import re
import selectors
import site
import subprocess
import sys
import textwrap
import time
import venv
from collections.abc import Mapping, Sequence
from pathlib import Path

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
        self.pip("install", "--no-deps", "--no-build-isolation", *map(str, projects))

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


def wait_for_line(
    process: subprocess.Popen[str], pattern: str, timeout: float = 30
) -> re.Match[str]:
    """Read the process's stderr until a line matches ``pattern``; fail with what it printed."""
    assert process.stderr is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(process.stderr, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if not selector.select(timeout=0.1):
                continue
            line = process.stderr.readline()
            if not line:
                break
            seen.append(line)
            match = re.search(pattern, line)
            if match:
                return match
    process.kill()
    raise AssertionError(f"no line matching {pattern!r}; stderr was:\n{''.join(seen)}")


def stop(process: subprocess.Popen[str], timeout: float = 30) -> tuple[int, str, str]:
    """Wait for the process to end (it was told to); kill it after ``timeout``."""
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
    return process.returncode, out, err


def first_party(name: str) -> Path:
    return FIRST_PARTY / name


def python_cmd(code: str) -> Sequence[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]
