"""What a route handler sees (``Request``) and returns (``Response``)."""

from __future__ import annotations

import json as _json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs

from eventhub.protocol import Address

__all__ = ["HTTPError", "Headers", "Request", "Response", "reason"]


def reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


class HTTPError(Exception):
    """Raise from a handler to answer ``status`` with ``message`` as plain text."""

    def __init__(self, status: int, message: str = "", headers: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__(message or reason(status))
        self.status = status
        self.message = message or reason(status)
        self.headers = tuple(headers)


class Headers:
    """Request headers: case-insensitive lookup over the (name, value) pairs as received."""

    __slots__ = ("_items", "_raw")

    def __init__(self, items: Iterable[tuple[bytes, bytes]]) -> None:
        self._raw = items
        self._items: tuple[tuple[str, str], ...] | None = None  # decoded when first asked for

    def items(self) -> tuple[tuple[str, str], ...]:
        items = self._items
        if items is None:
            raw = self._raw
            items = self._items = tuple((n.decode("latin-1").lower(), v.decode("latin-1")) for n, v in raw)
        return items

    def get(self, name: str, default: str | None = None) -> str | None:
        name = name.lower()
        for key, value in self.items():
            if key == name:
                return value
        return default

    def get_all(self, name: str) -> list[str]:
        name = name.lower()
        return [value for key, value in self.items() if key == name]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __repr__(self) -> str:
        return f"Headers({list(self.items())!r})"


class Request:
    """One request: ``method``, ``path`` (decoded), ``params`` (from the route), ``query``, ``headers``.

    ``await request.body()`` is the whole body (bounded by ``max_body``);
    ``await request.json()`` parses it (a 400 when it is not JSON). Plain
    handlers run once the body is in: ``request.content`` has it.
    """

    def __init__(
        self,
        method: str,
        target: str,
        path: str,
        query_string: str,
        headers: Headers,
        peer: Address | None,
        read_body: Callable[[], Awaitable[bytes]],
    ) -> None:
        self.method = method
        self.target = target
        self.path = path
        self.query_string = query_string
        self._query: dict[str, list[str]] | None = None
        self.headers = headers
        self.peer = peer
        self.params: dict[str, str] = {}
        self.content: bytes | None = None
        self._read_body = read_body

    @property
    def query(self) -> dict[str, list[str]]:
        """The query string's parameters, each name with its values (parsed when first asked for)."""
        query = self._query
        if query is None:
            query = self._query = parse_qs(self.query_string, keep_blank_values=True)
        return query

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.target}>"

    async def body(self) -> bytes:
        if self.content is None:
            self.content = await self._read_body()
        return self.content

    async def json(self) -> Any:
        data = await self.body()
        try:
            return _json.loads(data)
        except ValueError as error:
            raise HTTPError(400, f"the body is not JSON: {error}") from None


Content = bytes | str | dict[str, Any] | list[Any] | AsyncIterator[bytes] | None


class Response:
    """``Response(content, status=200, headers=())``: the body as bytes, text, JSON or a stream.

    ``content`` bytes are sent as they are, ``str`` as UTF-8 text, a ``dict`` or
    ``list`` as JSON, an async iterator of bytes as a stream (chunked). A
    ``content-type`` in ``headers`` overrides the one chosen from the content.
    """

    __slots__ = ("body", "headers", "status", "stream", "upgrade")

    def __init__(self, content: Content = b"", status: int = 200, headers: Iterable[tuple[str, str]] = ()):
        self.status = status
        extra = list(headers.items() if isinstance(headers, Mapping) else headers) if headers else []
        content_type = None
        self.stream: AsyncIterator[bytes] | None = None
        # A 101's switch: called with the connection, returns what takes its bytes from then on.
        self.upgrade: Callable[[Any], Any] | None = None
        self.body = b""
        if content is None:
            pass
        elif isinstance(content, bytes | bytearray | memoryview):
            self.body = bytes(content)
            content_type = "application/octet-stream" if content else None
        elif isinstance(content, str):
            self.body = content.encode()
            content_type = "text/plain; charset=utf-8"
        elif isinstance(content, dict | list):
            self.body = _json.dumps(content).encode()
            content_type = "application/json"
        elif hasattr(content, "__aiter__"):
            self.stream = content
        else:
            raise TypeError(f"cannot send a {type(content).__name__} as a response body")
        if content_type and not any(name.lower() == "content-type" for name, _ in extra):
            extra.append(("content-type", content_type))
        self.headers = extra

    def __repr__(self) -> str:
        return f"<Response {self.status}>"

    @classmethod
    def from_result(cls, result: object) -> Response:
        """What a handler returned, as a ``Response``."""
        if isinstance(result, Response):
            return result
        return cls(result)  # type: ignore[arg-type]  # checked in __init__
