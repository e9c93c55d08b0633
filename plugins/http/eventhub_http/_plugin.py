"""The hooks: read ``[plugins.http]``, collect the routes, listen; and the built-in routes."""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import eventhub
from eventhub import Event
from eventhub.endpoints import server_from_string
from eventhub.errors import PatternError, UsageError
from eventhub.names import check_name, check_pattern
from eventhub.protocol import Address
from eventhub_http import hookspecs
from eventhub_http._feeds import Feed, sse_envelope, sse_message
from eventhub_http._messages import HTTPError, Request, Response
from eventhub_http._metrics import Metrics
from eventhub_http._page import render_page
from eventhub_http._router import RouteConflict, Router
from eventhub_http._server import HttpFactory
from eventhub_http._settings import HttpSettings
from eventhub_http._websocket import accept

if TYPE_CHECKING:
    from eventhub.reactor import ListenerAPI, ReactorAPI

log = logging.getLogger("eventhub.http")

SERVICE = "http"
SOURCE = "http"  # the source of the events POST /events/{name} emits


def add_hookspecs(hub: eventhub.Hub) -> None:
    """Add ``eventhub_http_routes`` to ``hub`` (done for installed plugins by the entry point)."""
    caller = getattr(hub.pm.hook, "eventhub_http_routes", None)
    if caller is None or not caller.has_spec():
        hub.pm.add_hookspecs(hookspecs)


class HttpPlugin:
    """The http service as an eventhub plugin (entry point ``http``); one instance per hub."""

    def __init__(self) -> None:
        self.settings = HttpSettings()
        self.token = ""
        self.hub: eventhub.Hub | None = None
        self.router = Router()
        self.factory: HttpFactory | None = None
        self.listeners: list[ListenerAPI] = []
        self.metrics = Metrics()

    @eventhub.hookimpl
    def eventhub_configure(self, settings: Mapping[str, Any], hub: eventhub.Hub) -> None:
        self.settings = HttpSettings.from_table(settings, source=hub.config.source)
        self.token = self.settings.read_token()
        self.hub = hub
        add_hookspecs(hub)

    @eventhub.hookimpl
    def eventhub_start_services(self, hub: eventhub.Hub, reactor: ReactorAPI) -> list[ListenerAPI]:
        self.hub = hub
        self.router = self.collect_routes(hub)
        factory = self.factory = HttpFactory(self.settings, self.router, reactor)
        served = hub.observe_factory(factory, SERVICE)
        for text in self.settings.listen:  # endpoint strings: tcp:8080, tls:8443:certKey=..., unix:web.sock
            endpoint = server_from_string(reactor, text)
            listener = endpoint.listen(served)
            self.listeners.append(listener)
            where = (
                str(listener.get_host())
                if endpoint.kind == "tcp"
                else f"{endpoint.kind} {listener.get_host()}"
            )
            log.info("http: listening on %s (%s parser)", where, factory_parser(self.settings))
        reactor.add_system_event_trigger("before", "shutdown", factory.begin_shutdown)
        self.metrics.attach(hub, reactor)
        return self.listeners

    @eventhub.hookimpl
    def eventhub_shutdown(self) -> None:
        self.metrics.detach()

    @eventhub.hookimpl
    def eventhub_connection_made(self, service: str) -> None:
        self.metrics.connections[service] += 1

    @eventhub.hookimpl
    def eventhub_connection_lost(self, service: str, peer: Address) -> None:
        self.metrics.connections[service] -= 1

    def collect_routes(self, hub: eventhub.Hub) -> Router:
        """The built-in routes, then each plugin's (``eventhub_http_routes``, in plugin order)."""
        router = Router()
        self.add_routes(router.for_plugin(SERVICE))
        add_hookspecs(hub)
        position = {name: index for index, name in enumerate(hub.plugin_order)}
        impls = sorted(
            hub.pm.hook.eventhub_http_routes.get_hookimpls(),
            key=lambda impl: position.get(impl.plugin_name, len(position)),
        )
        for impl in impls:
            kwargs = {"router": router.for_plugin(impl.plugin_name)}
            try:
                impl.function(*[kwargs[name] for name in impl.argnames])
            except RouteConflict as error:
                log.error("http: %s; the first one is served", error)
            except Exception as error:
                log.error(
                    "http: plugin %r: eventhub_http_routes raised %s: %s",
                    impl.plugin_name,
                    type(error).__name__,
                    error,
                )
        return router

    # -- the built-in routes -------------------------------------------------

    def add_routes(self, router: Router) -> None:
        router.add("POST", "/events/{name}", self.post_event)
        router.add("GET", "/healthz", self.healthz)
        router.add("GET", "/events", self.events)
        router.add("GET", "/metrics", self.render_metrics)
        router.add("GET", "/ws", self.websocket)
        router.add("GET", "/", self.page)
        router.add("POST", "/emit", self.emit_form)

    def check_token(self, request: Request, form_token: str = "") -> None:
        """401 unless the request carries the configured bearer token (when there is one)."""
        if not self.token:
            return
        scheme, _, given = (request.headers.get("authorization") or "").partition(" ")
        if form_token:
            given = form_token
        elif scheme.lower() != "bearer":
            # EventSource and browsers' WebSocket cannot set a header: GET may pass ?access_token=.
            given = (request.query.get("access_token") or [""])[0] if request.method == "GET" else ""
        if not hmac.compare_digest(given.strip().encode(), self.token.encode()):
            raise HTTPError(401, "a bearer token is required", [("www-authenticate", "Bearer")])

    def post_event(self, request: Request) -> Response:
        """``POST /events/{name}`` with a JSON body: emit it; 202 with the event's id."""
        self.check_token(request)
        event = self.emit(request.params["name"], request.content or b"")
        return Response({"id": f"{event.id:032x}"}, 202)

    def emit(self, name: str, content: bytes | str) -> Event:
        """Emit ``name`` with ``content`` parsed as JSON (none when empty); a 400 for either one wrong."""
        try:
            check_name(name)
        except PatternError as error:
            raise HTTPError(400, str(error)) from None
        try:
            payload = json.loads(content) if content.strip() else None
        except ValueError as error:
            raise HTTPError(400, f"the payload is not JSON: {error}") from None
        assert self.hub is not None
        event = Event(name, payload, source=SOURCE)
        self.hub.dispatch(event)
        return event

    def page(self, request: Request) -> Response:
        """``GET /``: the page (see ``eventhub_http._page``)."""
        assert self.hub is not None
        html = render_page(self.hub, self.metrics, bool(self.token))
        return Response(html, headers=[("content-type", "text/html; charset=utf-8")])

    def emit_form(self, request: Request) -> Response:
        """``POST /emit``: the page's form (urlencoded name, payload, token); back to the page."""
        form = parse_qs((request.content or b"").decode("utf-8", "replace"), keep_blank_values=True)
        self.check_token(request, (form.get("token") or [""])[0])
        self.emit((form.get("name") or [""])[0].strip(), (form.get("payload") or [""])[0])
        return Response("emitted; back to the page\n", 303, [("location", "/")])

    def patterns(self, request: Request) -> list[str]:
        """The ``match`` query parameters (every event when there is none), each checked."""
        patterns = request.query.get("match") or [">"]
        for pattern in patterns:
            try:
                check_pattern(pattern)
            except UsageError as error:
                raise HTTPError(400, str(error)) from None
        return patterns

    def events(self, request: Request) -> Response:
        """``GET /events?match=order.*``: the matching events as Server-Sent Events."""
        self.check_token(request)
        assert self.hub is not None
        encode = sse_envelope if request.query.get("envelope") == ["1"] else sse_message
        feeds = self.factory.feeds if self.factory is not None else None
        feed = Feed(self.hub, self.patterns(request), encode, self.settings.sse_buffer, self.metrics, feeds)

        async def stream() -> AsyncIterator[bytes]:
            try:
                yield b": eventhub\n\n"
                while (data := await feed.get()) is not None:
                    yield data
            finally:
                feed.close()

        headers = [("content-type", "text/event-stream"), ("cache-control", "no-cache")]
        return Response(stream(), headers=headers)

    def websocket(self, request: Request) -> Response:
        """``GET /ws``: events both ways over a WebSocket (see ``eventhub_http._websocket``)."""
        self.check_token(request)
        assert self.hub is not None
        settings = self.settings
        feeds = self.factory.feeds if self.factory is not None else None
        return accept(request, self.hub, self.metrics, settings.sse_buffer, settings.ws_max_message, feeds)

    def render_metrics(self, request: Request) -> Response:
        """``GET /metrics``: Prometheus' text format (see ``eventhub_http._metrics`` for the series)."""
        assert self.hub is not None
        text = self.metrics.render(self.hub, self.hub.reactor, self.factory)
        return Response(text, headers=[("content-type", "text/plain; version=0.0.4; charset=utf-8")])

    def healthz(self, request: Request) -> Response:
        """200 while serving, 503 once stopping."""
        if self.factory is not None and self.factory.stopping:
            return Response("stopping\n", 503)
        return Response("ok\n")


def factory_parser(settings: HttpSettings) -> str:
    from eventhub_http._parser import has_httptools

    if settings.parser == "auto":
        return "httptools" if has_httptools() else "h11"
    return settings.parser
