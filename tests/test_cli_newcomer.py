"""What a newcomer tripped on (issue 10): ``eventhub config``, ``-p``, JSON logs, clear messages."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from eventhub.pytest_plugin import RunEventhub


def test_config_prints_every_value_with_where_it_came_from(run_eventhub: RunEventhub, tmp_path: Path) -> None:
    (tmp_path / "eventhub.toml").write_text(
        '[eventhub]\non_error = "stop"\n\n[plugins.echo]\nport = 9000\nhost = "127.0.0.1"\n'
    )
    result = run_eventhub("config", "--set", "echo.port=9001", "--set", "eventhub.backend=poll")
    assert result.status == 0, result.stderr
    lines = result.stdout.splitlines()
    assert f"# the effective configuration; file: {tmp_path / 'eventhub.toml'}" in lines
    assert 'on_error = "stop"  # ' + str(tmp_path / "eventhub.toml") in lines
    assert 'backend = "poll"  # --set' in lines
    assert "order = []  # default" in lines and "workers = 1  # default" in lines
    assert "port = 9001  # --set" in lines
    assert 'host = "127.0.0.1"  # ' + str(tmp_path / "eventhub.toml") in lines
    listing = json.loads(run_eventhub("config", "--json").stdout)
    assert listing["tables"]["plugins.echo"]["port"] == {
        "value": 9000,
        "from": str(tmp_path / "eventhub.toml"),
    }


def test_p_runs_a_plugin_that_is_not_installed(run_eventhub: RunEventhub, tmp_path: Path) -> None:
    (tmp_path / "greeter_p1.py").write_text(
        textwrap.dedent("""\
        import eventhub

        class Greeter(eventhub.Handler):
            events = ("run",)

            def execute(self, event):
                print("hello from -p")
        """)
    )
    env = {"EVENTHUB_DISABLE_AUTOLOAD": "1"}
    result = run_eventhub("run", "-p", "greeter_p1:Greeter", env=env)
    assert (result.status, result.stdout) == (0, "hello from -p\n"), result.stderr
    listed = json.loads(run_eventhub("plugins", "--json", "-p", "greeter_p1:Greeter", env=env).stdout)
    assert [row["name"] for row in listed] == ["Greeter"] and listed[0]["file"].endswith("greeter_p1.py")


def test_a_bad_p_is_a_usage_error_naming_it(run_eventhub: RunEventhub) -> None:
    missing = run_eventhub("run", "-p", "no_such_module_xyz")
    assert (
        missing.status == 2 and "-p no_such_module_xyz: cannot import 'no_such_module_xyz'" in missing.stderr
    )
    wrong = run_eventhub("run", "-p", "json:nothere")
    assert wrong.status == 2 and "-p json:nothere: module 'json' has no 'nothere'" in wrong.stderr


def test_log_lines_as_json(run_eventhub: RunEventhub) -> None:
    result = run_eventhub("--log-format", "json", "run", env={"EVENTHUB_DISABLE_AUTOLOAD": "1"})
    (line,) = [json.loads(text) for text in result.stderr.splitlines() if text.startswith("{")]
    assert line["level"] == "WARNING" and line["logger"] == "eventhub.cli"
    assert "nothing to run" in line["message"] and isinstance(line["time"], float)


def test_a_misspelt_hook_gets_a_did_you_mean(run_eventhub: RunEventhub, tmp_path: Path) -> None:
    (tmp_path / "typo_p2.py").write_text("def eventhub_startu(hub):\n    pass\n")
    result = run_eventhub("run", "-p", "typo_p2", env={"EVENTHUB_DISABLE_AUTOLOAD": "1"})
    assert result.status == 2
    assert "unknown hook 'eventhub_startu' (did you mean 'eventhub_startup'?" in result.stderr


def test_warnings_name_where_the_mistake_is(run_eventhub: RunEventhub, tmp_path: Path) -> None:
    (tmp_path / "eventhub.toml").write_text('[eventhub]\norder = ["nothere"]\n')
    env = {"EVENTHUB_DISABLE_AUTOLOAD": "1"}
    result = run_eventhub("run", "--set", "ghost.x=1", env=env)
    assert "--set ghost.x: no loaded plugin is named 'ghost'" in result.stderr
    assert (
        f"{tmp_path / 'eventhub.toml'}: eventhub.order names 'nothere', which is no loaded plugin"
        in result.stderr
    )
    (tmp_path / "eventhub.toml").write_text("[eventhub]\non_error = 3\n")
    wrong = run_eventhub("run", env=env)
    assert wrong.status == 2
    assert (
        f"eventhub.on_error: must be one of 'continue', 'stop', not 3 (from {tmp_path / 'eventhub.toml'})"
        in (wrong.stderr)
    )


def test_nothing_to_run_is_said(run_eventhub: RunEventhub) -> None:
    env = {"EVENTHUB_DISABLE_AUTOLOAD": "1"}
    result = run_eventhub("run", env=env)
    assert (
        result.status == 0
        and "EVENTHUB_DISABLE_AUTOLOAD is set and no -p plugin given: nothing to run" in (result.stderr)
    )
    listed = run_eventhub("plugins", env=env)
    assert "EVENTHUB_DISABLE_AUTOLOAD is set: installed plugins are not loaded" in listed.stdout


def test_p_naming_a_module_of_handler_classes_says_which_to_name(
    run_eventhub: RunEventhub, tmp_path: Path
) -> None:
    # Registered as it is, the module would load and never run its handler.
    (tmp_path / "orders_p3.py").write_text(
        "import eventhub\n\nclass Orders(eventhub.Handler):\n    def execute(self, event):\n        pass\n"
    )
    result = run_eventhub("run", "-p", "orders_p3", env={"EVENTHUB_DISABLE_AUTOLOAD": "1"})
    assert result.status == 2
    assert "module 'orders_p3' has no hooks" in result.stderr and "(orders_p3:Orders)" in result.stderr
