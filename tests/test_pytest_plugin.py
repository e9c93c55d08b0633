"""The fixtures eventhub ships to plugin authors (eventhub/pytest_plugin.py, loaded through pytest11)."""

from __future__ import annotations

import ast
import logging
import os
import sys
import textwrap
from pathlib import Path

import pytest

import eventhub
from eventhub.protocol import Protocol
from eventhub.pytest_plugin import RunEventhub
from eventhub.testing import Clock, MemoryReactor, StringTransport

pytest_plugins = ["pytester"]

GREET = """
    import eventhub

    class Greet(eventhub.Handler):
        def execute(self, event):
            print("greetings from", event.name)
"""


@pytest.fixture
def greet_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A plugin ``greet`` visible to this process: a module and its dist-info on sys.path."""
    site = tmp_path / "site"
    dist_info = site / "eventhub_greet-1.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: eventhub-greet\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text("[eventhub.plugins]\ngreet = greet_plugin:Greet\n")
    (site / "greet_plugin.py").write_text(textwrap.dedent(GREET))
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("EVENTHUB_CACHE_DIR", str(tmp_path / "cache"))
    return "greet"


def _runpytest(pytester: pytest.Pytester) -> pytest.RunResult:
    # Hypothesis' plugin costs ~0.6 s per session and plays no part here.
    return pytester.runpytest("-p", "no:hypothesispytest", "-p", "no:cacheprovider")


# -- hub, clock, memory_reactor, string_transport ---------------------------------


def test_hub_loads_no_plugin_even_when_one_is_installed(greet_installed: str, hub: eventhub.Hub) -> None:
    assert eventhub.Hub(autoload=True).plugin_order == [greet_installed]  # it is installed
    assert hub.plugin_order == []


def test_hub_runs_what_the_test_registers(hub: eventhub.Hub, capsys: pytest.CaptureFixture[str]) -> None:
    hub.register(_Greet)
    hub.run()
    assert capsys.readouterr().out == "greetings from run\n"


class _Greet(eventhub.Handler):
    def execute(self, event: eventhub.Event) -> None:
        print("greetings from", event.name)


def test_hub_closes_the_reactor_the_test_made(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        from eventhub import UsageError

        MADE = []

        def test_makes_a_reactor(hub):
            MADE.append(hub.reactor)

        def test_it_was_closed():
            with pytest.raises(UsageError, match="finished"):
                MADE[0].run()
        """
    )
    _runpytest(pytester).assert_outcomes(passed=2)


def test_memory_reactor_runs_on_the_clock_fixture(clock: Clock, memory_reactor: MemoryReactor) -> None:
    fired: list[float] = []
    memory_reactor.call_later(5, lambda: fired.append(clock.seconds()))
    clock.advance(4.9)
    assert fired == []
    clock.advance(0.1)
    assert fired == [5.0]


def test_string_transport_records_what_a_protocol_writes(string_transport: StringTransport) -> None:
    class Shout(Protocol):
        def data_received(self, data: bytes) -> None:
            assert self.transport is not None
            self.transport.write(data.upper())
            self.transport.lose_connection()

    protocol = Shout()
    protocol.connection_made(string_transport)
    protocol.data_received(b"hi")
    assert string_transport.value() == b"HI"
    assert string_transport.disconnecting


# -- reactor ---------------------------------------------------------------------

ECHO_ROUND_TRIP = """
    import socket
    from eventhub.protocol import Protocol, ServerFactory

    class EchoOnceAndStop(Protocol):
        def data_received(self, data):
            self.transport.write(data)
            self.transport.lose_connection()

        def connection_lost(self, reason):
            self.factory.reactor.stop()

    def test_round_trip(reactor):
        factory = ServerFactory()
        factory.protocol = EchoOnceAndStop
        factory.reactor = reactor
        listener = reactor.listen_tcp(0, factory)
        with socket.create_connection(("127.0.0.1", listener.get_host().port)) as client:
            client.sendall(b"ping")
            reactor.run(install_signal_handlers=False)
            assert client.recv(100) == b"ping"
"""


def test_reactor_passes_a_test_that_cleans_up(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(textwrap.dedent(ECHO_ROUND_TRIP))
    _runpytest(pytester).assert_outcomes(passed=1)


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ("LEAKS.append(socket.socket())", r"file descriptor \d+ \(socket:\[\d+\]\)"),
        ("LEAKS.append(open(__file__))", r"file descriptor \d+ \(.*test_leak\.py\)"),
        (
            "factory = ServerFactory(); factory.protocol = Protocol; reactor.listen_tcp(0, factory)",
            r"listener still listening: <Listener 127\.0\.0\.1:\d+ ServerFactory>",
        ),
        ("reactor.call_later(60, print, 'late')", r"timer still pending: <TimerHandle pending .*print"),
        ("reactor.call_soon(print, 'soon')", r"call queued but never run: <built-in function print>"),
        (
            "async def forever():\n                await reactor.sleep(60)\n"
            "            reactor.spawn(forever(), name='forever')",
            r"task still pending: <Task 'forever' pending>",
        ),
    ],
    ids=["socket", "file", "listener", "timer", "call_soon", "task"],
)
def test_reactor_errors_on_what_a_test_leaves_behind(
    pytester: pytest.Pytester, body: str, complaint: str
) -> None:
    pytester.makepyfile(
        test_leak=f"""
        import socket
        from eventhub.protocol import Protocol, ServerFactory

        LEAKS = []

        def test_leaks(reactor):
            {body}
        """
    )
    result = _runpytest(pytester)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.re_match_lines([r".*ERROR at teardown of test_leaks.*", rf"\s+{complaint}"])


def test_reactor_does_not_pile_a_leak_report_on_a_failed_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import socket
        LEAKS = []

        def test_fails_and_leaks(reactor):
            LEAKS.append(socket.socket())
            assert False, "the real problem"
        """
    )
    result = _runpytest(pytester)
    result.assert_outcomes(failed=1)
    assert "left behind" not in result.stdout.str()


def test_reactor_backend_can_be_parametrized_in_a_conftest(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture(params=["select", "poll"])
        def reactor_backend(request):
            return request.param
        """
    )
    pytester.makepyfile(
        """
        def test_backend(reactor, reactor_backend):
            assert reactor.backend == reactor_backend
        """
    )
    _runpytest(pytester).assert_outcomes(passed=2)


# -- run_eventhub ----------------------------------------------------------------


def test_run_eventhub_runs_an_installed_plugin_and_captures_its_output(
    greet_installed: str, run_eventhub: RunEventhub
) -> None:
    result = run_eventhub("run", "--trace", "--only", greet_installed)
    assert (result.status, result.stdout) == (0, "greetings from run\n"), result.stderr
    assert "eventhub.trace: INFO: greet: eventhub_execute(event=Event(name='run'" in result.stderr


def test_run_eventhub_reports_usage_errors_as_status_2(run_eventhub: RunEventhub) -> None:
    result = run_eventhub("run", "--only", "nowhere")
    assert result.status == 2
    assert "no installed plugin named 'nowhere'" in result.stderr
    assert run_eventhub("run", "--no-such-option").status == 2
    version = run_eventhub("--version")
    assert (version.status, version.stdout) == (0, f"eventhub {eventhub.__version__}\n")


def test_run_eventhub_hides_the_outer_environment(
    run_eventhub: RunEventhub, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With autoload disabled, --only would not be checked against the installed plugins.
    monkeypatch.setenv("EVENTHUB_DISABLE_AUTOLOAD", "1")
    assert run_eventhub("run", "--only", "nowhere").status == 2
    assert run_eventhub("run", "--only", "nowhere", env={"EVENTHUB_DISABLE_AUTOLOAD": "1"}).status == 0
    assert os.environ["EVENTHUB_DISABLE_AUTOLOAD"] == "1"


def test_run_eventhub_works_in_the_tests_tmp_path(run_eventhub: RunEventhub, tmp_path: Path) -> None:
    (tmp_path / "eventhub.toml").write_text("[eventhub\n")
    result = run_eventhub("run")
    assert result.status == 2
    assert f"{tmp_path / 'eventhub.toml'}: invalid TOML" in result.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert run_eventhub("run", cwd=elsewhere).status == 0


def test_run_eventhub_leaves_logging_as_it_found_it(run_eventhub: RunEventhub) -> None:
    logger = logging.getLogger("eventhub")
    before = (list(logger.handlers), logger.level, logger.propagate)
    assert run_eventhub("run", "-v").status == 0
    assert (list(logger.handlers), logger.level, logger.propagate) == before


def test_the_plugin_module_imports_no_eventhub_module_of_its_own(pytester: pytest.Pytester) -> None:
    # pytest imports it in every run where eventhub is installed.
    code = "import sys, eventhub.pytest_plugin; print(sorted(sys.modules))"
    result = pytester.run(sys.executable, "-c", code)
    assert result.ret == 0, result.errlines
    loaded = set(ast.literal_eval(result.outlines[-1]))
    assert "eventhub.pytest_plugin" in loaded
    for module in ("eventhub.reactor._loop", "eventhub.testing", "eventhub._cli", "eventhub.tracing"):
        assert module not in loaded
