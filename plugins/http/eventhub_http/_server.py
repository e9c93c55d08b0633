"""The HTTP/1.1 server: a ``Protocol`` per connection on the hub's reactor.

Callback order, per connection::

    connection_made -> data_received* (parse; queue requests) -> connection_lost

Requests are parsed as bytes arrive (``_parser``) and queued: pipelined
requests are answered one after the other, in order. The request at the head
of the queue is *current*: its handler runs (a plain one once its body is in,
an ``async`` one as a task at once), its response is written, and when both
the response is sent and the request's body fully read, the next one starts.

Limits: a head over ``max_header_size`` is a 431, a body over ``max_body`` a
413, a head not complete ``header_timeout`` seconds after its first byte a 408
(slowloris); a connection idle ``keep_alive_timeout`` seconds between requests
is closed; past ``max_connections`` a new connection gets a 503. A malformed
request gets its 4xx/5xx and the connection closes; nothing is raised into the
reactor, and the listener goes on serving the others.
"""

from __future__ import annotations

import logging
import time
import typing
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from email.utils import formatdate
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from eventhub.protocol import Address, Protocol, ServerFactory, Transport
from eventhub.reactor import Future
from eventhub_http._feeds import Feed, StreamAborted
from eventhub_http._messages import Headers, HTTPError, Request, Response, reason
from eventhub_http._parser import Body, End, Head, ParseError, make_parser
from eventhub_http._router import Route, Router

if TYPE_CHECKING:
    from eventhub.reactor import ReactorAPI, TimerAPI
    from eventhub_http._settings import HttpSettings

__all__ = ["HttpFactory", "HttpProtocol"]

log = logging.getLogger("eventhub.http")

MAX_PIPELINE = 16  # queued requests per connection before reading pauses
_NO_BODY = frozenset({204, 304})


class _DateCache:
    """The ``Date`` header, formatted once a second."""

    def __init__(self) -> None:
        self._second = -1
        self._value = b""

    def now(self) -> bytes:
        second = int(time.time())
        if second != self._second:
            self._second = second
            self._value = formatdate(second, usegmt=True).encode()
        return self._value


_dates = _DateCache()


def _serialize_head(status: int, headers: Iterable[tuple[str, str]]) -> bytes:
    lines = [f"HTTP/1.1 {status} {reason(status)}".encode(), b"date: " + _dates.now()]
    for name, value in headers:
        lines.append(f"{name}: {value}".encode("latin-1"))
    return b"\r\n".join(lines) + b"\r\n\r\n"


class Upgraded(typing.Protocol):
    """What takes a connection's bytes after a 101 (the WebSocket session)."""

    def data_received(self, data: bytes) -> None: ...

    def connection_lost(self) -> None: ...

    def close(self, code: int, reason: str = "") -> None: ...


class HttpFactory(ServerFactory):
    """One http service: its settings, routes and connections."""

    def __init__(self, settings: HttpSettings, router: Router, reactor: ReactorAPI) -> None:
        self.settings = settings
        self.router = router
        self.reactor = reactor
        self.connections: set[HttpProtocol] = set()
        self.stopping = False
        self.requests = 0
        self.rejected: dict[int, int] = {}  # status -> count, for the requests refused by a limit
        self.handler_failures: dict[str, int] = {}  # plugin -> count
        self.feeds: set[Feed] = set()  # the SSE and WebSocket clients' queues
        self._drained: Future[None] | None = None

    def build_protocol(self, addr: Address) -> Protocol | None:
        protocol = HttpProtocol(self)
        protocol.factory = self
        return protocol

    def count_rejected(self, status: int) -> None:
        self.rejected[status] = self.rejected.get(status, 0) + 1

    def begin_shutdown(self) -> Future[None]:
        """Stop taking requests: idle connections close now, busy ones after their response.

        A "before shutdown" trigger: the ``Future`` it returns is done once no
        request is in flight, and the reactor waits for it (``shutdown_timeout``
        at most) before it cancels tasks and closes connections. Event streams
        (SSE, WebSocket) end at once.
        """
        self.stopping = True
        self._drained = Future()
        for feed in list(self.feeds):
            feed.close()
        for connection in list(self.connections):
            connection.close_when_idle()
        self.check_drained()
        return self._drained

    def check_drained(self) -> None:
        """Once stopping: finish the shutdown's wait when no connection has a request in flight."""
        drained = self._drained
        if drained is not None and not drained.done() and not any(c.busy for c in self.connections):
            drained.set_result(None)


class _Exchange:
    """One request on its way through: its head, its body as it arrives, and the handler's progress."""

    __slots__ = (
        "body",
        "complete",
        "continue_sent",
        "error",
        "head",
        "on_complete",
        "responded",
        "waiter",
    )

    def __init__(self, head: Head | None, error: ParseError | None = None) -> None:
        self.head = head
        self.error = error
        self.body = bytearray()
        self.complete = error is not None
        self.continue_sent = False
        self.responded = False
        self.waiter: Future[bytes] | None = None
        self.on_complete: Callable[[], None] | None = None

    def finish_body(self) -> None:
        self.complete = True
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            if self.error is not None:
                waiter.set_exception(HTTPError(self.error.status, str(self.error)))
            else:
                waiter.set_result(bytes(self.body))
        callback, self.on_complete = self.on_complete, None
        if callback is not None:
            callback()


class HttpProtocol(Protocol):
    """One HTTP connection (see the module's docstring for the order of things)."""

    factory: HttpFactory

    def __init__(self, factory: HttpFactory) -> None:
        settings = factory.settings
        self.factory = factory
        self._settings = settings
        self._parser = make_parser(settings.parser, settings.max_header_size)
        self._queue: deque[_Exchange] = deque()
        self._answering = False
        self._input_closed = False
        self._closing = False
        self._timer: TimerAPI | None = None
        self._timer_kind = ""
        self._paused = False
        self._drained: Future[None] | None = None
        self._writing_paused = False
        self._streaming = False
        self._upgraded: Upgraded | None = None
        self._tasks: set[Any] = set()
        self.peer: Address | None = None

    # -- the Protocol callbacks ----------------------------------------------

    def connection_made(self, transport: Transport) -> None:
        super().connection_made(transport)
        self.peer = transport.get_peer()
        factory = self.factory
        if len(factory.connections) >= self._settings.max_connections or factory.stopping:
            factory.count_rejected(503)
            self._input_closed = True
            self._write_simple(503, "too many connections; try again later\n", close=True)
            return
        factory.connections.add(self)
        self._set_timer("idle", self._settings.keep_alive_timeout)

    def data_received(self, data: bytes) -> None:
        if self._upgraded is not None:
            self._upgraded.data_received(data)
            return
        if self._input_closed:
            return
        error: ParseError | None = None
        try:
            events = self._parser.feed(data)
        except ParseError as exc:
            events, error = exc.events, exc
        except Exception as exc:  # a parser bug must not reach the reactor
            log.warning("http: parser failed on a request from %s: %s", self.peer, exc)
            events, error = [], ParseError(400, "malformed request")
        for event in events:
            if isinstance(event, Head):
                self._head_received(event)
            elif isinstance(event, Body):
                self._body_received(event.data)
            elif isinstance(event, End) and self._queue and not self._queue[-1].complete:
                self._queue[-1].finish_body()
            if self._input_closed:
                break
        if error is not None and not self._input_closed:
            self._reject(error)
        if not self._input_closed:
            if self._parser.partial and self._timer_kind != "header":
                self._set_timer("header", self._settings.header_timeout)
            elif self._timer_kind == "idle":
                self._cancel_timer()
            if len(self._queue) > MAX_PIPELINE and not self._paused:
                self._paused = True
                self.transport.pause_reading()  # type: ignore[union-attr]
        self._advance()

    def eof_received(self) -> bool | None:
        self._input_closed = True
        # Nothing in flight, or a stream (SSE) whose client left: close now.
        # Else answer what was asked (pipelined, then half-closed), then close.
        return bool(self._queue) and not self._streaming

    @property
    def busy(self) -> bool:
        """True while a request is being answered (a WebSocket is not a request)."""
        return bool(self._queue) and self._upgraded is None and self.transport is not None

    def connection_lost(self, reason: BaseException | None) -> None:
        self._cancel_timer()
        self.factory.connections.discard(self)
        self.factory.check_drained()
        self._closing = True
        for exchange in self._queue:
            if exchange.waiter is not None and not exchange.waiter.done():
                exchange.waiter.set_exception(ConnectionError("the client went away"))
        self._queue.clear()
        for task in list(self._tasks):
            task.cancel()
        if self._upgraded is not None:
            self._upgraded.connection_lost()
        if self._drained is not None and not self._drained.done():
            self._drained.set_exception(ConnectionError("the client went away"))
        self.transport = None

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        drained, self._drained = self._drained, None
        if drained is not None and not drained.done():
            drained.set_result(None)

    async def drain(self) -> None:
        """Wait until the transport's buffer is below its low-water mark."""
        if self._closing:
            raise ConnectionError("the connection is closed")
        if self._writing_paused:
            if self._drained is None:
                self._drained = Future()
            await self._drained

    # -- reading -------------------------------------------------------------

    def _head_received(self, head: Head) -> None:
        if self._timer_kind == "header":
            self._cancel_timer()
        self.factory.requests += 1
        if head.content_length is not None and head.content_length > self._settings.max_body:
            self._reject(ParseError(413, f"the body is over {self._settings.max_body} bytes"))
            return
        exchange = _Exchange(head)
        if head.content_length in (None, 0) and not head.chunked:
            exchange.complete = True
        self._queue.append(exchange)

    def _body_received(self, data: bytes) -> None:
        exchange = self._queue[-1]
        exchange.body += data
        if len(exchange.body) > self._settings.max_body:
            self._reject(ParseError(413, f"the body is over {self._settings.max_body} bytes"))

    def _reject(self, error: ParseError) -> None:
        """A request that cannot be served: queued as an error answer, after those before it."""
        self._input_closed = True
        self.factory.count_rejected(error.status)
        log.debug("http: %s from %s: %s", error.status, self.peer, error)
        last = self._queue[-1] if self._queue else None
        if last is not None and not last.complete:
            last.error = error  # its body is malformed (or late): its handler gets the error
            last.finish_body()
        else:
            self._queue.append(_Exchange(None, error))

    # -- timers --------------------------------------------------------------

    def _set_timer(self, kind: str, seconds: float) -> None:
        self._cancel_timer()
        self._timer_kind = kind
        self._timer = self.factory.reactor.call_later(seconds, self._timed_out)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._timer_kind = ""

    def _timed_out(self) -> None:
        kind, self._timer, self._timer_kind = self._timer_kind, None, ""
        if self.transport is None:
            return
        if kind == "idle":
            self.transport.lose_connection()
        elif not self._input_closed:
            self._reject(ParseError(408, "the request head took too long"))
            self._advance()

    def close_when_idle(self) -> None:
        if self._upgraded is not None:
            self._upgraded.close(1001, "the server is stopping")
            return
        if self.transport is not None and not self._queue and not self._answering:
            self._cancel_timer()
            self.transport.lose_connection()

    # -- answering -----------------------------------------------------------

    def _advance(self) -> None:
        """Start the current request, if none is being answered."""
        while not self._answering and self._queue and not self._closing:
            exchange = self._queue[0]
            self._answering = True
            self._start(exchange)

    def _start(self, exchange: _Exchange) -> None:
        if exchange.error is not None or exchange.head is None:
            error = exchange.error or ParseError(400, "malformed request")
            self._respond(exchange, Response(f"{error}\n", error.status), close=True)
            return
        head = exchange.head
        try:
            request, raw_path = self._request(exchange, head)
        except HTTPError as error:
            self.factory.count_rejected(error.status)
            self._respond(exchange, _error_response(error), close=True)
            return
        found = self.factory.router.match(head.method, _segments(raw_path))
        if isinstance(found, list):
            if found:
                allow = ", ".join(found)
                response = Response(f"{head.method} is not allowed here\n", 405, [("allow", allow)])
            else:
                response = Response(f"no route for {request.path}\n", 404)
            self._respond(exchange, response)
            return
        route, request.params = found
        if route.is_async:
            self.spawn(self._run_async(exchange, route, request), f"http {head.method} {request.path}")
        elif exchange.complete:
            self._run_plain(exchange, route, request)
        else:
            self._send_continue(exchange)
            exchange.on_complete = lambda: self._run_plain(exchange, route, request)

    def _request(self, exchange: _Exchange, head: Head) -> tuple[Request, str]:
        target = head.target.decode("latin-1")
        if target.startswith("/"):
            path, _, query = target.partition("?")
        elif target.startswith(("http://", "https://")):
            parts = urlsplit(target)
            path, query = parts.path or "/", parts.query
        else:
            raise HTTPError(400, f"bad request target {target[:100]!r}")
        request = Request(
            head.method,
            target,
            unquote(path),
            query,
            Headers(head.headers),
            self.peer,
            lambda: self._read_body(exchange),
        )
        if exchange.complete:
            request.content = bytes(exchange.body)
        return request, path

    async def _read_body(self, exchange: _Exchange) -> bytes:
        if exchange.error is not None:
            raise HTTPError(exchange.error.status, str(exchange.error))
        if exchange.complete:
            return bytes(exchange.body)
        self._send_continue(exchange)
        if exchange.waiter is None:
            exchange.waiter = Future()
        return await exchange.waiter

    def _send_continue(self, exchange: _Exchange) -> None:
        head = exchange.head
        if head and head.expect_continue and not exchange.continue_sent and self.transport is not None:
            exchange.continue_sent = True
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def _run_plain(self, exchange: _Exchange, route: Route, request: Request) -> None:
        if self._closing:
            return
        request.content = bytes(exchange.body)
        try:
            if exchange.error is not None:
                raise HTTPError(exchange.error.status, str(exchange.error))
            response = Response.from_result(route.handler(request))
        except HTTPError as error:
            response = _error_response(error)
        except Exception:
            response = self._handler_failed(route, request)
        self._respond(exchange, response)

    async def _run_async(self, exchange: _Exchange, route: Route, request: Request) -> None:
        try:
            response = Response.from_result(await route.handler(request))
        except HTTPError as error:
            response = _error_response(error)
        except ConnectionError:
            return
        except Exception:
            response = self._handler_failed(route, request)
        if not self._closing:
            self._respond(exchange, response)

    def _handler_failed(self, route: Route, request: Request) -> Response:
        failures = self.factory.handler_failures
        failures[route.owner] = failures.get(route.owner, 0) + 1
        log.exception("http: plugin %r: handler of %s %s raised", route.owner, route.method, route.pattern)
        return Response("internal server error\n", 500)

    def _respond(self, exchange: _Exchange, response: Response, close: bool = False) -> None:
        transport = self.transport
        if transport is None or exchange.responded:
            return
        exchange.responded = True
        head = exchange.head
        if response.upgrade is not None and response.status == 101:
            self._cancel_timer()
            self._queue.clear()
            self._input_closed = True
            transport.write(_serialize_head(101, response.headers))
            self._upgraded = response.upgrade(self)
            return
        keep_alive = (
            not close
            and head is not None
            and exchange.error is None
            and head.keep_alive
            and not self.factory.stopping
            # A client waiting for "100 Continue" that never came will not send the body.
            and not (head.expect_continue and not exchange.continue_sent and not exchange.complete)
        )
        if any(n.lower() == "connection" and v.lower() == "close" for n, v in response.headers):
            keep_alive = False
        status = response.status
        headers = [(n, v) for n, v in response.headers if n.lower() not in ("connection", "content-length")]
        has_body = status not in _NO_BODY and not 100 <= status < 200
        stream = response.stream if has_body else None
        if has_body and stream is None:
            headers.append(("content-length", str(len(response.body))))
        elif stream is not None:
            headers.append(("transfer-encoding", "chunked"))
        if not keep_alive:
            headers.append(("connection", "close"))
        data = _serialize_head(status, headers)
        send_body = has_body and (head is None or head.method != "HEAD")
        if stream is None or not send_body:
            transport.write(data + response.body if send_body else data)
            if stream is not None:
                self.spawn(_close_stream(stream), "http: close a stream")
            self._responded(exchange, keep_alive)
        else:
            transport.write(data)
            self._streaming = True
            self.spawn(self._stream(exchange, stream, keep_alive), "http: stream a response")

    async def _stream(self, exchange: _Exchange, stream: AsyncIterator[bytes], keep_alive: bool) -> None:
        try:
            async for chunk in stream:
                if self.transport is None:
                    return
                if chunk:
                    self.transport.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    await self.drain()
        except ConnectionError:
            return
        except StreamAborted as why:
            log.info("http: a stream to %s ended: %s", self.peer, why)
            if self.transport is not None:
                self.transport.abort_connection()
            return
        except Exception:
            log.exception("http: a streamed response failed; closing the connection")
            if self.transport is not None:
                self.transport.abort_connection()
            return
        finally:
            await _close_stream(stream)
        self._streaming = False
        if self.transport is not None:
            self.transport.write(b"0\r\n\r\n")
            self._responded(exchange, keep_alive)

    def _responded(self, exchange: _Exchange, keep_alive: bool) -> None:
        if not keep_alive:
            self._input_closed = True
            self._queue.clear()
            if self.transport is not None:
                self._cancel_timer()
                self.transport.lose_connection()
            return
        if exchange.complete:
            self._next()
        else:
            exchange.on_complete = self._next  # read (and drop) the rest of the body first

    def _next(self) -> None:
        if self._queue:
            self._queue.popleft()
        self._answering = False
        if self._paused and len(self._queue) <= MAX_PIPELINE // 2 and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        if self.factory.stopping and not self._queue:
            self.close_when_idle()
            self.factory.check_drained()
            return
        if not self._queue and not self._input_closed:
            if self._parser.partial:
                self._set_timer("header", self._settings.header_timeout)
            else:
                self._set_timer("idle", self._settings.keep_alive_timeout)
        if self._input_closed and not self._queue and self.transport is not None:
            self.transport.lose_connection()
            return
        self._advance()

    def _write_simple(self, status: int, text: str, close: bool) -> None:
        if self.transport is None:
            return
        body = text.encode()
        headers = [("content-type", "text/plain; charset=utf-8"), ("content-length", str(len(body)))]
        if close:
            headers.append(("connection", "close"))
        self.transport.write(_serialize_head(status, headers) + body)
        if close:
            self.transport.lose_connection()

    def spawn(self, coro: Any, name: str) -> None:
        task = self.factory.reactor.spawn(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _error_response(error: HTTPError) -> Response:
    return Response(error.message + "\n", error.status, error.headers)


async def _close_stream(stream: AsyncIterator[bytes]) -> None:
    close = getattr(stream, "aclose", None)
    if close is not None:
        try:
            await close()
        except Exception:
            log.debug("http: closing a stream raised", exc_info=True)


def _segments(raw_path: str) -> list[str]:
    """The path's segments, each percent-decoded (an encoded "/" stays inside its segment)."""
    stripped = raw_path.strip("/")
    return [unquote(part) for part in stripped.split("/")] if stripped else []
