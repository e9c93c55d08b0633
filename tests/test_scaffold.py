"""``eventhub new-plugin``: names, errors, and a generated plugin installed and run for real."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from support import PluginVenv

from eventhub import UsageError
from eventhub._scaffold import PluginNames, create, plugin_names
from eventhub.pytest_plugin import RunEventhub


@pytest.mark.parametrize(
    ("dist", "names"),
    [
        ("eventhub-greeter", PluginNames("eventhub-greeter", "greeter", "eventhub_greeter", "Greeter")),
        ("EventHub_Greeter", PluginNames("EventHub_Greeter", "greeter", "eventhub_greeter", "Greeter")),
        (
            "Acme.Audit-log",
            PluginNames("Acme.Audit-log", "acme_audit_log", "eventhub_acme_audit_log", "AcmeAuditLog"),
        ),
        ("2fa", PluginNames("2fa", "2fa", "eventhub_2fa", "Plugin2fa")),
        ("x", PluginNames("x", "x", "eventhub_x", "X")),
    ],
)
def test_names_derive_from_the_distribution_name(dist: str, names: PluginNames) -> None:
    assert plugin_names(dist) == names


# "\u212a" (Kelvin sign) and "\u017f" (long s) match [a-z] case-insensitively unless ASCII-only.
@pytest.mark.parametrize(
    "dist", ["", "bad name", "-x", "x-", "x.", "na\u00efve", "a/b", "\u212a", "\u017f", "a\nb"]
)
def test_an_invalid_distribution_name_is_a_usage_error_naming_it(dist: str, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="invalid distribution name") as caught:
        create(dist, tmp_path)
    assert repr(dist) in str(caught.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("dist", ["eventhub", "EventHub", "EVENTHUB"])
def test_eventhub_itself_is_refused(dist: str) -> None:
    with pytest.raises(UsageError, match="that is eventhub itself"):
        plugin_names(dist)


def test_a_name_like_eventhub_is_fine() -> None:
    assert plugin_names("event.hub").module == "eventhub_event_hub"


def test_an_existing_folder_is_a_usage_error_and_stays_untouched(tmp_path: Path) -> None:
    (tmp_path / "eventhub-greeter").mkdir()
    (tmp_path / "eventhub-greeter" / "mine.txt").write_text("keep me")
    with pytest.raises(UsageError, match=f"{tmp_path / 'eventhub-greeter'} already exists"):
        create("eventhub-greeter", tmp_path)
    assert [p.name for p in (tmp_path / "eventhub-greeter").iterdir()] == ["mine.txt"]


def test_a_dir_that_is_a_file_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(UsageError, match=r"cannot create .*file/eventhub-greeter"):
        create("eventhub-greeter", tmp_path / "file")


def test_the_command_writes_the_folder_or_exits_2(run_eventhub: RunEventhub, tmp_path: Path) -> None:
    bad = run_eventhub("new-plugin", "no good")
    assert bad.status == 2
    assert bad.stderr == (
        "eventhub: error: invalid distribution name 'no good': use ASCII letters, digits, '-', '_' "
        "and '.', starting and ending with a letter or digit (PEP 508), e.g. eventhub-greeter\n"
    )
    good = run_eventhub("new-plugin", "eventhub-greeter", "--dir", "plugins")
    assert good.status == 0, good.stderr
    assert good.stdout.startswith("created plugins/eventhub-greeter")
    created = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert created == [
        "plugins/eventhub-greeter/.gitignore",
        "plugins/eventhub-greeter/README.md",
        "plugins/eventhub-greeter/eventhub_greeter/__init__.py",
        "plugins/eventhub-greeter/eventhub_greeter/py.typed",
        "plugins/eventhub-greeter/pyproject.toml",
        "plugins/eventhub-greeter/tests/test_greeter.py",
    ]
    assert run_eventhub("new-plugin", "eventhub-greeter", "--dir", "plugins").status == 2


def _pytest(venv: PluginVenv, folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(venv.python), "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=folder,
        env=venv.env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_new_plugin_installs_tests_lists_and_runs(plugin_venv: PluginVenv, tmp_path: Path) -> None:
    made = plugin_venv.eventhub("new-plugin", "eventhub-greeter", "--dir", str(tmp_path))
    assert made.returncode == 0, made.stderr
    folder = tmp_path / "eventhub-greeter"

    # Before it is installed, its own end-to-end test says what is missing.
    before = _pytest(plugin_venv, folder)
    assert before.returncode == 1, before.stdout
    assert "1 failed, 3 passed" in before.stdout
    assert "no installed plugin named 'greeter'" in before.stdout

    plugin_venv.install(folder)
    after = _pytest(plugin_venv, folder)
    assert after.returncode == 0, after.stdout + after.stderr
    assert "4 passed" in after.stdout

    listed = plugin_venv.eventhub("plugins", "--json")
    assert listed.returncode == 0, listed.stderr
    listed_file = json.loads(listed.stdout)[0]["file"]
    assert listed_file.endswith("eventhub_greeter/__init__.py")
    assert json.loads(listed.stdout) == [
        {
            "name": "greeter",
            "distribution": "eventhub-greeter",
            "version": "0.1.0",
            "status": "loaded",
            "reason": "",
            "hooks": ["configure", "execute"],
            "events": [">"],
            "order": 1,
            "file": listed_file,
        }
    ]

    ran = plugin_venv.eventhub("run")
    assert (ran.returncode, ran.stdout) == (0, "Hello, world! (from greeter)\n"), ran.stderr

    (tmp_path / "eventhub.toml").write_text('[plugins.greeter]\ngreeting = "Hi"\n')
    configured = plugin_venv.eventhub("run", "--set", "greeter.name=you", cwd=tmp_path)
    assert (configured.returncode, configured.stdout) == (0, "Hi, you! (from greeter)\n")

    (tmp_path / "eventhub.toml").write_text("[plugins.greeter]\nname = 1\n")
    wrong = plugin_venv.eventhub("run", cwd=tmp_path)
    assert wrong.returncode == 2
    assert "greeter.name: must be a string, not an integer 1" in wrong.stderr


def test_names_that_are_taken_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "eventhub_clash.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path / "elsewhere"))
    out = tmp_path / "out"
    out.mkdir()
    for name, message in [
        ("pluggy", "a distribution named 'pluggy' is installed already (pluggy "),
        ("eventhub-clash", "a module named 'eventhub_clash' is importable already"),
    ]:
        with pytest.raises(UsageError, match=re.escape(message)):
            create(name, out)
    assert list(out.iterdir()) == []
