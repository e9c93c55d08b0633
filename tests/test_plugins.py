"""Registering plugins on a Hub: what is accepted, what is refused (leaving no trace), the monitor seam."""

from __future__ import annotations

import types

import pytest

import eventhub
from eventhub.errors import PluginError

SEED_SCRIPT = """
import eventhub
class MyClass(eventhub.Handler):
    def execute(self, event):
        print("执行了自定义execute方法")
hub = eventhub.Hub(); hub.register(MyClass); hub.run()
"""


def test_the_seed_script_runs(capsys: pytest.CaptureFixture[str]) -> None:
    exec(SEED_SCRIPT, {"__name__": "seed"})
    assert capsys.readouterr().out == "执行了自定义execute方法\n"


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
    target = module.plugin if module.plugin is not None else module
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


def test_a_cycle_on_register_leaves_no_trace() -> None:
    hub = eventhub.Hub()
    hub.register(type("A", (Recorder,), {"eventhub_after": ("B",)}), "A")
    with pytest.raises(PluginError, match=r"plugin 'B': .*cycle"):
        hub.register(type("B", (Recorder,), {"eventhub_after": ("A",)}), "B")
    assert [name for name, _ in hub.pm.list_name_plugin()] == ["A"]
    assert "B" not in hub.records
    hub.register(Recorder, "C")  # the hub still works
    assert hub.bus.route("run").plugins == ("A", "C")


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
