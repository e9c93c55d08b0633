"""Tracing: one log line per plugin call, through the hub's monitor seam and pluggy's."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator, Mapping

import pytest
from support import PluginVenv, first_party

import eventhub
from eventhub import tracing
from eventhub.protocol import Address, Protocol, ServerFactory
from eventhub.testing import StringTransport

TIME = r"\[\d+\.\d{3} ms\]"


class Lifecycle:
    """A plugin with every lifecycle hook, the handler among them."""

    @eventhub.hookimpl
    def eventhub_configure(self, settings: Mapping[str, object]) -> None:
        pass

    @eventhub.hookimpl
    def eventhub_startup(self, hub: eventhub.Hub) -> None:
        pass

    @eventhub.hookimpl
    def eventhub_execute(self, event: eventhub.Event) -> str:
        return "done"

    @eventhub.hookimpl
    def eventhub_shutdown(self) -> None:
        pass


class Broken(eventhub.Handler):
    def execute(self, event: eventhub.Event) -> None:
        raise RuntimeError("handler broke")


class Caller(eventhub.Handler):
    """Records the name of the function that called it."""

    def __init__(self) -> None:
        self.callers: list[str] = []

    def execute(self, event: eventhub.Event) -> None:
        self.callers.append(sys._getframe(1).f_code.co_name)


class NetworkObserver:
    @eventhub.hookimpl
    def eventhub_connection_data(self, service: str, data: bytes) -> str:
        return "seen"


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.levelname}: {record.getMessage()}")


@pytest.fixture
def trace_lines() -> Iterator[list[str]]:
    """The messages logged to ``eventhub.trace`` (a handler of its own: the CLI may stop propagation)."""
    logger = logging.getLogger("eventhub.trace")
    handler = _Lines()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler.lines
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_every_lifecycle_call_is_logged_with_plugin_arguments_result_and_time(
    hub: eventhub.Hub, trace_lines: list[str]
) -> None:
    hub.register(Lifecycle(), "life")
    tracing.install(hub)
    hub.run()
    expected = [
        r"life: eventhub_configure\(settings=\{\}\) -> None",
        r"life: eventhub_startup\(hub=<Hub>\) -> None",
        r"life: eventhub_execute\(event=Event\(name='run', payload=None\)\) -> 'done'",
        r"life: eventhub_shutdown\(\) -> None",
    ]
    assert len(trace_lines) == len(expected), trace_lines
    for line, pattern in zip(trace_lines, expected, strict=True):
        assert re.fullmatch(f"INFO: {pattern} {TIME}", line), line


def test_an_exception_is_logged_and_still_reaches_the_error_policy(
    hub: eventhub.Hub, trace_lines: list[str]
) -> None:
    hub.register(Broken, "broken")
    hub.register(Lifecycle(), "life")
    tracing.install(hub)
    failures = hub.dispatch(eventhub.Event("tick", payload=b"x" * 100))
    assert [f.plugin for f in failures] == ["broken"]
    assert str(failures[0].error) == "handler broke"
    broken_line = (
        r"INFO: broken: eventhub_execute\(event=Event\(name='tick', payload=b'x+\.\.\.x+'\)\) "
        rf"raised RuntimeError\('handler broke'\) {TIME}"
    )
    assert re.fullmatch(broken_line, trace_lines[0]), trace_lines
    assert trace_lines[1].startswith("INFO: life: eventhub_execute(")  # the chain went on


def test_nothing_is_wrapped_without_tracing_and_undo_unwraps(
    hub: eventhub.Hub, trace_lines: list[str]
) -> None:
    caller = Caller()
    hub.register(caller, "caller")
    hub.dispatch(eventhub.Event("a"))
    undo = tracing.install(hub)
    hub.dispatch(eventhub.Event("b"))
    undo()
    hub.dispatch(eventhub.Event("c"))
    assert caller.callers == ["dispatch", "traced", "dispatch"]
    assert len(trace_lines) == 1 and "Event(name='b'" in trace_lines[0]


def test_network_hooks_of_an_observed_service_are_logged_with_their_plugin(
    hub: eventhub.Hub, trace_lines: list[str]
) -> None:
    hub.register(NetworkObserver(), "observer")
    tracing.install(hub)
    factory = ServerFactory()
    factory.protocol = Protocol
    observed = hub.observe_factory(factory, "chat")
    peer = Address("127.0.0.1", 50000)
    protocol = observed.build_protocol(peer)
    assert protocol is not None
    protocol.connection_made(StringTransport(peer=peer))  # no made hook: nothing logged
    protocol.data_received(b"y" * 1000)
    assert len(trace_lines) == 1, trace_lines
    pattern = (
        r"INFO: observer: eventhub_connection_data\(service='chat', "
        rf"data=b'y{{32}}'\.\.\. \(1000 bytes\)\) -> 'seen' {TIME}"
    )
    assert re.fullmatch(pattern, trace_lines[0]), trace_lines[0]


def test_summaries_stay_short() -> None:
    assert tracing.summarize("z" * 1000).endswith("zzz'") and len(tracing.summarize("z" * 1000)) < 70
    assert len(tracing.summarize(list(range(1000)))) < 40
    assert tracing.summarize(ValueError("bad")) == "ValueError('bad')"
    assert tracing.summarize(object()) == "<object>"


@pytest.fixture(scope="module")
def hello_venv(tmp_path_factory: pytest.TempPathFactory) -> PluginVenv:
    venv = PluginVenv(tmp_path_factory.mktemp("trace") / "venv")
    venv.install(first_party("hello"))
    return venv


@pytest.mark.parametrize(
    ("args", "env"),
    [(("run", "--trace"), {}), (("run",), {"EVENTHUB_TRACE": "1"})],
    ids=["--trace", "EVENTHUB_TRACE"],
)
def test_eventhub_run_traces_on_request(
    hello_venv: PluginVenv, args: tuple[str, ...], env: dict[str, str]
) -> None:
    result = hello_venv.eventhub(*args, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "执行了自定义execute方法\n"
    pattern = (
        r"^eventhub\.trace: INFO: hello: eventhub_execute\(event=Event\(name='run', payload=None\)\) "
        rf"-> None {TIME}$"
    )
    assert re.search(pattern, result.stderr, re.MULTILINE), result.stderr


def test_eventhub_run_does_not_trace_by_default(hello_venv: PluginVenv) -> None:
    result = hello_venv.eventhub("run", env={"EVENTHUB_TRACE": "0"})
    assert result.returncode == 0, result.stderr
    assert "eventhub.trace" not in result.stderr
