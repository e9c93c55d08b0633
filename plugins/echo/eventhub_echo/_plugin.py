"""The hooks: read ``[plugins.echo]``, then listen on the hub's reactor."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import eventhub
from eventhub.endpoints import listen_all
from eventhub_echo._service import SERVICE, EchoDatagramProtocol, EchoFactory
from eventhub_echo._settings import EchoSettings

if TYPE_CHECKING:
    from eventhub.reactor import ListenerAPI, ReactorAPI

log = logging.getLogger("eventhub.echo")


class EchoPlugin:
    """The echo service as an eventhub plugin (entry point ``echo``); one instance per hub."""

    def __init__(self) -> None:
        self.settings = EchoSettings()
        self.factory: EchoFactory | None = None
        self.listener: ListenerAPI | None = None  # the first of ``listeners``
        self.listeners: list[ListenerAPI] = []

    @eventhub.hookimpl
    def eventhub_configure(self, settings: Mapping[str, Any], hub: eventhub.Hub) -> None:
        self.settings = EchoSettings.from_table(settings, source=hub.config.source)

    @eventhub.hookimpl
    def eventhub_start_services(self, hub: eventhub.Hub, reactor: ReactorAPI) -> list[ListenerAPI]:
        settings = self.settings
        self.factory = EchoFactory(settings, reactor, hub)
        self.listeners = listen_all(
            reactor,
            settings.endpoints,
            hub.observe_factory(self.factory, SERVICE),
            datagram=EchoDatagramProtocol,
            logger=log,
            service=SERVICE,
            backlog=settings.backlog,
            socket_buffer=settings.socket_buffer,
        )
        self.listener = self.listeners[0]
        return self.listeners
