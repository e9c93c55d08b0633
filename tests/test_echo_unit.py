"""The echo plugin in process: settings, the protocol and its factory, on fake transports and time.

The package is imported from its source folder (not installed: the test
environment has no eventhub plugins); the subprocess tests install it for real.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import pytest
from support import load_source_package

import eventhub
from eventhub.protocol import Address, Protocol
from eventhub.testing import Clock, MemoryListener, MemoryReactor, StringTransport

if TYPE_CHECKING:  # mypy reads the plugin's source; the tests import it from there too
    import eventhub_echo as echo
else:
    echo = load_source_package("echo", "eventhub_echo")


def serve(
    settings: echo.EchoSettings, clock: Clock | None = None
) -> tuple[echo.EchoFactory, MemoryListener, Clock]:
    clock = clock or Clock()
    reactor = MemoryReactor(clock)
    factory = echo.EchoFactory(settings, reactor)
    listener = reactor.listen_tcp(0, factory)
    assert isinstance(listener, MemoryListener)
    return factory, listener, clock


def peer(n: int) -> Address:
    return Address("127.0.0.1", 50000 + n)


def accepted(listener: MemoryListener, address: Address) -> tuple[Protocol, StringTransport]:
    """A connection from ``address`` that the factory must accept."""
    protocol, transport = listener.accept(address)
    assert protocol is not None and transport is not None, f"{address} refused"
    return protocol, transport


# -- settings --------------------------------------------------------------------


def test_the_defaults_are_the_seeds_port_on_loopback() -> None:
    settings = echo.EchoSettings.from_table({})
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.idle_timeout == 0 and settings.max_connections == 0
    assert (settings.write_buffer_high, settings.write_buffer_low) == (65536, None)


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "0.0.0.0", "::", "localhost", "fe80::1%lo"])
def test_hosts_that_are_accepted(host: str) -> None:
    assert echo.EchoSettings.from_table({"host": host}).host == host


def test_settings_are_read_and_converted() -> None:
    settings = echo.EchoSettings.from_table(
        {"port": 0, "idle_timeout": 2, "write_buffer_high": 1000, "write_buffer_low": 10}
    )
    assert settings.idle_timeout == 2.0 and isinstance(settings.idle_timeout, float)
    assert (settings.write_buffer_high, settings.write_buffer_low) == (1000, 10)


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ({"host": "not a host"}, "echo.host"),
        ({"host": ""}, "echo.host"),
        ({"host": "127.0.0.1:8000"}, "echo.host"),
        ({"port": "8000"}, "echo.port"),
        ({"port": 65536}, "echo.port"),
        ({"port": True}, "echo.port"),
        ({"backlog": 0}, "echo.backlog"),
        ({"idle_timeout": -0.5}, "echo.idle_timeout"),
        ({"idle_timeout": math.inf}, "echo.idle_timeout"),
        ({"idle_timeout": 1e-9}, "echo.idle_timeout"),  # would spin the CPU
        ({"idle_timeout": 0.09}, "echo.idle_timeout"),
        ({"max_per_address": -1}, "echo.max_per_address"),
        ({"socket_buffer": -1}, "echo.socket_buffer"),
        ({"max_connections": -1}, "echo.max_connections"),
        ({"write_buffer_high": -1}, "echo.write_buffer_high"),
        ({"write_buffer_low": -1}, "echo.write_buffer_low"),
        ({"write_buffer_high": 100, "write_buffer_low": 101}, "echo.write_buffer_low"),
    ],
)
def test_a_bad_value_is_a_config_error_naming_the_key(table: dict[str, Any], key: str) -> None:
    with pytest.raises(eventhub.ConfigError) as caught:
        echo.EchoSettings.from_table(table)
    assert caught.value.key == key
    assert caught.value.exit_status == 2


def test_the_plugin_reads_its_table_through_the_hub() -> None:
    hub = eventhub.Hub(config=eventhub.config.load(overrides=["echo.port=0", "echo.max_connections=7"]))
    plugin = echo.EchoPlugin()
    hub.register(plugin, name="echo")
    hub.configure()
    assert (plugin.settings.port, plugin.settings.max_connections) == (0, 7)


# -- the protocol ----------------------------------------------------------------


def test_echo_writes_back_what_it_receives_and_sets_the_water_marks() -> None:
    factory, listener, _ = serve(echo.EchoSettings(write_buffer_high=1000, write_buffer_low=100))
    protocol, transport = accepted(listener, peer(1))
    assert type(protocol) is echo.EchoProtocol  # no idle tracking when the timeout is off
    protocol.data_received(b"hello")
    protocol.data_received(b"\x00\xff")
    assert transport.value() == b"hello\x00\xff"
    assert transport.write_buffer_limits == (1000, 100)
    assert factory.connections == {protocol}
    protocol.connection_lost(None)
    assert factory.connections == set()


def test_without_write_buffer_low_the_transport_picks_the_low_water_mark() -> None:
    _, listener, _ = serve(echo.EchoSettings(write_buffer_high=1000))
    _, transport = accepted(listener, peer(1))
    assert transport.write_buffer_limits == (1000, 250)


def test_a_full_write_buffer_stops_reading_until_it_drains() -> None:
    _, listener, _ = serve(echo.EchoSettings())
    protocol, transport = accepted(listener, peer(1))
    protocol.pause_writing()
    assert transport.reading_paused
    protocol.resume_writing()
    assert not transport.reading_paused


def test_beyond_max_per_address_one_address_is_refused_until_one_of_its_ends() -> None:
    settings = echo.EchoSettings(max_per_address=2, loopback_exempt=False)
    factory, listener, _ = serve(settings)
    first, _ = accepted(listener, peer(1))
    listener.accept(peer(2))
    assert listener.accept(peer(3)) == (None, None)
    other, _ = listener.accept(Address("192.0.2.8", 1))  # another address is served
    assert other is not None
    first.connection_lost(None)
    accepted(listener, peer(4))
    assert factory.per_address.refused == 1


def test_loopback_is_exempt_from_max_per_address_by_default() -> None:
    _, listener, _ = serve(echo.EchoSettings(max_per_address=1))
    assert all(listener.accept(Address("127.0.0.1", port))[0] is not None for port in range(1, 6))


def test_beyond_max_connections_new_ones_are_refused_until_one_ends(caplog: pytest.LogCaptureFixture) -> None:
    factory, listener, _ = serve(echo.EchoSettings(max_connections=2))
    first, _ = accepted(listener, peer(1))
    listener.accept(peer(2))
    assert listener.accept(peer(3)) == (None, None)
    assert listener.accept(peer(4)) == (None, None)
    assert factory.refused == 2
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == ["max_connections (2) reached: closing new connections until one ends"]
    first.connection_lost(None)
    accepted(listener, peer(5))


# -- the idle sweep --------------------------------------------------------------


def test_an_idle_connection_is_closed_between_the_timeout_and_a_quarter_more() -> None:
    _, listener, clock = serve(echo.EchoSettings(idle_timeout=4.0))
    idle, idle_transport = accepted(listener, peer(1))
    busy, busy_transport = accepted(listener, peer(2))
    assert type(idle) is echo.IdleEchoProtocol
    clock.advance(0.5)
    idle.data_received(b"last words")  # idle from t=0.5 on
    while clock.seconds() < 0.5 + 4.0 - 0.01:
        busy.data_received(b"x")
        clock.advance(0.25)
        assert not idle_transport.closed, f"closed at t={clock.seconds()}, before the timeout"
    for _ in range(5):  # up to t = 0.5 + 4 * 1.25
        clock.advance(0.25)
        busy.data_received(b"x")
    assert idle_transport.disconnecting and not idle_transport.aborted
    assert not busy_transport.closed


def test_resume_writing_counts_as_activity() -> None:
    _, listener, clock = serve(echo.EchoSettings(idle_timeout=1.0))
    protocol, transport = accepted(listener, peer(1))
    for _ in range(20):
        clock.advance(0.25)
        protocol.pause_writing()
        protocol.resume_writing()  # the peer is reading what we send, slowly
    assert not transport.closed


def test_a_slowly_draining_write_buffer_counts_as_activity() -> None:
    class Draining(StringTransport):
        """The peer reads 1 KiB per tick of what is buffered, never enough to resume_writing."""

        buffered = 1 << 20

        def get_write_buffer_size(self) -> int:
            return self.buffered

    clock = Clock()
    factory = echo.EchoFactory(echo.EchoSettings(idle_timeout=1.0), MemoryReactor(clock))
    factory.do_start()
    protocol = factory.build_protocol(peer(1))
    assert protocol is not None
    transport = Draining(peer=peer(1))
    protocol.connection_made(transport)
    for _ in range(40):  # ten times the timeout
        clock.advance(0.25)
        transport.buffered -= 1024
    assert not transport.closed
    clock.advance(2)  # the peer stopped reading: now it is idle
    assert transport.aborted
    factory.do_stop()


def test_an_idle_connection_that_owes_data_is_aborted() -> None:
    class Stuck(StringTransport):
        def get_write_buffer_size(self) -> int:
            return 1 << 20  # the peer stopped reading

    clock = Clock()
    factory = echo.EchoFactory(echo.EchoSettings(idle_timeout=1.0), MemoryReactor(clock))
    factory.do_start()
    protocol = factory.build_protocol(peer(1))
    assert protocol is not None
    transport = Stuck(peer=peer(1))
    protocol.connection_made(transport)
    clock.advance(2)
    assert transport.aborted


def test_the_sweep_stops_with_the_listener() -> None:
    _, listener, clock = serve(echo.EchoSettings(idle_timeout=1.0))
    assert clock.pending()
    listener.stop_listening()
    assert not clock.pending()
