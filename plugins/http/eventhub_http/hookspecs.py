"""The hook the http plugin adds for other plugins: ``eventhub_http_routes``.

Declared as entry point ``http`` of group ``eventhub.hookspecs``, so the hub adds
it before any plugin is validated, whatever order the plugins load in. When
registering plugins by hand (``Hub.register``), call
``eventhub_http.add_hookspecs(hub)`` first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from eventhub import hookspec

if TYPE_CHECKING:
    from eventhub_http._router import Router


@hookspec
def eventhub_http_routes(router: Router) -> None:
    """Add this plugin's routes: ``router.add("GET", "/orders/{id}", handler)``.

    Called once, when the http service starts. ``handler(request)`` is plain or
    ``async def`` and returns a ``Response`` (or bytes, str, or a JSON-able
    ``dict``/``list``). A route another plugin already added (same method and
    path shape) is refused with an error naming both plugins; the rest are served.
    """
