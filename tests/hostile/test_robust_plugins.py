"""A plugin cannot end the process: sys.exit() and KeyboardInterrupt from plugin code are its failures.

Real plugin distributions, pip-installed, that call ``sys.exit`` or raise
``KeyboardInterrupt`` at import, in their constructor, in the lifecycle hooks
and in the network hooks; ``eventhub run`` reports each one in one line naming
the plugin, applies the usual policy, and keeps serving echo. The user's own
Ctrl-C still stops it.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import sys

import pytest
from echo_support import EchoServer
from support import PluginVenv, Served, first_party, write_dist

import eventhub
from eventhub._hub import Hub
from eventhub.errors import UserInterrupt, is_user_interrupt

AT_IMPORT = """
    import sys

    sys.exit(3)
"""

INTERRUPT_AT_IMPORT = """
    raise KeyboardInterrupt
"""

IN_CONSTRUCTOR = """
    import sys

    import eventhub


    class Plugin:
        def __init__(self):
            sys.exit("constructor says bye")

        @eventhub.hookimpl
        def eventhub_startup(self):
            print("never")
"""

IN_LIFECYCLE_HOOKS = """
    import sys

    import eventhub


    @eventhub.hookimpl
    def eventhub_startup():
        sys.exit(4)


    @eventhub.hookimpl
    def eventhub_start_services():
        raise KeyboardInterrupt


    @eventhub.hookimpl
    def eventhub_shutdown():
        sys.exit("shutdown says bye")
"""

IN_NETWORK_HOOKS = """
    import sys

    import eventhub


    @eventhub.hookimpl
    def eventhub_connection_made():
        sys.exit(6)


    @eventhub.hookimpl
    def eventhub_connection_data():
        raise KeyboardInterrupt


    @eventhub.hookimpl
    def eventhub_connection_lost():
        sys.exit(7)
"""

AT_THE_GATE = """
    import sys

    import eventhub


    @eventhub.hookimpl
    def eventhub_connection_accept():
        sys.exit(8)
"""

SLOW_STARTUP = """
    import sys
    import time

    import eventhub


    @eventhub.hookimpl
    def eventhub_startup():
        print("slow startup: waiting", file=sys.stderr, flush=True)
        # Short sleeps: a SIGINT that lands between Python's last check for
        # signals and the start of one long sleep is only seen when it ends.
        for _ in range(72_000):
            time.sleep(0.05)
"""

SLOW_HANDLER = """
    import sys
    import time

    import eventhub


    @eventhub.hookimpl
    def eventhub_execute(event):
        print("slow handler: waiting", file=sys.stderr, flush=True)
        for _ in range(72_000):
            time.sleep(0.05)
"""

IN_CONFIGURE = """
    import eventhub


    @eventhub.hookimpl
    def eventhub_configure():
        raise KeyboardInterrupt
"""

RAISES_IN_CONFIGURE = """
    import eventhub


    @eventhub.hookimpl
    def eventhub_configure():
        raise RuntimeError("configure broke")
"""

CONFIG_ERROR_IN_CONFIGURE = """
    import eventhub


    @eventhub.hookimpl
    def eventhub_configure():
        raise eventhub.ConfigError("config-error.size", "must be at most 3, not 4")
"""

PLUGINS = {
    "at-import": ("at_import", AT_IMPORT),
    "interrupt-at-import": ("interrupt_at_import", INTERRUPT_AT_IMPORT),
    "in-constructor": ("in_constructor:Plugin", IN_CONSTRUCTOR),
    "in-lifecycle": ("in_lifecycle", IN_LIFECYCLE_HOOKS),
    "in-network": ("in_network", IN_NETWORK_HOOKS),
    "at-the-gate": ("at_the_gate", AT_THE_GATE),
    "slow-startup": ("slow_startup", SLOW_STARTUP),
    "slow-handler": ("slow_handler", SLOW_HANDLER),
    "in-configure": ("in_configure", IN_CONFIGURE),
    "raises-in-configure": ("raises_in_configure", RAISES_IN_CONFIGURE),
    "config-error": ("config_error", CONFIG_ERROR_IN_CONFIGURE),
}


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> PluginVenv:
    root = tmp_path_factory.mktemp("misbehaving")
    venv = PluginVenv(root / "venv")
    dists = [
        write_dist(root / "src", f"eventhub-{name}", {name: value}, {f"{value.split(':')[0]}.py": source})
        for name, (value, source) in PLUGINS.items()
    ]
    venv.install(first_party("echo"), *dists)
    return venv


def _only(*names: str) -> tuple[str, str]:
    return "--only", ",".join(("echo", *names))


def _round_trip(server: EchoServer, payload: bytes = b"still serving\n") -> bytes:
    with server.connect() as sock:
        received = b""
        try:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)
            while chunk := sock.recv(4096):
                received += chunk
        except OSError:  # refused: the server closed first (a reset, or not connected any more)
            assert received == b""
    return received


def test_exits_and_interrupts_at_import_and_in_hooks_do_not_end_the_process(venv: PluginVenv) -> None:
    plugins = ("at-import", "interrupt-at-import", "in-constructor", "in-lifecycle", "in-network")
    with EchoServer(venv, *_only(*plugins)) as server:
        assert _round_trip(server) == b"still serving\n"
        server.wait_for(r"plugin 'in-network' failed in eventhub_connection_lost")
        assert _round_trip(server, b"and again\n") == b"and again\n"
        status, stderr = server.finish()
    assert status == 1, stderr  # the lifecycle hooks failed: the usual exit status
    expected = [
        r"plugin 'at-import' \(eventhub-at-import 1\.0\) failed to load: .*SystemExit: 3$",
        r"plugin 'interrupt-at-import' \(eventhub-interrupt-at-import 1\.0\) failed to load: "
        r".*KeyboardInterrupt",
        r"plugin 'in-constructor' \(eventhub-in-constructor 1\.0\) failed to load: "
        r".*SystemExit: constructor says bye$",
        r"plugin 'in-lifecycle' failed in eventhub_startup: SystemExit: 4$",
        r"plugin 'in-lifecycle' failed in eventhub_start_services: KeyboardInterrupt",
        r"plugin 'in-lifecycle' failed in eventhub_shutdown: SystemExit: shutdown says bye$",
        r"plugin 'in-network' failed in eventhub_connection_made \(service echo, .*\): SystemExit: 6;",
        r"plugin 'in-network' failed in eventhub_connection_data \(service echo, .*\): KeyboardInterrupt",
        r"plugin 'in-network' failed in eventhub_connection_lost \(service echo, .*\): SystemExit: 7;",
    ]
    for pattern in expected:
        assert re.search(pattern, stderr, re.MULTILINE), f"{pattern}\n{stderr}"
    assert "received SIGTERM, shutting down" in stderr


def test_eventhub_plugins_lists_them_as_failed(venv: PluginVenv) -> None:
    result = venv.eventhub("plugins", "--json", "--only", "at-import,interrupt-at-import,in-constructor")
    assert result.returncode == 1, result.stderr  # they failed to load: the status says so
    reasons = {row["name"]: (row["status"], row["reason"]) for row in json.loads(result.stdout)}
    assert reasons["at-import"] == ("failed", "raised while loading at_import: SystemExit: 3")
    assert reasons["interrupt-at-import"] == (
        "failed",
        "raised while loading interrupt_at_import: KeyboardInterrupt",
    )
    assert reasons["in-constructor"] == ("failed", "Plugin() raised SystemExit: constructor says bye")


def test_an_accept_hook_that_exits_refuses_the_connection_and_the_server_goes_on(venv: PluginVenv) -> None:
    with EchoServer(venv, *_only("at-the-gate")) as server:
        for _ in range(3):
            assert _round_trip(server) == b""  # refused: closed without an echo
        server.wait_for(r"plugin 'at-the-gate' failed in eventhub_connection_accept .*: SystemExit: 8")
        server.wait_for(r"echo: refused the connection from .*: plugin 'at-the-gate' failed")
        status, stderr = server.finish()
    assert status == 0, stderr  # network hook failures are the log's business


@pytest.mark.parametrize("plugin", ["slow-startup", "slow-handler"])
def test_the_users_ctrl_c_before_serving_still_stops_the_hub(venv: PluginVenv, plugin: str) -> None:
    """In a lifecycle hook or a chain handler: Ctrl-C is not taken for the plugin's failure."""
    with Served(venv, "run", *_only(plugin)) as server:
        server.wait_for(f"{plugin.replace('-', ' ')}: waiting")
        status, stderr = server.finish(signal.SIGINT)
    assert status == 130, stderr
    assert "eventhub: interrupted" in stderr
    assert "failed" not in stderr, stderr


def test_a_keyboard_interrupt_in_configure_is_the_plugins_failure(venv: PluginVenv) -> None:
    result = venv.eventhub("run", *_only("in-configure"))
    assert result.returncode == 1, result.stderr
    lines = result.stderr.splitlines()
    assert lines == ["eventhub: error: plugin 'in-configure' failed in eventhub_configure: KeyboardInterrupt"]


def test_an_exception_in_configure_is_one_line_with_the_traceback_at_verbose(venv: PluginVenv) -> None:
    result = venv.eventhub("run", *_only("raises-in-configure"))
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines() == [
        "eventhub: error: plugin 'raises-in-configure' failed in eventhub_configure: "
        "RuntimeError: configure broke"
    ]
    verbose = venv.eventhub("run", "-v", *_only("raises-in-configure"))
    assert verbose.returncode == 1, verbose.stderr
    assert "Traceback" in verbose.stderr and 'raise RuntimeError("configure broke")' in verbose.stderr
    assert verbose.stderr.splitlines()[-1] == result.stderr.splitlines()[-1]


def test_a_config_error_in_configure_is_one_line_and_exit_status_2(venv: PluginVenv) -> None:
    result = venv.eventhub("run", *_only("config-error"))
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == ["eventhub: error: config-error.size: must be at most 3, not 4"]


# -- in process: the rule that tells the user's Ctrl-C from a plugin's ---------------


class _ExitsInStartup:
    @eventhub.hookimpl
    def eventhub_startup(self) -> None:
        sys.exit(4)


class _InterruptsInStartup:
    @eventhub.hookimpl
    def eventhub_startup(self) -> None:
        raise KeyboardInterrupt


def test_sys_exit_in_a_hook_is_a_failure_of_the_plugin() -> None:
    hub = Hub()
    hub.register(_ExitsInStartup(), name="exits")
    hub.run()
    assert [(f.plugin, f.hook, type(f.error)) for f in hub.failures] == [
        ("exits", "eventhub_startup", SystemExit)
    ]


def test_a_keyboard_interrupt_is_the_users_under_the_default_handler_and_a_plugins_otherwise() -> None:
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert is_user_interrupt(KeyboardInterrupt())  # cannot be told apart: the user's
    assert is_user_interrupt(UserInterrupt())
    assert not is_user_interrupt(SystemExit(1))
    hub = Hub()
    hub.register(_InterruptsInStartup(), name="interrupts")
    with pytest.raises(KeyboardInterrupt):
        hub.run()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # as `eventhub run` and the reactor do
    try:
        assert not is_user_interrupt(KeyboardInterrupt())
        assert is_user_interrupt(UserInterrupt())
        hub = Hub()
        hub.register(_InterruptsInStartup(), name="interrupts")
        hub.run()
        assert [f.plugin for f in hub.failures] == ["interrupts"]
    finally:
        signal.signal(signal.SIGINT, previous)
