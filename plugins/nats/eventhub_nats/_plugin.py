"""The hooks: read ``[plugins.nats]``, start the bridge with the services, stop it at shutdown."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import eventhub
from eventhub_nats._bridge import Bridge
from eventhub_nats._settings import NatsSettings

if TYPE_CHECKING:
    from eventhub.reactor import ReactorAPI

log = logging.getLogger("eventhub.nats")


class NatsPlugin:
    """The NATS bridge as an eventhub plugin (entry point ``nats``)."""

    def __init__(self) -> None:
        self.settings = NatsSettings()
        self.bridge: Bridge | None = None

    @eventhub.hookimpl
    def eventhub_configure(self, settings: Mapping[str, Any], hub: eventhub.Hub) -> None:
        self.settings = NatsSettings.from_table(settings, source=hub.config.source)

    @eventhub.hookimpl
    def eventhub_start_services(self, hub: eventhub.Hub, reactor: ReactorAPI) -> Bridge | None:
        settings = self.settings
        if not settings.publish and not settings.subscribe:
            log.warning("nothing to bridge: set nats.publish and/or nats.subscribe to event patterns")
            return None
        self.bridge = Bridge(settings, hub, reactor)
        reactor.add_system_event_trigger("before", "shutdown", self.bridge.stop_receiving)
        self.bridge.start()
        mode = f"JetStream stream {settings.stream!r}" if settings.stream else "core NATS (at most once)"
        log.info(
            "bridging to %s over %s: out %s, in %s",
            ", ".join(settings.servers),
            mode,
            ", ".join(settings.publish) or "-",
            ", ".join(settings.subscribe) or "-",
        )
        return self.bridge

    @eventhub.hookimpl
    def eventhub_shutdown(self) -> None:
        if self.bridge is not None:
            self.bridge.stop()
            self.bridge = None
