"""The hooks: read ``[plugins.echo]``, then listen on the hub's reactor."""

from __future__ import annotations

import logging
import resource
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import eventhub
from eventhub_echo._service import EchoFactory
from eventhub_echo._settings import EchoSettings

if TYPE_CHECKING:
    from eventhub.reactor import Listener, Reactor

log = logging.getLogger("eventhub.echo")

SERVICE = "echo"


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
        raise_open_files_limit()
        # The log line below announces the service: from then on a SIGTERM must stop it
        # gracefully, even before the hub gets to reactor.run() (a no-op off the main thread).
        reactor.install_signal_handlers()
        self.factory = EchoFactory(settings, reactor)
        self.listener = reactor.listen_tcp(
            settings.port,
            hub.observe_factory(self.factory, SERVICE),
            backlog=settings.backlog,
            interface=settings.host,
        )
        log.info("listening on %s (%s backend)", self.listener.get_host(), reactor.backend)
        return self.listener


def raise_open_files_limit() -> None:
    """Raise the soft RLIMIT_NOFILE to the hard limit: every connection is a descriptor.

    The default soft limit (often 1024) would cap the service at about a
    thousand clients although the hard limit allows many more. The process
    serves; nothing it execs inherits a surprise, since it execs nothing.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == hard:
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError) as exc:  # hard may be RLIM_INFINITY, refused on macOS
        log.debug("could not raise the open files limit from %d: %s", soft, exc)
        return
    log.debug("raised the open files limit from %d to %d", soft, hard)
