"""The ``[plugins.echo]`` table: types checked by ``eventhub.config.read_settings``, ranges here."""

from __future__ import annotations

import math
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from eventhub.config import check_range, read_settings
from eventhub.endpoints import check_listen, tcp_endpoint
from eventhub.errors import ConfigError
from eventhub.reactor.tcp import HIGH_WATER

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
        _check_host(self.host)
        check_range(f"{SECTION}.port", self.port, 0, 65535)
        check_listen(f"{SECTION}.listen", self.listen)
        check_range(f"{SECTION}.backlog", self.backlog, 1, 65535)
        check_range(f"{SECTION}.max_connections", self.max_connections, 0)
        check_range(f"{SECTION}.write_buffer_high", self.write_buffer_high, 0)
        if not math.isfinite(self.idle_timeout) or self.idle_timeout < 0:
            raise ConfigError(
                f"{SECTION}.idle_timeout",
                f"must be a number of seconds >= 0 (0 turns it off), not {self.idle_timeout:g}",
            )
        if self.write_buffer_low is not None:
            check_range(f"{SECTION}.write_buffer_low", self.write_buffer_low, 0)
            if self.write_buffer_low > self.write_buffer_high:
                raise ConfigError(
                    f"{SECTION}.write_buffer_low",
                    f"must not exceed write_buffer_high ({self.write_buffer_high}), "
                    f"not {self.write_buffer_low}",
                )


_HOST_NAME = re.compile(
    r"(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?"
)


def _check_host(host: str) -> None:
    """An IP address, or something shaped like a host name (resolved only when listening)."""
    if host == "" or _HOST_NAME.fullmatch(host):
        return
    try:
        socket.getaddrinfo(host, None, flags=socket.AI_NUMERICHOST | socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError, ValueError):
        raise ConfigError(f"{SECTION}.host", f"must be an IP address or a host name, not {host!r}") from None
