"""The contract between eventhub and its plugins: every hook, with when it is called.

A plugin implements any subset of these with ``@eventhub.hookimpl``; an
implementation may take fewer arguments than the specification names (pluggy
passes only those it asks for), never other ones. A plugin that implements an
``eventhub_*`` hook not listed here is refused at registration.

Lifecycle of ``eventhub run`` (and ``Hub.run()``), in order::

    eventhub_configure      once per plugin, with that plugin's own settings
    eventhub_startup        once
    event "run"             delivered to the handlers subscribed to it
    eventhub_start_services once; network plugins listen on hub.reactor here
    event "eventhub.started" once everything listens (only when serving)
    ... the reactor serves until SIGINT/SIGTERM: events flow (emit/subscribe) ...
    event "eventhub.stopping" as the hub begins to stop (only when serving)
    eventhub_shutdown       once, also after a failure

Events are not hooks: handlers subscribe to event names by pattern
(``Handler.events``, ``@eventhub.on``, ``Hub.subscribe``; see ``eventhub._bus``).
``eventhub_execute`` is the hook a ``Handler`` or a module implements to
receive every event.

The network hooks (``eventhub_connection_*``) are called by services built with
``Hub.observe_factory``, for every connection they serve. When no plugin
implements them, the service runs its protocol directly and they cost nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from eventhub._markers import hookspec

if TYPE_CHECKING:
    from eventhub._event import Event
    from eventhub._hub import Hub
    from eventhub.protocol import Address
    from eventhub.reactor import ReactorAPI


@hookspec
def eventhub_configure(settings: Mapping[str, Any], hub: Hub) -> None:
    """Read this plugin's settings, before anything runs.

    ``settings`` is the plugin's own table, ``[plugins.NAME]`` of the config file
    with ``--set NAME.key=value`` applied (an empty mapping when there is none).
    Each plugin gets only its own table. Raise ``eventhub.ConfigError`` naming
    the key for a value that is wrong: ``eventhub run`` then prints that one
    line and exits with status 2.
    """


@hookspec
def eventhub_startup(hub: Hub) -> None:
    """Called once after every plugin is configured, before the chain runs."""


@hookspec
def eventhub_execute(event: Event) -> None:
    """An event handler: called for every event the hub delivers (pattern ``>``).

    Implementations run in the chain's order (see ``eventhub._ordering``). The
    return value is ignored. An exception is logged with the plugin's name and
    handled by the ``on_error`` policy: ``continue`` (the default) runs the rest
    of the chain, ``stop`` ends it. A ``Handler`` subclass implements this hook
    through its ``execute(event)`` method, and receives only the events its
    ``events`` patterns name (every event when it declares none); functions
    marked ``@eventhub.on(pattern, ...)`` receive the events they name.
    """


@hookspec
def eventhub_start_services(hub: Hub, reactor: ReactorAPI) -> object | None:
    """Start network services on ``reactor`` (the hub's, created on demand).

    Return a true value (the listener, say) when a service was started: the
    hub then serves until SIGINT or SIGTERM. When no implementation returns
    one, ``run()`` returns right after the chain. Raise ``eventhub.ServiceError``
    for a service that cannot start (a port in use): ``eventhub run`` prints
    that one line and exits with status 1.
    """


@hookspec
def eventhub_shutdown(hub: Hub) -> None:
    """Called once when the hub stops: after the chain, or after serving."""


@hookspec(firstresult=True)
def eventhub_connection_accept(service: str, peer: Address) -> bool | None:
    """Return ``False`` to refuse a new connection to ``service`` from ``peer``.

    The first implementation that returns a non-``None`` value decides; a
    refused connection is closed at once and its protocol is never built.
    """


@hookspec
def eventhub_connection_made(service: str, peer: Address) -> None:
    """A connection to ``service`` from ``peer`` was accepted."""


@hookspec
def eventhub_connection_data(service: str, peer: Address, data: bytes) -> None:
    """``data`` arrived on a connection to ``service`` from ``peer``."""


@hookspec
def eventhub_connection_lost(service: str, peer: Address, reason: BaseException | None) -> None:
    """A connection ended; ``reason`` is ``None`` for a clean close."""
