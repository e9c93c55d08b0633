"""The echo servers under comparison: how to start each, and whether it can run here.

eventhub is served through ``eventhub run`` with the echo plugin when the
plugin can be installed (it is, as a third party's would be, into a temporary
``--target`` directory when the environment lacks it); otherwise through a
small script on ``eventhub.reactor`` directly, and the results say which.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks._proc import REPO_ROOT, child_env, console_script, python_module

# select() cannot watch descriptors at or above FD_SETSIZE (1024 on Linux).
SELECT_MAX_CONNS = 1000
ECHO_PLUGIN_SRC = REPO_ROOT / "plugins" / "echo"


@dataclass
class ServerSpec:
    """One server: a short name, a label for the report, and how to start it."""

    name: str
    label: str
    argv: Callable[[bool], list[str]]  # argument: True for the memory-reporting variant
    max_conns: int | None = None
    missing: str | None = None  # why it cannot run here (a peer not installed, say)
    pythonpath: list[str] = field(default_factory=list)
    is_eventhub: bool = False
    via: str = ""  # how eventhub is served: "eventhub run" or "reactor script"

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return child_env(extra, self.pythonpath)


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def echo_plugin_installed() -> bool:
    """Whether the environment already has an ``echo`` entry point in ``eventhub.plugins``."""
    return any(ep.name == "echo" for ep in importlib.metadata.entry_points(group="eventhub.plugins"))


class EchoPluginInstall:
    """Installs plugins/echo into a temporary ``--target`` directory, once per run."""

    def __init__(self) -> None:
        self.path: str | None = None
        self.error: str | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    def ensure(self) -> str | None:
        if self.path is not None or self.error is not None:
            return self.path
        if not (ECHO_PLUGIN_SRC / "pyproject.toml").exists():
            self.error = "plugins/echo does not exist yet"
            return None
        self._tmp = tempfile.TemporaryDirectory(prefix="eventhub-bench-echo-")
        src = Path(self._tmp.name, "src")
        # Build from a copy: pip writes build/ and egg-info beside the sources.
        shutil.copytree(ECHO_PLUGIN_SRC, src, ignore=shutil.ignore_patterns("build", "*.egg-info"))
        target = str(Path(self._tmp.name, "site"))
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            target,
            str(src),
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            self.error = f"pip install plugins/echo failed: {done.stderr.strip()[-300:]}"
            return None
        self.path = target
        return target

    def cleanup(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()


def eventhub_servers(plugin: EchoPluginInstall) -> list[ServerSpec]:
    """eventhub on each backend, through ``eventhub run`` when the echo plugin is available."""
    specs = []
    missing = None if _installed("eventhub.reactor") else "eventhub.reactor is not importable yet"
    extra_path: list[str] = []
    use_cli = echo_plugin_installed()
    if not use_cli and missing is None:
        target = plugin.ensure()
        use_cli = target is not None
        extra_path = [target] if target else []
    no_uvloop = None if _installed("uvloop") else "uvloop is not installed (pip install uvloop)"
    for backend in ("epoll", "poll", "select", "asyncio", "uvloop"):
        specs.append(
            ServerSpec(
                name=f"eventhub-{backend}",
                label=f"eventhub ({backend})",
                argv=_eventhub_argv(backend, use_cli),
                max_conns=SELECT_MAX_CONNS if backend == "select" else None,
                missing=missing or (no_uvloop if backend == "uvloop" else None),
                pythonpath=extra_path,
                is_eventhub=True,
                via="eventhub run" if use_cli else "reactor script",
            )
        )
    return specs


def _eventhub_argv(backend: str, use_cli: bool) -> Callable[[bool], list[str]]:
    run_args = [
        "run",
        "--only",
        "echo",
        "--backend",
        backend,
        "--set",
        "echo.port=0",
        "--set",
        "echo.backlog=1024",
    ]

    def argv(memory: bool) -> list[str]:
        if not use_cli:
            return python_module("benchmarks.servers.eventhub_reactor", "--backend", backend)
        if memory:  # the same entry point, with the SIGUSR1 memory report installed
            return python_module("benchmarks.servers.eventhub_cli", *run_args)
        return [console_script("eventhub"), *run_args]

    return argv


def _fixed(argv: Sequence[str]) -> Callable[[bool], list[str]]:
    return lambda memory: list(argv)


def peer_servers() -> list[ServerSpec]:
    """The bare loop, asyncio, uvloop and Twisted (epoll and select reactors)."""
    no_uvloop = None if _installed("uvloop") else "uvloop is not installed (pip install uvloop)"
    no_twisted = None if _installed("twisted") else "Twisted is not installed (pip install twisted)"
    twisted = "benchmarks.servers.twisted_echo"
    return [
        ServerSpec("bare", "bare selectors loop", _fixed(python_module("benchmarks.servers.bare"))),
        ServerSpec("asyncio", "asyncio Protocol", _fixed(python_module("benchmarks.servers.aio"))),
        ServerSpec(
            "uvloop",
            "uvloop Protocol",
            _fixed(python_module("benchmarks.servers.aio", "--uvloop")),
            missing=no_uvloop,
        ),
        ServerSpec(
            "twisted-epoll",
            "Twisted (epoll reactor)",
            _fixed(python_module(twisted, "--reactor", "epoll")),
            missing=no_twisted,
        ),
        ServerSpec(
            "twisted-select",
            "Twisted (select reactor)",
            _fixed(python_module(twisted, "--reactor", "select")),
            max_conns=SELECT_MAX_CONNS,
            missing=no_twisted,
        ),
    ]


def all_servers(plugin: EchoPluginInstall, only: Sequence[str] | None = None) -> list[ServerSpec]:
    """eventhub first, then the peers; ``only`` keeps the named ones."""
    specs = [*eventhub_servers(plugin), *peer_servers()]
    if only:
        specs = [s for s in specs if s.name in only]
    return specs
