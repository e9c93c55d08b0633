"""``[plugins.http]``: where to listen, the limits, the token, the parser."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from eventhub.config import MIN_TIMEOUT, check_range, read_settings
from eventhub.endpoints import check_listen
from eventhub.errors import ConfigError

SECTION = "http"


@dataclass(frozen=True)
class HttpSettings:
    """The ``[plugins.http]`` table (or ``--set http.KEY=VALUE``)."""

    listen: tuple[str, ...] = ("tcp:8080",)  # "tcp:PORT" (127.0.0.1) or "tcp:PORT:interface=HOST"
    parser: Literal["auto", "httptools", "h11"] = "auto"
    max_header_size: int = 16 * 1024  # bytes of request line and headers (431 past it)
    max_body: int = 1024 * 1024  # bytes of request body (413 past it)
    header_timeout: float = 10.0  # seconds from a request's first byte to its complete head (408)
    body_timeout: float = 30.0  # seconds from a request's head (or its 100 Continue) to its body's end (408)
    keep_alive_timeout: float = 15.0  # seconds a connection may sit idle between requests
    max_connections: int = 1000  # beyond it, new connections get a 503
    max_per_address: int = 16  # connections at once from one address (a 503 past it); 0: unlimited
    loopback_exempt: bool = True  # max_per_address does not apply to 127.0.0.0/8, ::1 and UNIX sockets
    token: str = ""  # bearer token required by /events and /ws ("" with no token_file: none)
    token_file: str = ""  # a file holding the token (surrounding whitespace dropped)
    sse_buffer: int = 1024 * 1024  # bytes queued to one slow SSE/WebSocket client before it is cut off
    ws_max_message: int = 64 * 1024  # bytes of one WebSocket message from a client (closed with 1009 past it)

    def __post_init__(self) -> None:
        for key in ("max_header_size", "max_body", "max_connections", "sse_buffer", "ws_max_message"):
            check_range(f"{SECTION}.{key}", getattr(self, key), 1)
        check_range(f"{SECTION}.max_per_address", self.max_per_address, 0)
        for key in ("header_timeout", "body_timeout", "keep_alive_timeout"):
            # Never off (0) here, nor under every timeout's floor: its timer would keep the loop busy.
            check_range(f"{SECTION}.{key}", getattr(self, key), MIN_TIMEOUT, 86400.0)
        if not self.listen:
            raise ConfigError(f"{SECTION}.listen", "names no address")
        check_listen(f"{SECTION}.listen", self.listen)
        for text in self.listen:
            if text.partition(":")[0] == "udp":
                raise ConfigError(
                    f"{SECTION}.listen", f"{text!r}: HTTP needs a stream endpoint (tcp, tls, unix)"
                )
        if self.token and self.token_file:
            raise ConfigError(f"{SECTION}.token", "set token or token_file, not both")

    @classmethod
    def from_table(cls, table: Mapping[str, Any], source: str = "") -> HttpSettings:
        return read_settings(cls, table, SECTION, source=source)

    def read_token(self) -> str:
        """The token, read from ``token_file`` when that is set ("" for none)."""
        if not self.token_file:
            return self.token
        try:
            token = Path(self.token_file).read_text(encoding="utf-8").strip()
        except OSError as error:
            raise ConfigError(f"{SECTION}.token_file", f"cannot be read: {error}") from None
        if not token:
            raise ConfigError(f"{SECTION}.token_file", f"{self.token_file} is empty")
        return token
