"""The HTTP peers of eventhub-http, each serving the benchmark's two routes on 127.0.0.1.

    python -m benchmarks.servers.http uvicorn-httptools|uvicorn-h11|aiohttp|twisted

``GET /hello`` answers ``hello\\n`` (text/plain); ``POST /events/x`` parses its
JSON body, hands it to a no-op function and answers 202 with a JSON id, as
eventhub-http's ``POST /events/{name}`` does for an event with a no-op
handler subscribed. Each prints its port alone on a line once it listens.
(eventhub-http itself is served by ``eventhub run``: see ``benchmarks.http``.)
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
from typing import Any

from benchmarks.servers._common import BACKLOG, announce, parser, raise_nofile

HELLO = b"hello\n"
KINDS = ("uvicorn-httptools", "uvicorn-h11", "aiohttp", "twisted")
_ids = itertools.count(1)


def consume(payload: object) -> None:
    """The no-op handler the posted event reaches."""


def accept_event(body: bytes) -> bytes:
    """What every peer does with ``POST /events/x``: parse, hand over, answer the id."""
    consume(json.loads(body))
    return json.dumps({"id": f"{next(_ids):032x}"}).encode()


def listening_socket() -> socket.socket:
    # IPPROTO_TCP named: asyncio sets TCP_NODELAY only on sockets whose proto says TCP (an
    # accepted socket inherits the listener's 0 otherwise), and without it a response written
    # in two parts waits for the client's delayed ACK (40 ms).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(BACKLOG)
    return sock


def serve_uvicorn(http: str) -> None:
    import uvicorn

    # With a length, as frameworks on uvicorn send it (without one, uvicorn answers chunked).
    text = [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(HELLO))]

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["method"] == "POST":
            body = b""
            while True:
                message = await receive()
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
            answer = accept_event(body)
            headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(answer))]
            await send({"type": "http.response.start", "status": 202, "headers": headers})
            await send({"type": "http.response.body", "body": answer})
            return
        await send({"type": "http.response.start", "status": 200, "headers": text})
        await send({"type": "http.response.body", "body": HELLO})

    sock = listening_socket()
    config = uvicorn.Config(
        app, http=http, log_level="error", access_log=False, lifespan="off", backlog=BACKLOG
    )
    announce(sock.getsockname()[1])
    asyncio.run(uvicorn.Server(config).serve(sockets=[sock]))


def serve_aiohttp() -> None:
    from aiohttp import web

    async def hello(request: web.Request) -> web.Response:
        return web.Response(body=HELLO, content_type="text/plain")

    async def events(request: web.Request) -> web.Response:
        answer = accept_event(await request.read())
        return web.Response(body=answer, status=202, content_type="application/json")

    app = web.Application()
    app.router.add_get("/hello", hello)
    app.router.add_post("/events/x", events)
    sock = listening_socket()
    announce(sock.getsockname()[1])
    web.run_app(app, sock=sock, print=None, access_log=None, handle_signals=True)


def serve_twisted() -> None:
    from twisted.internet import epollreactor

    epollreactor.install()
    from twisted.internet import reactor
    from twisted.web import resource, server

    class Hello(resource.Resource):
        isLeaf = True

        def render_GET(self, request: Any) -> bytes:
            request.setHeader(b"content-type", b"text/plain")
            return HELLO

    class Events(resource.Resource):
        isLeaf = True

        def render_POST(self, request: Any) -> bytes:
            request.setResponseCode(202)
            request.setHeader(b"content-type", b"application/json")
            return accept_event(request.content.read())

    root = resource.Resource()
    root.putChild(b"hello", Hello())
    events = resource.Resource()
    events.putChild(b"x", Events())
    root.putChild(b"events", events)
    site = server.Site(root)
    site.noisy = False
    site.log = lambda request: None  # no access log, as for the other servers
    port = reactor.listenTCP(0, site, backlog=BACKLOG, interface="127.0.0.1")  # type: ignore[attr-defined]
    announce(port.getHost().port)
    reactor.run()  # type: ignore[attr-defined]


def main() -> None:
    cli = parser(__doc__ or "")
    cli.add_argument("kind", choices=KINDS)
    args = cli.parse_args()
    raise_nofile()
    if args.kind.startswith("uvicorn-"):
        serve_uvicorn(args.kind.removeprefix("uvicorn-"))
    elif args.kind == "aiohttp":
        serve_aiohttp()
    else:
        serve_twisted()


if __name__ == "__main__":
    main()
