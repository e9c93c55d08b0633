"""Feed a framer the same bytes cut three ways: whole, byte by byte, at chosen split points."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from itertools import pairwise

from hypothesis import strategies as st

from eventhub.protocols import Framer, FramingError

Outcome = tuple[list[bytes], type[FramingError] | None]


def run(framer: Framer, chunks: Iterable[bytes]) -> Outcome:
    """Every message the framer gives back, and the class of the error that stopped it."""
    got: list[bytes] = []
    for chunk in chunks:
        try:
            got.extend(framer.feed(chunk))
        except FramingError as err:
            got.extend(err.messages)
            return got, type(err)
    return got, None


def whole(data: bytes) -> list[bytes]:
    return [data]


def bytewise(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def cut(data: bytes, points: Iterable[int]) -> list[bytes]:
    edges = [0, *sorted(set(points)), len(data)]
    return [data[a:b] for a, b in pairwise(edges)]


def split_points(data: bytes) -> st.SearchStrategy[list[int]]:
    return st.lists(st.integers(0, len(data)), max_size=12)


def same_every_way(make: Callable[[], Framer], data: bytes, points: Iterable[int]) -> Outcome:
    """Run all three chunkings on fresh framers; assert they agree and return the outcome."""
    expected = run(make(), whole(data))
    assert run(make(), bytewise(data)) == expected
    assert run(make(), cut(data, points)) == expected
    return expected
