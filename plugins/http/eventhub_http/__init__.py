"""eventhub-http: HTTP for eventhub, on the hub's own reactor.

    pip install ./plugins/http
    eventhub run                               # http on 127.0.0.1:8080 until Ctrl-C
    curl -d '{"id": 7}' localhost:8080/events/order.paid

Plugins add routes with the ``eventhub_http_routes(router)`` hook; the server
(``_server.py``) parses with httptools or h11 (``_parser.py``), the routes live
in ``_router.py``, requests and responses in ``_messages.py``, the hooks and the
built-in routes in ``_plugin.py``.
"""

from __future__ import annotations

from eventhub_http._messages import Headers, HTTPError, Request, Response
from eventhub_http._parser import ParseError, make_parser
from eventhub_http._plugin import SERVICE, HttpPlugin, add_hookspecs
from eventhub_http._router import Route, RouteConflict, Router
from eventhub_http._server import HttpFactory, HttpProtocol
from eventhub_http._settings import HttpSettings

__all__ = [
    "SERVICE",
    "HTTPError",
    "Headers",
    "HttpFactory",
    "HttpPlugin",
    "HttpProtocol",
    "HttpSettings",
    "ParseError",
    "Request",
    "Response",
    "Route",
    "RouteConflict",
    "Router",
    "add_hookspecs",
    "make_parser",
]
