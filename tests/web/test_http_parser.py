"""The two request parsers, sans-IO: the same events whole, byte by byte and at any split points."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from .http_support import PARSERS, eventhub_http

_parser = eventhub_http._parser

REQUESTS = [
    b"GET /a?x=1 HTTP/1.1\r\nHost: h\r\n\r\n",
    b"POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello",
    b"PUT /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n"
    b"3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\n\r\n",
    b"HEAD /d HTTP/1.1\r\nhost: h\r\nX-Two: 1\r\nx-two: 2\r\n\r\n",
    b"GET /e HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
]
STREAM = b"".join(REQUESTS)


def events(kind: _parser.ParserKind, chunks: list[bytes]) -> list[object]:
    """The parser's events, with the body chunks joined (where a body splits is the transport's)."""
    parser = _parser.make_parser(kind, 8192)
    out: list[object] = []
    for chunk in chunks:
        for event in parser.feed(chunk):
            if isinstance(event, _parser.Body) and out and isinstance(out[-1], _parser.Body):
                out[-1] = _parser.Body(out[-1].data + event.data)
            else:
                out.append(event)
    return out


def expected() -> list[object]:
    return events("h11", [STREAM])


def test_the_events_of_a_pipelined_stream() -> None:
    heads = [e for e in expected() if isinstance(e, _parser.Head)]
    assert [h.method for h in heads] == ["GET", "POST", "PUT", "HEAD", "GET"]
    assert [h.keep_alive for h in heads] == [True, True, True, True, False]
    assert heads[1].content_length == 5
    assert heads[2].chunked and heads[2].expect_continue
    assert heads[3].headers[1:] == ((b"x-two", b"1"), (b"x-two", b"2"))
    bodies = [e.data for e in expected() if isinstance(e, _parser.Body)]
    assert bodies == [b"hello", b"abcde"]


@pytest.mark.parametrize("kind", PARSERS)
def test_whole_and_byte_by_byte(kind: _parser.ParserKind) -> None:
    assert events(kind, [STREAM]) == expected()
    assert events(kind, [STREAM[i : i + 1] for i in range(len(STREAM))]) == expected()


@pytest.mark.parametrize("kind", PARSERS)
@given(points=st.lists(st.integers(0, len(STREAM)), max_size=20))
def test_at_any_split_points(kind: _parser.ParserKind, points: list[int]) -> None:
    edges = [0, *sorted(set(points)), len(STREAM)]
    chunks = [STREAM[a:b] for a, b in itertools.pairwise(edges)]
    assert events(kind, chunks) == expected()


@pytest.mark.parametrize("kind", PARSERS)
@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"GET / HTTP/1.1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
        (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: h\r\nX: " + b"a" * 9000 + b"\r\n\r\n", 431),
        (b"GET / HTTP/1.1\r\nHost: h\r\nX: " + b"a" * 9000, 431),
        (b"\x00\x01\x02 garbage\r\n\r\n", 400),
    ],
)
def test_malformed_requests(kind: _parser.ParserKind, data: bytes, status: int) -> None:
    parser = _parser.make_parser(kind, 8192)
    with pytest.raises(_parser.ParseError) as raised:
        parser.feed(data)
    assert raised.value.status == status


@pytest.mark.parametrize("kind", PARSERS)
def test_requests_before_a_malformed_one_are_kept(kind: _parser.ParserKind) -> None:
    parser = _parser.make_parser(kind, 8192)
    with pytest.raises(_parser.ParseError) as raised:
        parser.feed(REQUESTS[0] + b"BAD\r\n\r\n")
    assert [type(e).__name__ for e in raised.value.events] == ["Head", "End"]


@pytest.mark.parametrize("kind", PARSERS)
def test_partial_says_a_head_is_on_its_way(kind: _parser.ParserKind) -> None:
    parser = _parser.make_parser(kind, 8192)
    assert not parser.partial
    parser.feed(b"GET / HTTP/1.1\r\nHo")
    assert parser.partial
    parser.feed(b"st: h\r\n\r\n")
    assert not parser.partial
