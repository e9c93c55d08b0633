"""End to end: real plugin distributions, pip-installed, run through the ``eventhub`` command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import PluginVenv, first_party, write_dist

GOOD = """
    import eventhub

    @eventhub.hookimpl
    def eventhub_configure(settings):
        print("good settings", dict(settings))

    @eventhub.hookimpl
    def eventhub_execute(event):
        print("good ran", event.name)
"""

FAILING = """
    import eventhub

    class Failing(eventhub.Handler):
        # Alphabetically it would run first; the constraints put it between.
        eventhub_after = ("good",)
        eventhub_before = ("hello",)

        def execute(self, event):
            print("failing starts", flush=True)
            raise RuntimeError("failing handler broke")
"""

TRIPWIRE = """
    import sys
    print("TRIPWIRE IMPORTED", file=sys.stderr)

    def eventhub_execute(event):
        print("tripwire ran")
"""


CYCLE = """
    import eventhub

    class A(eventhub.Handler):
        eventhub_after = ("cyc-b",)

        def execute(self, event):
            print("cycle ran")

    class B(A):
        eventhub_after = ("cyc-a",)
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> PluginVenv:
    src = tmp_path_factory.mktemp("dists")
    projects = [
        write_dist(src, "eventhub-good", {"good": "good_plugin"}, {"good_plugin.py": GOOD}),
        write_dist(
            src,
            "eventhub-broken",
            {"broken": "broken_plugin"},
            {"broken_plugin.py": "import missing_dependency_xyz\n"},
        ),
        write_dist(
            src,
            "eventhub-badsig",
            {"badsig": "badsig_plugin"},
            {"badsig_plugin.py": "def eventhub_execute(event, extra):\n    pass\n"},
        ),
        write_dist(
            src,
            "eventhub-lazy",
            {"lazy": "lazy_plugin:Lazy"},
            {"lazy_plugin.py": "import eventhub\nclass Lazy(eventhub.Handler):\n    pass\n"},
        ),
        write_dist(
            src,
            "eventhub-tripwire",
            {"tripwire": "tripwire_plugin"},
            {"tripwire_plugin.py": TRIPWIRE},
        ),
        write_dist(
            src,
            "eventhub-failing",
            {"failing": "failing_plugin:Failing"},
            {"failing_plugin.py": FAILING},
        ),
        write_dist(
            src,
            "eventhub-cycle",
            {"cyc-a": "cycle_plugin:A", "cyc-b": "cycle_plugin:B"},
            {"cycle_plugin.py": CYCLE},
        ),
        first_party("hello"),
    ]
    env = PluginVenv(tmp_path_factory.mktemp("venv"))
    env.install(*projects)
    return env


def test_broken_plugins_are_reported_and_the_rest_run(installed: PluginVenv) -> None:
    result = installed.eventhub("run")
    assert "good ran run" in result.stdout
    assert "tripwire ran" in result.stdout
    assert "执行了自定义execute方法" in result.stdout
    err = result.stderr
    assert "plugin 'broken' (eventhub-broken 1.0) failed to load" in err
    assert "missing module 'missing_dependency_xyz'" in err
    assert "plugin 'badsig' (eventhub-badsig 1.0) failed to load" in err and "extra" in err
    assert "lazy_plugin.Lazy does not override execute" in err
    assert "failing handler broke" in err
    # A handler failed: exit 1, after every other handler ran.
    assert result.returncode == 1, err


def test_plugins_in_an_order_cycle_fail_to_load_and_the_rest_run(installed: PluginVenv) -> None:
    result = installed.eventhub("run", "--only", "good,cyc-a,cyc-b")
    assert "good ran" in result.stdout and "cycle ran" not in result.stdout
    assert "plugin 'cyc-a' (eventhub-cycle 1.0) failed to load: plugin order constraints form a cycle" in (
        result.stderr
    )
    assert result.returncode == 0
    rows = {row["name"]: row for row in json.loads(installed.eventhub("plugins", "--json").stdout)}
    assert rows["cyc-b"]["status"] == "failed" and "cyc-b -> cyc-a -> cyc-b" in rows["cyc-b"]["reason"]


def test_chain_order_respects_declared_constraints(installed: PluginVenv) -> None:
    result = installed.eventhub("run", "--only", "good,failing,hello")
    out = result.stdout
    assert out.index("good ran") < out.index("failing starts") < out.index("执行了"), out
    assert (
        "plugin 'failing' failed in eventhub_execute on event 'run': RuntimeError: failing handler broke"
        in result.stderr
    )
    assert result.returncode == 1
    stopped = installed.eventhub("run", "--only", "good,failing,hello", "--set", "eventhub.on_error=stop")
    assert "good ran" in stopped.stdout and "failing starts" in stopped.stdout
    assert "执行了" not in stopped.stdout
    assert stopped.returncode == 1


def test_explicit_order_in_config(installed: PluginVenv, tmp_path: Path) -> None:
    (tmp_path / "eventhub.toml").write_text('[eventhub]\norder = ["tripwire", "hello", "good"]\n')
    result = installed.eventhub("run", "--only", "good,tripwire,hello", cwd=tmp_path)
    out = result.stdout
    assert out.index("tripwire ran") < out.index("执行了") < out.index("good ran"), out
    assert result.returncode == 0


def test_disabled_plugins_are_never_imported(installed: PluginVenv) -> None:
    for args, env in [
        (["--disable", "tripwire"], {}),
        (["--only", "good"], {}),
        ([], {"EVENTHUB_DISABLE_PLUGINS": "tripwire,failing"}),
        (["--only", "good,tripwire", "--disable", "tripwire"], {}),
    ]:
        result = installed.eventhub("run", *args, env=env)
        assert "TRIPWIRE IMPORTED" not in result.stderr, args
        assert "good ran" in result.stdout


def test_disable_autoload_loads_nothing(installed: PluginVenv) -> None:
    result = installed.eventhub("run", env={"EVENTHUB_DISABLE_AUTOLOAD": "1"})
    assert result.returncode == 0
    assert result.stdout == ""
    assert "TRIPWIRE" not in result.stderr


def test_unknown_plugin_name_is_a_usage_error(installed: PluginVenv) -> None:
    for flag in ("--only", "--disable"):
        result = installed.eventhub("run", flag, "good,nosuch")
        assert result.returncode == 2
        assert "no installed plugin named 'nosuch'" in result.stderr
        assert "Traceback" not in result.stderr


def test_strict_makes_a_load_failure_fatal(installed: PluginVenv) -> None:
    result = installed.eventhub("run", "--strict", "--disable", "failing")
    assert result.returncode == 1
    assert "--strict" in result.stderr and "broken" in result.stderr
    relaxed = installed.eventhub("run", "--disable", "failing")
    assert relaxed.returncode == 0, relaxed.stderr


def test_plugins_table_and_json(installed: PluginVenv) -> None:
    table = installed.eventhub("plugins", "--disable", "tripwire")
    assert table.returncode == 1  # some installed plugins are broken: said in the table, and by the status
    assert "failed to load" not in table.stderr  # once, in the table, not again as a log line
    rows = {line.split()[1]: line for line in table.stdout.splitlines()[1:]}
    assert "eventhub-good" in rows["good"] and "loaded" in rows["good"]
    assert "configure, execute" in rows["good"]
    assert "disabled" in rows["tripwire"]
    assert "failed: cannot import" in rows["broken"]
    listing = json.loads(installed.eventhub("plugins", "--json").stdout)
    by_name = {row["name"]: row for row in listing}
    assert by_name["hello"] == {
        "name": "hello",
        "distribution": "eventhub-hello",
        "version": "0.1.0",
        "status": "loaded",
        "reason": "",
        "hooks": ["execute"],
        "events": [">"],
        "order": by_name["hello"]["order"],
        "file": by_name["hello"]["file"],
    }
    assert isinstance(by_name["hello"]["order"], int) and by_name["hello"]["file"].endswith("__init__.py")
    assert by_name["lazy"]["status"] == "failed"


def test_plugin_settings_from_file_and_command_line(installed: PluginVenv, tmp_path: Path) -> None:
    (tmp_path / "eventhub.toml").write_text('[plugins.good]\ncolour = "red"\nsize = 3\n')
    result = installed.eventhub("run", "--only", "good", "--set", "good.size=4", cwd=tmp_path)
    assert "good settings {'colour': 'red', 'size': 4}" in result.stdout


def test_malformed_config_names_file_and_line(installed: PluginVenv, tmp_path: Path) -> None:
    (tmp_path / "eventhub.toml").write_text('[eventhub]\norder = ["a",\non_error = \n')
    result = installed.eventhub("run", cwd=tmp_path)
    assert result.returncode == 2
    assert "eventhub.toml: invalid TOML" in result.stderr and "line" in result.stderr
    assert "Traceback" not in result.stderr


def test_wrong_config_value_and_unknown_key(installed: PluginVenv, tmp_path: Path) -> None:
    (tmp_path / "eventhub.toml").write_text('[eventhub]\non_error = "explode"\ncolour = 1\n')
    result = installed.eventhub("run", "--only", "good", cwd=tmp_path)
    assert result.returncode == 2
    assert "eventhub.on_error: must be one of 'continue', 'stop', not 'explode'" in result.stderr
    (tmp_path / "eventhub.toml").write_text("[eventhub]\ncolour = 1\n")
    result = installed.eventhub("run", "--only", "good", cwd=tmp_path)
    assert result.returncode == 0
    assert "unknown key 'colour' in [eventhub]" in result.stderr and "eventhub.toml" in result.stderr


def test_pyproject_tool_table(installed: PluginVenv, tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.eventhub]\non_error = "stop"\n[tool.eventhub.plugins.good]\ncolour = "blue"\n'
    )
    result = installed.eventhub("run", "--only", "good", cwd=tmp_path)
    assert "good settings {'colour': 'blue'}" in result.stdout


def test_install_and_uninstall_are_noticed(plugin_venv: PluginVenv, tmp_path: Path) -> None:
    assert plugin_venv.eventhub("plugins", "--json").stdout.strip() == "[]"
    plugin_venv.install(first_party("hello"))
    names = [row["name"] for row in json.loads(plugin_venv.eventhub("plugins", "--json").stdout)]
    assert names == ["hello"]
    plugin_venv.uninstall("eventhub-hello")
    assert plugin_venv.eventhub("plugins", "--json").stdout.strip() == "[]"
    assert plugin_venv.eventhub("run").stdout == ""


def test_two_distributions_claiming_one_name(plugin_venv: PluginVenv, tmp_path: Path) -> None:
    module = "def eventhub_execute(event):\n    print('{0} ran')\n"
    plugin_venv.install(
        write_dist(tmp_path, "eventhub-dup-a", {"dup": "dup_a"}, {"dup_a.py": module.format("a")}),
        write_dist(tmp_path, "eventhub-dup-b", {"dup": "dup_b"}, {"dup_b.py": module.format("b")}),
    )
    result = plugin_venv.eventhub("run")
    assert "a ran" not in result.stdout and "b ran" not in result.stdout
    assert (
        "entry point 'dup' is declared by eventhub-dup-a 1.0 (dup_a) and eventhub-dup-b 1.0" in result.stderr
    )
    strict = plugin_venv.eventhub("run", "--strict")
    assert strict.returncode == 1


def test_version_and_help(plugin_venv: PluginVenv) -> None:
    from eventhub import __version__

    assert plugin_venv.eventhub("--version").stdout.strip() == f"eventhub {__version__}"
    for command in ([], ["run"], ["plugins"], ["new-plugin"]):
        result = plugin_venv.eventhub(*command, "--help")
        assert result.returncode == 0 and "usage: eventhub" in result.stdout
