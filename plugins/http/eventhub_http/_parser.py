"""Request parsing, sans-IO: bytes in, ``Head``/``Body``/``End`` out, behind one small interface.

Two implementations: httptools (llhttp, fast) and h11 (pure Python, the
reference for the rules). ``make_parser("auto")`` takes httptools when it is
installed. Both apply the same framing rules, checked in one place
(``_head``): HTTP/1.0 and ``Connection: close`` end the connection after the
response, ``Content-Length`` and ``Transfer-Encoding`` are exclusive,
HTTP/1.1 needs a ``Host``. A parser that raises ``ParseError`` is finished:
the connection answers ``error.status`` and closes.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Literal, Protocol

import h11

__all__ = ["Body", "End", "Head", "ParseError", "ParserKind", "RequestParser", "make_parser"]

ParserKind = Literal["auto", "httptools", "h11"]


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs a microsecond per request
class Head:
    """A request line and its headers (names lowercased, in arrival order)."""

    method: str
    target: bytes
    version: str  # "1.0" or "1.1"
    headers: tuple[tuple[bytes, bytes], ...]
    keep_alive: bool
    content_length: int | None
    chunked: bool
    expect_continue: bool


@dataclass(frozen=True, slots=True)
class Body:
    data: bytes


@dataclass(frozen=True, slots=True)
class End:
    """The request's body is complete."""


_END = End()  # one for every request (it carries nothing)


ParsedEvent = Head | Body | End


class ParseError(Exception):
    """The request is malformed: answer ``status`` and close.

    ``events`` are those the same ``feed`` completed before the error (the
    requests before a malformed one are answered first).
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.events: list[ParsedEvent] = []


class RequestParser(Protocol):
    """What the connection needs of a parser."""

    def feed(self, data: bytes) -> list[ParsedEvent]:
        """Parse ``data``; the events it completes, in order. Raises ``ParseError``."""
        ...

    @property
    def partial(self) -> bool:
        """True while bytes of a request whose head is not complete are buffered."""
        ...


def make_parser(kind: ParserKind, max_header_size: int) -> RequestParser:
    if kind == "httptools" or (kind == "auto" and has_httptools()):
        return HttptoolsParser(max_header_size)
    return H11Parser(max_header_size)


def has_httptools() -> bool:
    return importlib.util.find_spec("httptools") is not None


_FRAMING = frozenset({b"connection", b"content-length", b"transfer-encoding", b"expect", b"host"})


def _head(method: str, target: bytes, version: str, headers: list[tuple[bytes, bytes]]) -> Head:
    """The one place the framing rules live (h11's, for both parsers)."""
    if version not in ("1.0", "1.1"):
        raise ParseError(505, f"HTTP/{version} is not supported")
    connection: set[bytes] = set()
    lengths: set[bytes] = set()
    encodings: list[bytes] = []
    expect = b""
    hosts = 0
    for name, value in headers:
        if name not in _FRAMING:  # most headers: one set lookup
            continue
        if name == b"connection":
            connection.update(token.strip().lower() for token in value.split(b","))
        elif name == b"content-length":
            lengths.update(v.strip() for v in value.split(b","))
        elif name == b"transfer-encoding":
            encodings.extend(v.strip().lower() for v in value.split(b","))
        elif name == b"expect":
            expect = value.strip().lower()
        elif name == b"host":
            hosts += 1
    if version == "1.1" and hosts != 1:
        raise ParseError(400, "an HTTP/1.1 request needs exactly one Host header")
    content_length = None
    chunked = False
    if encodings:
        if encodings != [b"chunked"]:
            raise ParseError(501, "only the chunked transfer-encoding is supported")
        if lengths:
            raise ParseError(400, "Content-Length and Transfer-Encoding together")
        chunked = True
    elif lengths:
        if len(lengths) > 1 or not all(v.isdigit() for v in lengths):
            raise ParseError(400, "bad Content-Length")
        content_length = int(next(iter(lengths)))
    keep_alive = version == "1.1" and b"close" not in connection
    return Head(
        method,
        target,
        version,
        tuple(headers),
        keep_alive,
        content_length,
        chunked,
        expect == b"100-continue" and version == "1.1",
    )


# The stand-in response h11 is told of after each request, made once (h11's events are immutable).
_STAND_IN = h11.Response(status_code=204, headers=[])
_STAND_IN_END = h11.EndOfMessage()


class H11Parser:
    """h11 as a request parser: its server state machine, answered with a stand-in response.

    h11 parses the next request only once the response to this one is sent;
    responses are written by the connection, so each parsed request is
    answered here, to h11 alone, with an empty response.
    """

    def __init__(self, max_header_size: int) -> None:
        self._conn = h11.Connection(h11.SERVER, max_incomplete_event_size=max_header_size)
        self._max = max_header_size
        self._closed = False

    @property
    def partial(self) -> bool:
        return self._conn.their_state is h11.IDLE and bool(self._conn.trailing_data[0])

    def feed(self, data: bytes) -> list[ParsedEvent]:
        if self._closed or not data:  # (h11 would take b"" for the end of the input)
            return []
        self._conn.receive_data(data)
        out: list[ParsedEvent] = []
        while True:
            try:
                event = self._conn.next_event()
            except h11.RemoteProtocolError as error:
                self._closed = True
                failed = ParseError(error.error_status_hint, str(error))
                failed.events = out
                raise failed from None
            except ParseError as error:
                self._closed = True
                error.events = out
                raise
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return out
            if isinstance(event, h11.Request):
                headers = list(event.headers)  # (lowercased name, value) pairs of bytes
                # h11 bounds only a head still incomplete; one that arrived whole is measured here.
                size = len(event.target) + sum(len(n) + len(v) + 4 for n, v in headers)
                if size > self._max:
                    self._closed = True
                    failed = ParseError(431, "request header fields too large")
                    failed.events = out
                    raise failed
                out.append(
                    _head(  # ParseError: see above
                        event.method.decode("ascii", "replace"),
                        bytes(event.target),
                        event.http_version.decode("ascii", "replace"),
                        headers,
                    )
                )
            elif isinstance(event, h11.Data):
                out.append(Body(bytes(event.data)))
            elif isinstance(event, h11.EndOfMessage):
                out.append(_END)
                self._next_cycle()
                if self._closed:
                    return out
            else:
                return out

    def _next_cycle(self) -> None:
        conn = self._conn
        conn.send(_STAND_IN)
        conn.send(_STAND_IN_END)
        if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            conn.start_next_cycle()
        else:
            self._closed = True  # the connection closes after this response


class HttptoolsParser:
    """llhttp through httptools; the head size is bounded here (llhttp does not)."""

    def __init__(self, max_header_size: int) -> None:
        import httptools

        self._httptools = httptools
        self._parser = httptools.HttpRequestParser(self)
        self._max = max_header_size
        self._out: list[ParsedEvent] = []
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._in_head = True
        self._pending = 0
        self._head_size = 0
        self._error: ParseError | None = None
        self._closed = False

    @property
    def partial(self) -> bool:
        return self._in_head and self._pending > 0

    def feed(self, data: bytes) -> list[ParsedEvent]:
        if self._closed or not data:  # (h11 would take b"" for the end of the input)
            return []
        if self._in_head:
            self._pending += len(data)
        out: list[ParsedEvent] = []
        self._out = out
        try:
            self._parser.feed_data(data)
        except self._httptools.HttpParserUpgrade:
            self._closed = True  # the bytes after an upgrade request are not HTTP
        except self._httptools.HttpParserError as error:
            if self._closed:  # data after a request that ends the connection: ignored, as h11 does
                return out
            self._closed = True
            failed = self._error or ParseError(400, f"malformed request: {error}")
            failed.events = out
            raise failed from None
        if self._in_head and self._pending > self._max:
            self._closed = True
            failed = ParseError(431, "request header fields too large")
            failed.events = out
            raise failed
        return out

    # -- llhttp's callbacks ---------------------------------------------------

    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = []
        self._in_head = True
        self._head_size = 0

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._check_size(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.lower(), value))
        self._head_size += len(name) + len(value) + 4  # (_check_size, inlined: once per header)
        if self._head_size > self._max:
            self._error = ParseError(431, "request header fields too large")
            raise self._error

    def _check_size(self, size: int) -> None:
        self._head_size += size
        if self._head_size > self._max:
            self._error = ParseError(431, "request header fields too large")
            raise self._error

    def on_headers_complete(self) -> None:
        parser = self._parser
        self._in_head = False
        self._pending = 0
        try:
            head = _head(
                parser.get_method().decode("ascii", "replace"),
                self._url,
                parser.get_http_version(),
                self._headers,
            )
        except ParseError as error:
            self._error = error
            raise
        self._out.append(head)

    def on_body(self, body: bytes) -> None:
        self._out.append(Body(bytes(body)))

    def on_message_complete(self) -> None:
        self._out.append(_END)
        self._in_head = True
        self._pending = 0
        if not self._parser.should_keep_alive():
            self._closed = True
