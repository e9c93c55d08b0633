"""The hooks: read ``[plugins.chat]``, listen on the hub's reactor, say goodbye on shutdown."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import eventhub
from eventhub.config import check_host, check_range, check_timeout, read_settings
from eventhub.errors import ConfigError
from eventhub_chat._room import SERVICE, ChatRoom

if TYPE_CHECKING:
    from eventhub.reactor import ListenerAPI, ReactorAPI

log = logging.getLogger("eventhub.chat")

SECTION = "chat"  # what --set takes (chat.port=0), so errors name chat.KEY too


@dataclass(frozen=True)
class ChatSettings:
    """The ``[plugins.chat]`` table (or ``--set chat.KEY=VALUE``)."""

    host: str = "127.0.0.1"  # "0.0.0.0" or "::" to serve other machines too
    port: int = 8001  # 0: any free port (the log line says which)
    max_line_length: int = 1024  # bytes per line, without the newline
    max_clients: int = 100
    max_backlog: int = 256 * 1024  # bytes queued to one member before it is dropped
    rate_limit: float = 20.0  # lines per second per member, after a burst (0: no limit)
    rate_burst: int = 50  # lines a member may send at once before rate_limit applies
    idle_timeout: float = 600.0  # seconds of neither sending nor reading before a member is dropped; 0: never
    max_per_address: int = 5  # connections at once from one address; 0: unlimited
    loopback_exempt: bool = True  # max_per_address does not apply to 127.0.0.0/8 and ::1
    socket_buffer: int = 65536  # SO_SNDBUF/SO_RCVBUF of each connection, bytes; 0: the system's (autotuned)

    def __post_init__(self) -> None:
        # Checked here, at configure time, so a bad host or port is one line naming
        # the key (exit status 2) before the reactor ever sees it.
        check_host(f"{SECTION}.host", self.host)
        check_range(f"{SECTION}.port", self.port, 0, 65535)
        for key in ("max_line_length", "max_clients", "max_backlog", "rate_burst"):
            check_range(f"{SECTION}.{key}", getattr(self, key), 1)
        if not math.isfinite(self.rate_limit):
            raise ConfigError(
                f"{SECTION}.rate_limit", f"must be a number of lines per second, not {self.rate_limit}"
            )
        check_range(f"{SECTION}.rate_limit", self.rate_limit, 0)
        check_range(f"{SECTION}.max_per_address", self.max_per_address, 0)
        check_range(f"{SECTION}.socket_buffer", self.socket_buffer, 0, 1 << 30)
        check_timeout(f"{SECTION}.idle_timeout", self.idle_timeout)


class ChatPlugin:
    """The chat service as an eventhub plugin (entry point ``chat``)."""

    def __init__(self) -> None:
        self.settings = ChatSettings()
        self.room: ChatRoom | None = None
        self.listener: ListenerAPI | None = None

    @eventhub.hookimpl
    def eventhub_configure(self, settings: Mapping[str, Any], hub: eventhub.Hub) -> None:
        """Check the settings before anything runs: a wrong one stops ``eventhub run`` (status 2)."""
        self.settings = read_settings(ChatSettings, settings, SECTION, source=hub.config.source)

    @eventhub.hookimpl
    def eventhub_start_services(self, hub: eventhub.Hub, reactor: ReactorAPI) -> ListenerAPI:
        """Listen; returning the listener tells the hub to serve until SIGINT/SIGTERM."""
        room = self.room = ChatRoom(self.settings, reactor, hub)
        # observe_factory lets other plugins watch the connections (eventhub_connection_* hooks).
        factory = hub.observe_factory(room, SERVICE)
        settings = self.settings
        self.listener = reactor.listen_tcp(
            settings.port, factory, interface=settings.host, socket_buffer=settings.socket_buffer
        )
        # Members hear why they are disconnected, before the reactor closes the connections.
        reactor.add_system_event_trigger("before", "shutdown", room.close_all, "the server is shutting down")
        log.info("chat: listening on %s", self.listener.get_host())
        return self.listener
