"""Bad config files and values given to ``eventhub run``: one line naming the file, exit status 2.

Each case is a file (or a value) a user can produce by accident: saved in
another encoding, generated nested thousands deep, a folder where a file
was expected, a device, a file that cannot be read.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support import PluginVenv

DEEP = 5_000  # far past the interpreter's recursion limit

# name -> (files to write in the working folder (None: a folder), arguments, start of the message)
CASES: dict[str, tuple[dict[str, bytes | None], tuple[str, ...], str]] = {
    "eventhub.toml not UTF-8": (
        {"eventhub.toml": b'[eventhub]\non_error = "stop"\n# caf\xe9\n'},
        (),
        "{cwd}/eventhub.toml: not UTF-8 (line 3): TOML files are UTF-8",
    ),
    "eventhub.toml nested arrays": (
        {"eventhub.toml": b"x = " + b"[" * DEEP + b"]" * DEEP + b"\n"},
        (),
        "{cwd}/eventhub.toml: invalid TOML: nested too deeply",
    ),
    "eventhub.toml nested inline tables": (
        {"eventhub.toml": b"x = " + b"{a=" * DEEP + b"1" + b"}" * DEEP + b"\n"},
        (),
        "{cwd}/eventhub.toml: invalid TOML: nested too deeply",
    ),
    "pyproject.toml not UTF-8": (
        {"pyproject.toml": b'[tool.eventhub]\non_error = "\xff"\n'},
        (),
        "{cwd}/pyproject.toml: not UTF-8 (line 2): TOML files are UTF-8",
    ),
    "pyproject.toml nested": (
        {"pyproject.toml": b"[tool.eventhub]\nx = " + b"[" * DEEP + b"]" * DEEP + b"\n"},
        (),
        "{cwd}/pyproject.toml: invalid TOML: nested too deeply",
    ),
    "pyproject.toml [tool.eventhub] not a table": (
        {"pyproject.toml": b"[tool]\neventhub = 3\n"},
        (),
        "{cwd}/pyproject.toml: [tool.eventhub] must be a table, not an integer",
    ),
    "eventhub.toml is a folder": (
        {"eventhub.toml": None},
        (),
        "{cwd}/eventhub.toml: not a file (a folder)",
    ),
    "--config names a folder": (
        {"conf": None},
        ("--config", "conf"),
        "conf: not a file (a folder)",
    ),
    "--config names a device": (
        {},
        ("--config", "/dev/null"),
        "/dev/null: not a file (a device)",
    ),
    "--config names a file that cannot be read": (
        {},
        ("--config", "/proc/self/mem"),  # a regular file whose read fails, even as root
        "/proc/self/mem: cannot read: ",
    ),
    "--set nested": (
        {},
        ("--set", "echo.x=" + "[" * DEEP + "]" * DEEP),
        "--set echo.x: nested too deeply",
    ),
}


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> PluginVenv:
    return PluginVenv(tmp_path_factory.mktemp("config") / "venv")


@pytest.mark.parametrize("case", list(CASES))
def test_bad_config_is_one_line_and_exit_status_2(venv: PluginVenv, tmp_path: Path, case: str) -> None:
    files, args, message = CASES[case]
    for name, content in files.items():
        if content is None:
            (tmp_path / name).mkdir()
        else:
            (tmp_path / name).write_bytes(content)
    result = venv.eventhub("run", *args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("eventhub: error: " + message.format(cwd=tmp_path)), lines
