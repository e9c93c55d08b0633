"""Start-up: what ``import eventhub._cli`` and ``eventhub run`` import, up to the first echo.

The start-up goal (issue 10) rests on modules not imported until used: a heavy
one creeping back into the import chain fails here, by name, whatever the
machine's speed. ``-X importtime`` (``PYTHONPROFILEIMPORTTIME``) lists every
module a process imported, in the order it did.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventhub._discovery import PluginEntry
from eventhub.config import parse_value

REPO = Path(__file__).resolve().parents[1]

# Modules that serving plain TCP with the echo plugin does not need, each with
# what it costs or where it belongs: asyncio (the asyncio backends only),
# importlib.metadata and email (discovery's cache miss), tempfile (its cache
# write), ssl (TLS endpoints), tomllib (a config file, a non-integer --set),
# shutil (argparse's help width), difflib (a misspelled hook's hint),
# subprocess and the supervisor (--workers), scaffold, tracing, the Twisted layer,
# pathlib with urllib.parse (os.path does: config and discovery cache paths),
# random (event ids take os.urandom), ipaddress (an IPv4-mapped IPv6 peer),
# encodings.idna (the listener passes an ASCII host to getaddrinfo as bytes),
# the reactor API's Protocol classes (isinstance checks and inventories only).
NOT_AT_START = (
    "asyncio",
    "email",
    "importlib.metadata",
    "tempfile",
    "ssl",
    "tomllib",
    "shutil",
    "difflib",
    "subprocess",
    "zipfile",
    "pathlib",
    "urllib",
    "random",
    "ipaddress",
    "encodings.idna",
    "eventhub._supervisor",
    "eventhub._scaffold",
    "eventhub.tracing",
    "eventhub.compat",
    "eventhub.reactor._aio",
    "eventhub.reactor._api",
)
_IMPORTED = re.compile(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)\s*$", re.MULTILINE)
_LISTENING = re.compile(r"127\.0\.0\.1:(\d+)")


# The child runs as an installed eventhub starts: ``-S`` skips the site-packages
# ``.pth`` files, of which the dev venv's editable install imports its finder
# (pathlib among others) before any program runs, and would hide them here.
# The packages stay importable: site-packages on PYTHONPATH, whose .pth files
# nothing processes.
PYTHON = [sys.executable, "-S"]
SITE_PACKAGES = sorted({sysconfig.get_path("purelib"), sysconfig.get_path("platlib")})


CACHE_DIR = "EVENTHUB_CACHE_DIR"  # the suite's own (conftest), not the user's


def _environment(**extra: str) -> dict[str, str]:
    outside = ("EVENTHUB_", "PYTHONPROFILE")
    env = {k: v for k, v in os.environ.items() if k == CACHE_DIR or not k.startswith(outside)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH"), *SITE_PACKAGES]))
    return {**env, **extra}


def _heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in NOT_AT_START))


@given(st.text(alphabet="0123456789+-_xob.e ", max_size=8))
def test_a_set_value_is_what_toml_makes_of_it_without_the_parser_for_integers(raw: str) -> None:
    """``--set port=8001`` skips the TOML parser; every other text still goes through it."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib

    try:
        expected = tomllib.loads(f"value = {raw}")["value"]
    except tomllib.TOMLDecodeError:
        expected = raw
    assert parse_value(raw) == expected
    assert type(parse_value(raw)) is type(expected)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("os.path", os.path),
        ("os.path:join", os.path.join),
        ("os : path.join", os.path.join),
        ("os.path:join [extra]", os.path.join),
        ("os.path [extra]", os.path),
    ],
)
def test_an_entry_point_loads_as_importlib_metadata_loads_it(value: str, expected: object) -> None:
    import importlib.metadata

    assert PluginEntry("x", value, "d", "1").load() is expected
    assert importlib.metadata.EntryPoint("x", value, "g").load() is expected


def test_an_entry_point_naming_what_is_not_there_raises_import_or_attribute_error() -> None:
    with pytest.raises(ImportError):
        PluginEntry("x", "no_such_module_here:thing", "d", "1").load()
    with pytest.raises(AttributeError):
        PluginEntry("x", "os.path:no_such_attribute", "d", "1").load()


@pytest.mark.e2e  # a fresh interpreter
def test_importing_the_cli_and_building_its_parser_imports_none_of_the_heavy_modules() -> None:
    code = "import sys, eventhub._cli; eventhub._cli._parser(); print('\\n'.join(sys.modules))"
    argv = [*PYTHON, "-c", code]
    done = subprocess.run(argv, env=_environment(), capture_output=True, text=True, timeout=60, check=True)
    modules = set(done.stdout.split())
    assert "eventhub._hub" in modules  # the listing is real
    assert _heavy(modules) == []


# Settings classes are what read_settings reads; every other value class on the
# run path is a Frozen or a NamedTuple (see eventhub._frozen: ~0.4 ms a dataclass).
DATACLASSES_AT_START = {"eventhub.config.CoreSettings", "eventhub.schedule.Schedule"}


@pytest.mark.e2e  # a fresh interpreter
def test_the_run_path_defines_no_dataclass_but_the_settings() -> None:
    code = (
        "import sys, dataclasses, eventhub._cli, eventhub.reactor._loop, eventhub.reactor._tcp\n"
        "from eventhub.reactor import Reactor; Reactor()\n"
        "for name, module in list(sys.modules.items()):\n"
        "    if name.startswith('eventhub'):\n"
        "        for value in vars(module).values():\n"
        "            if dataclasses.is_dataclass(value) and value.__module__ == name:\n"
        "                print(f'{name}.{value.__qualname__}')\n"
    )
    done = subprocess.run(
        [*PYTHON, "-c", code], env=_environment(), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert set(done.stdout.split()) == DATACLASSES_AT_START


@pytest.mark.e2e
def test_eventhub_run_imports_none_of_the_heavy_modules_before_its_first_echo(tmp_path: Path) -> None:
    """The real path: the echo plugin found through its entry point (the discovery cache warm), served."""
    site = tmp_path / "site"
    info = site / "eventhub_echo-0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: eventhub-echo\nVersion: 0\n")
    (info / "entry_points.txt").write_text("[eventhub.plugins]\necho = eventhub_echo:EchoPlugin\n")
    env = _environment(EVENTHUB_CACHE_DIR=str(tmp_path / "cache"))
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(REPO / "plugins" / "echo"), env["PYTHONPATH"]])
    run = tmp_path / "run"
    run.mkdir()
    _serve_once(run, env)  # fills the discovery cache: this start reads importlib.metadata
    imported = _serve_once(run, {**env, "PYTHONPROFILEIMPORTTIME": "1"})
    assert {"eventhub_echo._plugin", "eventhub.reactor._tcp"} <= imported  # the listing is real
    assert _heavy(imported) == []


def _serve_once(cwd: Path, env: dict[str, str]) -> set[str]:
    """Start ``eventhub run`` with echo, echo once, stop it; return what it had imported by the echo."""
    stderr = cwd / "stderr"
    argv = [*PYTHON, "-m", "eventhub", "run", "--only", "echo", "--set", "echo.port=0"]
    with stderr.open("w") as sink:
        process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=sink)
    try:
        port = _port(process, stderr)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as peer:
            peer.sendall(b"ping")
            assert peer.recv(4) == b"ping"
        text = stderr.read_text()  # what had been imported by the first echo
        process.send_signal(signal.SIGINT)
        assert process.wait(30) == 0, stderr.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return set(_IMPORTED.findall(text))


def _port(process: subprocess.Popen[bytes], stderr: Path) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = _LISTENING.search(stderr.read_text())
        if found and int(found.group(1)):
            return int(found.group(1))
        if process.poll() is not None:
            break
        time.sleep(0.01)
    raise AssertionError(f"eventhub run named no port; stderr was:\n{stderr.read_text()}")
