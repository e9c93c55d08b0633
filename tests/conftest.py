from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import PluginVenv, first_party

# The quick loop (-m "not e2e") draws this many examples per hypothesis test, not the default 100:
# most of those tests' time is hypothesis's own per-example work (~1 ms), not the code tested.
# The full run (`python -m pytest`, what CI runs) keeps hypothesis's defaults, and examples that
# failed before are replayed first from its database in either run; `--hypothesis-profile=default`
# asks for the full count in the quick loop too.
QUICK_EXAMPLES = 25


def pytest_configure(config: pytest.Config) -> None:
    quick_loop = "not e2e" in (config.getoption("markexpr") or "")
    if quick_loop and not config.getoption("--hypothesis-profile", None):
        from hypothesis import settings

        settings.register_profile("quick", max_examples=QUICK_EXAMPLES)
        settings.load_profile("quick")


def pytest_collection_finish(session: pytest.Session) -> None:
    """Freeze what collection built (modules, hypothesis, the items): the collector skips it from now on.

    Every full collection (each gen-2 pass, and the tests' own ``gc.collect()``
    for what only it frees) otherwise walks all of it again, ~0.1 s a time.
    What the tests make after this is collected as before.
    """
    gc.collect()
    gc.freeze()


@pytest.fixture(scope="session", autouse=True)
def _own_plugin_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The suite's discovery cache, not the user's: every test's temporary folders would stay in it.

    Set in the environment, so the eventhub processes the tests start use it too;
    a test that wants its own sets ``EVENTHUB_CACHE_DIR`` over it.
    """
    before = os.environ.get("EVENTHUB_CACHE_DIR")
    os.environ["EVENTHUB_CACHE_DIR"] = str(tmp_path_factory.mktemp("eventhub-cache"))
    yield
    if before is None:
        os.environ.pop("EVENTHUB_CACHE_DIR", None)
    else:
        os.environ["EVENTHUB_CACHE_DIR"] = before


@pytest.fixture
def plugin_venv(tmp_path: Path) -> PluginVenv:
    """A fresh environment with eventhub and no plugins; install some with ``.install(path)``."""
    return PluginVenv(tmp_path / "venv")


@pytest.fixture(scope="session")
def echo_venv(tmp_path_factory: pytest.TempPathFactory) -> PluginVenv:
    """One environment with the echo plugin pip-installed, shared by the echo tests (read-only)."""
    venv = PluginVenv(tmp_path_factory.mktemp("echo") / "venv")
    venv.install(first_party("echo"))
    return venv


# End-to-end tests (real pip installs, subprocesses, other programs, load tests
# such as a 60 MB transfer) are marked `e2e`, so that `pytest -m "not e2e"` is
# the quick loop while editing; `pytest` runs them all. A test is end to end when
# it asks for a fixture that builds an environment (any `*venv`) or starts a
# process (the others below), when its module is one of these, or when it says
# so itself (`@pytest.mark.e2e  # why`).
E2E_FIXTURES = frozenset({"installed", "nats_server", "pytester", "workers", "server", "seed_server"})
E2E_MODULES = frozenset(
    {
        "test_benchmarks_smoke",
        "test_benchmarks_transports",
        "test_echo_many",
        "test_echo_serve",
        "test_events_e2e",
        "test_workers",
        "test_programs",  # tests/compat: Twisted-style programs and .tac files in subprocesses
    }
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        module = item.module.__name__.rpartition(".")[2] if isinstance(item, pytest.Function) else ""
        fixtures = set(getattr(item, "fixturenames", ()))
        if module in E2E_MODULES or E2E_FIXTURES & fixtures or any(f.endswith("venv") for f in fixtures):
            item.add_marker(pytest.mark.e2e)
