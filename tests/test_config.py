"""eventhub.config: the config file, --set overrides, read_settings and where each value came from."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from eventhub import config
from eventhub.errors import ConfigError, UsageError


def test_config_file_overrides_and_errors(tmp_path: Path) -> None:
    (tmp_path / "eventhub.toml").write_text(
        '[eventhub]\norder = ["a"]\non_error = "stop"\n[plugins.echo]\nport = 8000\n'
    )
    loaded = config.load(cwd=tmp_path, overrides=["echo.port=9000", "echo.host=::1", "eventhub.backend=poll"])
    assert loaded.core == config.CoreSettings(order=("a",), on_error="stop", backend="poll")
    assert loaded.plugin_settings("echo") == {"port": 9000, "host": "::1"}
    assert loaded.plugin_settings("other") == {}
    with pytest.raises(UsageError, match=r"expected NAME\.key=value"):
        config.load(cwd=tmp_path, overrides=["noequals"])
    with pytest.raises(ConfigError, match=r"eventhub\.order\[1\]: must be a string"):
        config.load(cwd=tmp_path, overrides=["eventhub.order=['a', 2]"])
    with pytest.raises(UsageError, match="config file not found"):
        config.load(tmp_path / "missing.toml")
    (tmp_path / "bad.toml").write_text("[eventhub\n")
    with pytest.raises(UsageError, match=r"bad\.toml: invalid TOML.*line 1"):
        config.load(tmp_path / "bad.toml")


def test_read_settings_checks_types(caplog: pytest.LogCaptureFixture) -> None:
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Settings:
        port: int = 1
        ratio: float = 0.5
        name: str | None = None
        flag: bool = False

    assert config.read_settings(Settings, {"port": 2, "ratio": 1}, "plugins.x") == Settings(2, 1.0)
    wrong: list[tuple[dict[str, object], str]] = [
        ({"port": "80"}, "plugins.x.port: must be an integer, not a string '80'"),
        ({"port": True}, "plugins.x.port: must be an integer"),
        ({"flag": 1}, "plugins.x.flag: must be true or false"),
        ({"name": 3}, "plugins.x.name: must be a string"),
    ]
    for table, message in wrong:
        with pytest.raises(ConfigError) as info:
            config.read_settings(Settings, table, "plugins.x")
        assert str(info.value) == message or message in str(info.value)
    with caplog.at_level(logging.WARNING, "eventhub.config"):
        config.read_settings(Settings, {"colour": 1}, "plugins.x", source="eventhub.toml")
    assert "eventhub.toml: unknown key 'colour' in [plugins.x]" in caplog.text


def test_set_into_a_non_table_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "eventhub.toml").write_text("plugins = 5\n")
    with pytest.raises(ConfigError, match="plugins: must be a table, not an integer"):
        config.load(cwd=tmp_path, overrides=["echo.port=1"])
    (tmp_path / "eventhub.toml").write_text("[plugins]\necho = 5\n")
    with pytest.raises(ConfigError, match=r"plugins\.echo: must be a table"):
        config.load(cwd=tmp_path, overrides=["echo.port=1"])


def test_settings_remember_where_each_key_came_from(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Greeter:
        name: str = "world"
        times: int = 1

    (tmp_path / "eventhub.toml").write_text("[plugins.greeter]\ntypo = 1\n")
    loaded = config.load(cwd=tmp_path, overrides=["greeter.name=42", "greeter.bogus=1", "greeter.times=3"])
    settings = loaded.plugin_settings("greeter")
    assert dict(settings) == {"typo": 1, "name": 42, "bogus": 1, "times": 3}
    with caplog.at_level(logging.WARNING, "eventhub.config"):
        # --set greeter.name=42 means the text "42" for a string field; an int field keeps the int.
        assert config.read_settings(Greeter, settings, "greeter") == Greeter(name="42", times=3)
    messages = [r.getMessage() for r in caplog.records]
    assert f"{tmp_path / 'eventhub.toml'}: unknown key 'typo' in [plugins.greeter]" in messages
    assert "--set: unknown key 'bogus' in [plugins.greeter]" in messages
    with pytest.raises(ConfigError, match=r"^greeter\.times: must be an integer"):
        config.read_settings(
            Greeter, config.load(overrides=["greeter.times=many"]).plugin_settings("greeter"), "greeter"
        )
