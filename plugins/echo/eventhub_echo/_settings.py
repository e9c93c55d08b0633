"""The ``[plugins.echo]`` table: types checked by ``eventhub.config.read_settings``, ranges here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from eventhub.config import check_host, check_range, check_timeout, read_settings
from eventhub.endpoints import check_listen, tcp_endpoint
from eventhub.errors import ConfigError
from eventhub.reactor import HIGH_WATER

SECTION = "echo"


@dataclass(frozen=True)
class EchoSettings:
    """Where and how the echo service listens. Every field is a key of ``[plugins.echo]``.

    Out-of-range values raise ``ConfigError`` naming ``echo.KEY``, also when the
    dataclass is built directly in Python.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    # Endpoint strings ("tcp:8000", "tls:8443:certKey=...", "unix:echo.sock", "udp:8000");
    # empty: listen on host/port alone, as "tcp:PORT:interface=HOST" (see ``endpoints``).
    listen: tuple[str, ...] = ()
    backlog: int = 1024
    idle_timeout: float = 0.0  # seconds; 0: never close an idle connection
    max_connections: int = 0  # 0: unlimited
    max_per_address: int = 16  # connections at once from one address; 0: unlimited
    loopback_exempt: bool = True  # max_per_address does not apply to 127.0.0.0/8 and ::1
    socket_buffer: int = 65536  # SO_SNDBUF/SO_RCVBUF of each connection, bytes; 0: the system's (autotuned)
    write_buffer_high: int = HIGH_WATER  # the reactor's default
    write_buffer_low: int | None = None  # None: the transport's default (write_buffer_high // 4)

    @property
    def endpoints(self) -> tuple[str, ...]:
        """What to listen on: ``listen``, else ``host``/``port`` as one tcp endpoint."""
        return self.listen or (tcp_endpoint(self.host, self.port),)

    @classmethod
    def from_table(cls, table: Mapping[str, Any], source: str = "") -> EchoSettings:
        """Read a ``[plugins.echo]`` table (unknown keys are warned about, bad values raise)."""
        return read_settings(cls, table, SECTION, source=source)

    def __post_init__(self) -> None:
        check_host(f"{SECTION}.host", self.host)
        check_range(f"{SECTION}.port", self.port, 0, 65535)
        check_listen(f"{SECTION}.listen", self.listen)
        check_range(f"{SECTION}.backlog", self.backlog, 1, 65535)
        check_range(f"{SECTION}.max_connections", self.max_connections, 0)
        check_range(f"{SECTION}.max_per_address", self.max_per_address, 0)
        check_range(f"{SECTION}.socket_buffer", self.socket_buffer, 0, 1 << 30)
        check_timeout(f"{SECTION}.idle_timeout", self.idle_timeout)
        check_range(f"{SECTION}.write_buffer_high", self.write_buffer_high, 0)
        if self.write_buffer_low is not None:
            check_range(f"{SECTION}.write_buffer_low", self.write_buffer_low, 0)
            if self.write_buffer_low > self.write_buffer_high:
                raise ConfigError(
                    f"{SECTION}.write_buffer_low",
                    f"must not exceed write_buffer_high ({self.write_buffer_high}), "
                    f"not {self.write_buffer_low}",
                )
