"""The hooks: read ``[plugins.echo]``, then listen on the hub's reactor."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import eventhub
from eventhub_echo._service import SERVICE, EchoFactory
from eventhub_echo._settings import EchoSettings

if TYPE_CHECKING:
    from eventhub.reactor import Listener, Reactor

log = logging.getLogger("eventhub.echo")


class EchoPlugin:
    """The echo service as an eventhub plugin (entry point ``echo``); one instance per hub."""

    def __init__(self) -> None:
        self.settings = EchoSettings()
        self.factory: EchoFactory | None = None
        self.listener: Listener | None = None

    @eventhub.hookimpl
    def eventhub_configure(self, settings: Mapping[str, Any], hub: eventhub.Hub) -> None:
        self.settings = EchoSettings.from_table(settings, source=hub.config.source)

    @eventhub.hookimpl
    def eventhub_start_services(self, hub: eventhub.Hub, reactor: Reactor) -> Listener:
        settings = self.settings
        self.factory = EchoFactory(settings, reactor, hub)
        self.listener = reactor.listen_tcp(
            settings.port,
            hub.observe_factory(self.factory, SERVICE),
            backlog=settings.backlog,
            interface=settings.host,
            socket_buffer=settings.socket_buffer,
        )
        log.info("listening on %s (%s backend)", self.listener.get_host(), reactor.backend)
        return self.listener
