"""Event names and subscription patterns: dot-separated tokens, NATS subject syntax.

A name is one or more tokens joined by ``.`` (``order.paid``,
``net.echo.connection.made``). A token is a non-empty run of characters other
than ``.``, white space, ``*`` and ``>``. A pattern is a name in which a token
may be ``*`` (exactly one token) and the last token may be ``>`` (one or more
tokens): ``order.*`` matches ``order.paid`` but not ``order`` nor
``order.paid.late``; ``order.>`` matches both of the latter two but not
``order``; ``>`` matches every name. These are the rules of NATS subjects, so
that a broker bridge maps a name to a subject, and a pattern to a subscription,
one to one.

Matching is compiled once per pattern (``compile_pattern``); the bus asks it
once per distinct event name and caches the answer, so none of this is on the
path of an event whose name was seen before.
"""

from __future__ import annotations

from collections.abc import Callable

from eventhub.errors import PatternError

__all__ = ["check_name", "compile_pattern", "matches"]

_WILDCARDS = ("*", ">")
_FORBIDDEN = frozenset(" \t\r\n\f\v*>")


def _bad_token(token: str) -> bool:
    return not token or any(char in _FORBIDDEN or char.isspace() for char in token)


def check_name(name: object) -> str:
    """``name`` if it is a valid event name, else raise ``PatternError`` saying why."""
    if not isinstance(name, str):
        raise PatternError(f"an event name must be a string, not {type(name).__name__}")
    for token in name.split("."):
        if _bad_token(token):
            raise PatternError(f"invalid event name {name!r}: {_why(token)}")
    return name


def check_pattern(pattern: object) -> str:
    """``pattern`` if it is a valid subscription pattern, else raise ``PatternError``."""
    if not isinstance(pattern, str):
        raise PatternError(f"an event pattern must be a string, not {type(pattern).__name__}")
    tokens = pattern.split(".")
    for index, token in enumerate(tokens):
        if token == ">" and index != len(tokens) - 1:
            raise PatternError(f"invalid event pattern {pattern!r}: '>' may only be the last token")
        if token not in _WILDCARDS and _bad_token(token):
            raise PatternError(f"invalid event pattern {pattern!r}: {_why(token)}")
    return pattern


def _why(token: str) -> str:
    if not token:
        return "empty token (names are tokens joined by single dots, e.g. 'order.paid')"
    if "*" in token or ">" in token:
        return f"token {token!r}: '*' and '>' are whole-token wildcards, for patterns only"
    return f"token {token!r} contains white space"


def compile_pattern(pattern: str) -> Callable[[str], bool]:
    """A function telling whether an event name matches ``pattern`` (checked first)."""
    check_pattern(pattern)
    tokens = tuple(pattern.split("."))
    if "*" not in tokens and ">" not in tokens:
        return pattern.__eq__
    if tokens == (">",):
        return lambda name: True
    if tokens[-1] == ">":
        head = tokens[:-1]
        return lambda name: _match_tokens(head, name.split(".")[: len(head)]) and name.count(".") >= len(head)
    return lambda name: _match_tokens(tokens, name.split("."))


def _match_tokens(pattern: tuple[str, ...], tokens: list[str]) -> bool:
    if len(pattern) != len(tokens):
        return False
    return all(want in ("*", got) for want, got in zip(pattern, tokens, strict=True))


def matches(pattern: str, name: str) -> bool:
    """True when event ``name`` matches subscription ``pattern``."""
    return compile_pattern(pattern)(name)
