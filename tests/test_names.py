"""Event names and patterns: NATS subject syntax, checked against a reference matcher."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventhub.errors import PatternError
from eventhub.names import check_name, check_pattern, compile_pattern, matches

TOKENS = st.sampled_from(["a", "b", "order", "paid", "x1", "é"])
NAMES = st.lists(TOKENS, min_size=1, max_size=5).map(".".join)
PATTERN_TOKENS = st.one_of(TOKENS, st.just("*"))


@st.composite
def patterns(draw: st.DrawFn) -> str:
    tokens = draw(st.lists(PATTERN_TOKENS, min_size=0, max_size=4))
    if not tokens or draw(st.booleans()):
        tokens.append(">")
    return ".".join(tokens)


def reference(pattern: str, name: str) -> bool:
    """NATS's rule, written the obvious way: walk both token lists."""
    want, got = pattern.split("."), name.split(".")
    for index, token in enumerate(want):
        if token == ">":
            return len(got) > index
        if index >= len(got) or token not in ("*", got[index]):
            return False
    return len(want) == len(got)


@given(patterns(), NAMES)
def test_matching_agrees_with_the_reference(pattern: str, name: str) -> None:
    assert compile_pattern(pattern)(name) is reference(pattern, name)


@given(NAMES)
def test_a_name_is_a_pattern_matching_only_itself(name: str) -> None:
    assert matches(name, name) and not matches(name, name + ".more")


@pytest.mark.parametrize(
    ("pattern", "name", "expected"),
    [
        ("order.*", "order.paid", True),
        ("order.*", "order", False),
        ("order.*", "order.paid.late", False),
        ("order.>", "order.paid.late", True),
        ("order.>", "order", False),
        (">", "run", True),
        ("*.connection.made", "echo.connection.made", True),
        ("echo.connection.*", "echo.connection.lost", True),
    ],
)
def test_examples_from_the_guide(pattern: str, name: str, expected: bool) -> None:
    assert matches(pattern, name) is expected


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("", "empty token"),
        ("order..paid", "empty token"),
        (".order", "empty token"),
        ("order.", "empty token"),
        ("order.*", "wildcards"),
        ("order.>", "wildcards"),
        ("or*der", "wildcards"),
        ("order paid", "white space"),
        ("order.\tpaid", "white space"),
    ],
)
def test_invalid_names_say_why(name: str, why: str) -> None:
    with pytest.raises(PatternError, match=why):
        check_name(name)


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        ("order.>.paid", "may only be the last token"),
        ("order.pa*", "wildcards"),
        ("", "empty token"),
        ("a b", "white space"),
    ],
)
def test_invalid_patterns_say_why(pattern: str, why: str) -> None:
    with pytest.raises(PatternError, match=why):
        check_pattern(pattern)


def test_a_name_must_be_text() -> None:
    with pytest.raises(PatternError, match="must be a string, not int"):
        check_name(42)
