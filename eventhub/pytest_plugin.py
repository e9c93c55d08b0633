"""pytest fixtures for eventhub plugin authors, registered through the ``pytest11`` entry point.

Installing eventhub is enough: every test suite in that environment gets

``hub``
    ``eventhub.Hub()`` with no plugin loaded (register yours by hand); its
    reactor, if the test made one, is closed afterwards.
``clock``
    ``eventhub.testing.Clock``: fake time, ``call_later`` and ``advance(seconds)``.
``memory_reactor``
    ``eventhub.testing.MemoryReactor`` on that same ``clock``: records
    ``listen_tcp``/``connect_tcp``, no sockets, no threads.
``string_transport``
    ``eventhub.testing.StringTransport``: a transport whose writes land in memory.
``reactor``
    a real ``eventhub.reactor.Reactor`` (backend from the ``reactor_backend``
    fixture, ``"auto"`` unless a conftest overrides or parametrizes it). After
    the test it is closed, and the test errors if it left a listener, a
    connection, a connection attempt, a timer or a queued call behind, or if a
    file descriptor opened during the test is still open.
``run_eventhub``
    the ``eventhub`` command, in-process: ``run_eventhub("run", "--only", "mine")``
    returns an ``EventhubResult`` with ``status``, ``stdout`` and ``stderr``.

pytest imports this module in every run where eventhub is installed, so it
imports nothing of eventhub until a fixture is used.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    import pluggy

    from eventhub._hub import Hub
    from eventhub.reactor import Reactor
    from eventhub.testing import Clock, MemoryReactor, StringTransport

__all__ = ["EventhubResult", "RunEventhub"]

_ENV_PREFIX = "EVENTHUB_"
_CALL_REPORT = pytest.StashKey["pytest.TestReport"]()


# hookwrapper (not wrapper=True): this module loads in every pytest run with eventhub
# installed, and pytest 7 with pluggy < 1.2 knows only the old style.
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pluggy.Result[pytest.TestReport], None]:
    # Kept so that the reactor fixture does not pile a leak report on a test that failed.
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.stash[_CALL_REPORT] = report


# -- the hub and the test doubles ------------------------------------------------


@pytest.fixture
def hub() -> Iterator[Hub]:
    """A ``Hub`` that loads no plugin; its reactor (if the test made one) is closed afterwards."""
    from eventhub._hub import Hub

    hub = Hub()
    yield hub
    hub.close()


@pytest.fixture
def clock() -> Clock:
    """Fake time: ``call_later`` schedules, ``advance(seconds)`` runs what comes due."""
    from eventhub.testing import Clock

    return Clock()


@pytest.fixture
def memory_reactor(clock: Clock) -> MemoryReactor:
    """A reactor without sockets or threads, on the ``clock`` fixture's fake time."""
    from eventhub.testing import MemoryReactor

    return MemoryReactor(clock)


@pytest.fixture
def string_transport() -> StringTransport:
    """A transport that records what the protocol writes (``value()``) and asks for."""
    from eventhub.testing import StringTransport

    return StringTransport()


# -- the real reactor, checked for leaks -----------------------------------------


@pytest.fixture
def reactor_backend() -> str:
    """The ``reactor`` fixture's backend; override it (or parametrize it) in a conftest."""
    return "auto"


@pytest.fixture
def reactor(reactor_backend: str, request: pytest.FixtureRequest) -> Iterator[Reactor]:
    """A real reactor; the test errors if it leaks descriptors or leaves work (a task too) pending."""
    from eventhub.reactor import Reactor

    if reactor_backend == "uvloop":  # libuv opens a pipe on its first loop, kept for the process
        import uvloop

        uvloop.new_event_loop().close()
    before = _open_descriptors()
    reactor = Reactor(backend=reactor_backend)
    yield reactor
    problems = _leftovers(reactor)
    reactor.close()
    problems += [f"file descriptor {fd} ({what})" for fd, what in _still_open(before)]
    call = request.node.stash.get(_CALL_REPORT, None)
    if problems and (call is None or call.passed):
        pytest.fail(
            "the reactor fixture found what the test left behind:\n  " + "\n  ".join(problems),
            pytrace=False,
        )


def _leftovers(reactor: Reactor) -> list[str]:
    """What a finished test should have stopped, cancelled or closed (the reactor's own inventory)."""
    held = reactor.inventory()
    found = [f"listener still listening: {x!r}" for x in held.listeners]
    found += [f"connection still open: {x!r}" for x in held.connections]
    found += [f"connection attempt in progress: {x!r}" for x in held.connectors]
    found += [f"timer still pending: {x!r}" for x in held.timers]
    found += [f"call queued but never run: {x!r}" for x in held.calls]
    found += [f"task still pending: {x!r}" for x in held.tasks]
    return found


def _descriptor_dir() -> Path | None:
    for folder in ("/proc/self/fd", "/dev/fd"):
        if os.path.isdir(folder):
            return Path(folder)
    return None


def _open_descriptors() -> set[int]:
    folder = _descriptor_dir()
    return set() if folder is None else {int(name) for name in os.listdir(folder)}


def _still_open(before: set[int]) -> list[tuple[int, str]]:
    """Descriptors open now that were not before (with what they point to)."""
    folder = _descriptor_dir()
    if folder is None:
        return []
    found = []
    for fd in sorted(_open_descriptors() - before):
        try:
            found.append((fd, os.readlink(folder / str(fd))))
        except OSError:
            continue  # the directory listing's own descriptor, closed since
    return found


# -- the eventhub command, in-process ----------------------------------------------


@dataclass(frozen=True)
class EventhubResult:
    """What one ``eventhub`` command did: exit status and everything it printed."""

    status: int
    stdout: str
    stderr: str


class RunEventhub:
    """Runs ``eventhub ARGS`` in this process, as ``python -m eventhub ARGS`` would.

    Output is captured (what the command and the plugins print, and the log
    lines, which go to stderr). The command sees a controlled environment: no
    ``EVENTHUB_*`` variable from outside, a fresh discovery cache, the test's
    ``tmp_path`` as working directory (so no stray ``eventhub.toml`` is read);
    ``env`` and ``cwd`` change that for one call. The plugins are the ones
    installed in this environment: use ``--only NAME`` to run just yours.

    A plugin that starts a service makes ``eventhub run`` serve until
    interrupted: test services with the ``reactor`` fixture or a subprocess.
    """

    def __init__(self, cwd: Path, cache_dir: Path) -> None:
        self.cwd = cwd
        self.cache_dir = cache_dir

    def __call__(
        self, *args: str, env: Mapping[str, str] | None = None, cwd: str | Path | None = None
    ) -> EventhubResult:
        from eventhub._cli import main

        stdout, stderr = io.StringIO(), io.StringIO()
        environment = {_ENV_PREFIX + "CACHE_DIR": str(self.cache_dir), **(env or {})}
        with (
            _environment(environment),
            _working_directory(cwd or self.cwd),
            _logging_restored(),
            contextlib.redirect_stdout(stdout),
            contextlib.redirect_stderr(stderr),
        ):
            status = _exit_status(main, list(args))
        return EventhubResult(status, stdout.getvalue(), stderr.getvalue())


@pytest.fixture
def run_eventhub(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> RunEventhub:
    """Run the ``eventhub`` command in-process, in ``tmp_path``: ``run_eventhub("run").stdout``."""
    return RunEventhub(tmp_path, tmp_path_factory.mktemp("eventhub-cache"))


def _exit_status(main: Callable[[list[str]], int], argv: list[str]) -> int:
    try:
        status = main(argv)
    except SystemExit as exit:  # argparse: --help, --version, a bad option
        code = exit.code
        if code is None or isinstance(code, int):
            return code or 0
        print(code, file=sys.stderr)
        return 1
    return int(status)


@contextlib.contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    """``os.environ`` without any ``EVENTHUB_*`` from outside, plus ``values``, then restored."""
    saved = dict(os.environ)
    for key in [key for key in os.environ if key.startswith(_ENV_PREFIX)]:
        del os.environ[key]
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def _working_directory(path: str | Path) -> Iterator[None]:
    # contextlib.chdir is Python 3.11+.
    previous = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


@contextlib.contextmanager
def _logging_restored() -> Iterator[None]:
    """The CLI sets up the ``eventhub`` logger for a process; undo it for the next test."""
    logger = logging.getLogger("eventhub")
    handlers, level, propagate = list(logger.handlers), logger.level, logger.propagate
    try:
        yield
    finally:
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate
