"""Unit tests of the core: registration, the chain, ordering, config, discovery."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import eventhub
from eventhub import config
from eventhub.chain import Chain, Link
from eventhub.discovery import discover
from eventhub.errors import ConfigError, OrderingError, PluginError, UsageError
from eventhub.ordering import Placement, order

SEED_SCRIPT = """
import eventhub
class MyClass(eventhub.Handler):
    def execute(self, event):
        print("执行了自定义execute方法")
hub = eventhub.Hub(); hub.register(MyClass); hub.run()
"""


def test_the_seed_script_runs() -> None:
    result = subprocess.run([sys.executable, "-c", SEED_SCRIPT], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "执行了自定义execute方法\n"


class Recorder(eventhub.Handler):
    def __init__(self) -> None:
        self.seen: list[eventhub.Event] = []

    def execute(self, event: eventhub.Event) -> None:
        self.seen.append(event)


def test_register_kinds_of_plugin() -> None:
    hub = eventhub.Hub()
    instance = Recorder()
    module = types.ModuleType("mod_plugin")
    calls: list[str] = []
    module.eventhub_execute = lambda event: calls.append(event.name)  # type: ignore[attr-defined]

    class PlainPlugin:
        @eventhub.hookimpl
        def eventhub_execute(self) -> None:  # may take fewer arguments than the spec
            calls.append("plain")

    assert hub.register(instance, "recorder") == "recorder"
    assert hub.register(module) == "mod_plugin"
    assert hub.register(PlainPlugin) == "PlainPlugin"
    assert hub.dispatch(eventhub.Event("ping", {"n": 1})) == ()
    assert instance.seen == [eventhub.Event("ping", {"n": 1})]
    assert sorted(calls) == ["ping", "plain"]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("class H(eventhub.Handler):\n    pass\nplugin = H", "does not override execute"),
        ("def eventhub_exectue(event):\n    pass\nplugin = None", "unknown hook 'eventhub_exectue'"),
        ("def eventhub_execute(event, nope):\n    pass\nplugin = None", "invalid hook implementation"),
        (
            "class W:\n    @eventhub.hookimpl(wrapper=True)\n    def eventhub_execute(self, event):\n"
            "        return (yield)\nplugin = W",
            "cannot be a wrapper",
        ),
        (
            "class Boom:\n    def __init__(self):\n        raise ValueError('no')\nplugin = Boom",
            "raised ValueError",
        ),
    ],
)
def test_a_refused_plugin_leaves_no_trace(source: str, message: str) -> None:
    hub = eventhub.Hub()
    hub.register(Recorder, "first")
    before_hooks = sorted(vars(hub.pm.hook))
    module = types.ModuleType("bad")
    module.eventhub = eventhub  # type: ignore[attr-defined]
    exec(source, module.__dict__)
    target = module.plugin if module.plugin is not None else module  # type: ignore[attr-defined]
    with pytest.raises(PluginError, match=message) as info:
        hub.register(target, "bad")
    assert "'bad'" in str(info.value)
    assert [name for name, _ in hub.pm.list_name_plugin()] == ["first"]
    assert sorted(vars(hub.pm.hook)) == before_hooks
    for caller_name in before_hooks:
        impls = getattr(hub.pm.hook, caller_name).get_hookimpls()
        assert all(impl.plugin_name == "first" for impl in impls)
    assert hub.bus.route("run").plugins == ("first",)
    hub.register(Recorder, "bad")  # the name is free again
    assert hub.bus.route("run").plugins == ("bad", "first")


def test_duplicate_name_is_refused() -> None:
    hub = eventhub.Hub()
    hub.register(Recorder, "x")
    with pytest.raises(PluginError, match="already registered"):
        hub.register(Recorder, "x")


def _chain_of(*names: str, log: list[str], failing: set[str] = frozenset()) -> Chain:  # type: ignore[assignment]
    def make(name: str) -> Link:
        def call(event: eventhub.Event) -> None:
            log.append(name)
            if name in failing:
                raise RuntimeError(f"{name} broke")

        return Link(name, call)

    chain = Chain()
    chain.set_links([make(name) for name in names])
    return chain


def test_chain_isolates_failures_and_reports_them(caplog: pytest.LogCaptureFixture) -> None:
    log: list[str] = []
    chain = _chain_of("a", "b", "c", "d", log=log, failing={"b", "d"})
    with caplog.at_level(logging.ERROR, "eventhub.chain"):
        failures = chain.dispatch(eventhub.Event("e"))
    assert log == ["a", "b", "c", "d"]
    assert [f.plugin for f in failures] == ["b", "d"]
    assert [str(f.error) for f in failures] == ["b broke", "d broke"]
    assert "plugin 'b' failed in eventhub_execute on event 'e': RuntimeError: b broke" in caplog.text
    assert caplog.records[0].exc_info is not None  # the traceback is logged
    assert chain.failures == list(failures)


def test_chain_stop_policy() -> None:
    log: list[str] = []
    chain = _chain_of("a", "b", "c", log=log, failing={"b"})
    chain.set_policy("stop")
    assert [f.plugin for f in chain.dispatch(eventhub.Event("e"))] == ["b"]
    assert log == ["a", "b"]
    with pytest.raises(ValueError, match="on_error"):
        chain.set_policy("explode")  # type: ignore[arg-type]


@given(st.lists(st.booleans(), max_size=12))
def test_chain_calls_every_handler_once_in_order(fails: list[bool]) -> None:
    log: list[str] = []
    names = [f"p{i}" for i in range(len(fails))]
    chain = _chain_of(*names, log=log, failing={n for n, f in zip(names, fails, strict=True) if f})
    failures = chain.dispatch(eventhub.Event("e"))
    assert log == names
    assert [f.plugin for f in failures] == [n for n, f in zip(names, fails, strict=True) if f]


def test_monitor_wraps_and_undoes() -> None:
    hub = eventhub.Hub()
    recorder = Recorder()
    hub.register(recorder, "rec")
    seen: list[tuple[str, str]] = []

    def monitor(plugin: str, hook: str, function):  # type: ignore[no-untyped-def]
        def wrapped(*args):  # type: ignore[no-untyped-def]
            seen.append((plugin, hook))
            return function(*args)

        return wrapped

    undo = hub.add_monitor(monitor)
    hub.dispatch(eventhub.Event("one"))
    undo()
    hub.dispatch(eventhub.Event("two"))
    assert seen == [("rec", "eventhub_execute")]
    assert [e.name for e in recorder.seen] == ["one", "two"]


def test_ordering_rules() -> None:
    free = Placement()
    assert order({"b": free, "a": free, "c": free}) == ["a", "b", "c"]
    assert order({"b": free, "a": Placement(rank=2), "c": Placement(rank=0)}) == ["c", "b", "a"]
    assert order({"a": Placement(after=["b"]), "b": free}) == ["b", "a"]
    assert order({"a": free, "b": Placement(before=["a"])}) == ["b", "a"]
    assert order({"a": free, "b": free, "c": free}, explicit=["c", "a", "missing"]) == ["c", "a", "b"]
    # Constraints naming absent plugins are ignored.
    assert order({"a": Placement(after=["ghost"])}) == ["a"]
    with pytest.raises(OrderingError, match=r"cycle .*a -> b -> a|cycle .*b -> a -> b"):
        order({"a": Placement(after=["b"]), "b": Placement(after=["a"])})
    with pytest.raises(OrderingError, match="cycle"):
        order({"a": Placement(after=["b"]), "b": free}, explicit=["a", "b"])


@given(
    st.dictionaries(
        st.sampled_from("abcdefgh"),
        st.tuples(st.lists(st.sampled_from("abcdefgh"), max_size=3), st.integers(0, 2)),
        max_size=8,
    )
)
def test_ordering_meets_every_constraint_or_reports_a_cycle(spec: dict[str, tuple[list[str], int]]) -> None:
    placements = {name: Placement(after=after, rank=rank) for name, (after, rank) in spec.items()}
    try:
        result = order(placements)
    except OrderingError:
        return
    assert sorted(result) == sorted(placements)
    position = {name: i for i, name in enumerate(result)}
    for name, (after, _) in spec.items():
        for other in after:
            if other in position and other != name:
                assert position[other] < position[name]
    assert result == order(dict(reversed(list(placements.items()))))  # install order does not matter


def test_hub_orders_handlers_by_declared_constraints() -> None:
    log: list[str] = []

    def handler(name: str, **attrs: object) -> type[eventhub.Handler]:
        def execute(self: eventhub.Handler, event: eventhub.Event) -> None:
            log.append(name)

        return type(name, (eventhub.Handler,), {"execute": execute, **attrs})

    hub = eventhub.Hub(config=config.Config(core=config.CoreSettings(order=("zed",))))
    hub.register(handler("alpha", eventhub_after=("beta",)))
    hub.register(handler("beta"))
    hub.register(handler("zed"))
    hub.dispatch(eventhub.Event("e"))
    assert log == ["zed", "beta", "alpha"]
    assert hub.plugin_order == ["zed", "beta", "alpha"]


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
    for table, message in [
        ({"port": "80"}, "plugins.x.port: must be an integer, not a string '80'"),
        ({"port": True}, "plugins.x.port: must be an integer"),
        ({"flag": 1}, "plugins.x.flag: must be true or false"),
        ({"name": 3}, "plugins.x.name: must be a string"),
    ]:
        with pytest.raises(ConfigError) as info:
            config.read_settings(Settings, table, "plugins.x")
        assert str(info.value) == message or message in str(info.value)
    with caplog.at_level(logging.WARNING, "eventhub.config"):
        config.read_settings(Settings, {"colour": 1}, "plugins.x", source="eventhub.toml")
    assert "eventhub.toml: unknown key 'colour' in [plugins.x]" in caplog.text


def _fake_dist(site: Path, dist: str, eps: dict[str, str], group: str = "eventhub.plugins") -> None:
    info = site / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    lines = "".join(f"{name} = {value}\n" for name, value in eps.items())
    (info / "entry_points.txt").write_text(f"[{group}]\n{lines}")


def test_discovery_cache_notices_installs_and_uninstalls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVENTHUB_CACHE_DIR", str(tmp_path / "cache"))
    site = tmp_path / "site"
    site.mkdir()
    _fake_dist(site, "one", {"one": "one_mod"})
    _fake_dist(site, "unrelated", {"x": "y"}, group="console_scripts")
    entries, conflicts = discover([str(site)])
    assert [(e.name, e.dist, e.version) for e in entries] == [("one", "one", "1.0")]
    assert conflicts == []
    cache = json.loads((tmp_path / "cache" / "entry-points.json").read_text())
    assert len(cache["entries"]) == 1

    # Warm: served from the cache (a dist-info edited in place is not re-read)...
    (site / "one-1.0.dist-info" / "entry_points.txt").write_text("[eventhub.plugins]\nrenamed = one_mod\n")
    assert [e.name for e in discover([str(site)])[0]] == ["one"]
    # ...but an install or uninstall changes the folder and is seen.
    time.sleep(0.01)
    _fake_dist(site, "two", {"two": "two_mod"})
    entries, conflicts = discover([str(site)])
    assert [e.name for e in entries] == ["renamed", "two"]
    assert conflicts == []
    os.rename(site / "two-1.0.dist-info", tmp_path / "gone")
    assert [e.name for e in discover([str(site)])[0]] == ["renamed"]


def test_discovery_reports_conflicts_and_survives_a_broken_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVENTHUB_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "entry-points.json").write_text("{not json")
    site = tmp_path / "site"
    _fake_dist(site, "a-dist", {"same": "a_mod"})
    _fake_dist(site, "b-dist", {"same": "b_mod"})
    entries, conflicts = discover([str(site)])
    assert entries == []
    assert [c.name for c in conflicts] == ["same"]
    assert "declared by a-dist 1.0 (a_mod) and b-dist 1.0 (b_mod)" in conflicts[0].describe()


def test_an_earlier_copy_of_a_distribution_shadows_a_later_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVENTHUB_CACHE_DIR", str(tmp_path / "cache"))
    _fake_dist(tmp_path / "user", "shadow", {"newname": "new_mod"})
    _fake_dist(tmp_path / "system", "shadow", {"oldname": "old_mod"})
    _fake_dist(tmp_path / "early", "quiet", {"unrelated": "x"}, group="console_scripts")
    _fake_dist(tmp_path / "late", "quiet", {"ghost": "ghost_mod"})
    for _ in range(2):  # cold, then from the cache
        entries, conflicts = discover([str(tmp_path / d) for d in ("user", "system", "early", "late")])
        assert [e.name for e in entries] == ["newname"]
        assert conflicts == []


def test_failures_are_blamed_on_the_right_plugin_even_when_handlers_share_a_function() -> None:
    def shared(event: eventhub.Event) -> None:
        raise RuntimeError("shared broke")

    chain = Chain()
    chain.set_links([Link("alpha", shared), Link("beta", shared)])
    assert [f.plugin for f in chain.dispatch(eventhub.Event("e"))] == ["alpha", "beta"]


def test_a_cycle_on_register_leaves_no_trace() -> None:
    hub = eventhub.Hub()
    hub.register(type("A", (Recorder,), {"eventhub_after": ("B",)}), "A")
    with pytest.raises(PluginError, match=r"plugin 'B': .*cycle"):
        hub.register(type("B", (Recorder,), {"eventhub_after": ("A",)}), "B")
    assert [name for name, _ in hub.pm.list_name_plugin()] == ["A"]
    assert "B" not in hub.records
    hub.register(Recorder, "C")  # the hub still works
    assert hub.bus.route("run").plugins == ("A", "C")


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
