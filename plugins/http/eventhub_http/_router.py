"""Routes: ``router.add("GET", "/orders/{id}", handler)``, matched segment by segment.

A ``{name}`` segment matches one non-empty path segment (percent-decoded) and
is passed as ``request.params[name]``. Two plugins adding the same method and
path shape is a ``RouteConflict`` naming both; the first one keeps the route.
A path that matches with another method answers 405 with ``Allow``; none, 404.
``HEAD`` is served by the ``GET`` route unless one is added for it.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from eventhub.errors import EventhubError

__all__ = ["Handler", "Route", "RouteConflict", "Router"]

Handler = Callable[..., Awaitable[Any] | Any]

_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RouteConflict(EventhubError):
    """Two plugins add the same route."""


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    pattern: str
    handler: Handler
    owner: str
    segments: tuple[str | None, ...]  # literal text, or None for a parameter
    names: tuple[str, ...]
    is_async: bool

    @property
    def shape(self) -> tuple[str, tuple[str | None, ...]]:
        return self.method, self.segments


class Router:
    """The routes of one http service, each with the plugin that added it."""

    def __init__(self, owner: str = "") -> None:
        self.owner = owner
        self._routes: list[Route] = []
        self._by_shape: dict[tuple[str, tuple[str | None, ...]], Route] = {}
        # The index match() looks in (per request), in the order the routes were added:
        # routes without parameters by their exact segments, the others by their number of segments.
        self._exact: dict[tuple[str, ...], list[Route]] = {}
        self._patterned: dict[int, list[Route]] = {}

    def for_plugin(self, owner: str) -> Router:
        """A view of this router that records ``owner`` as the plugin adding routes."""
        view = Router(owner)
        view._routes = self._routes
        view._by_shape = self._by_shape
        view._exact = self._exact
        view._patterned = self._patterned
        return view

    @property
    def routes(self) -> list[Route]:
        return list(self._routes)

    def add(self, method: str, pattern: str, handler: Handler) -> Route:
        """Serve ``method pattern`` with ``handler(request)``; ``RouteConflict`` if already taken."""
        method = method.upper()
        if method not in METHODS:
            raise ValueError(f"unknown HTTP method {method!r}")
        if not pattern.startswith("/"):
            raise ValueError(f"a route starts with '/': {pattern!r}")
        segments: list[str | None] = []
        names: list[str] = []
        for part in pattern.strip("/").split("/") if pattern != "/" else []:
            match = _PARAM.fullmatch(part)
            if match:
                segments.append(None)
                names.append(match.group(1))
            elif "{" in part or "}" in part:
                raise ValueError(f"bad route segment {part!r} in {pattern!r}: use {{name}} alone")
            else:
                segments.append(part)
        route = Route(
            method,
            pattern,
            handler,
            self.owner,
            tuple(segments),
            tuple(names),
            inspect.iscoroutinefunction(handler),
        )
        taken = self._by_shape.get(route.shape)
        if taken is not None:
            raise RouteConflict(
                f"route {method} {pattern}: plugin {self.owner!r} adds it, "
                f"but plugin {taken.owner!r} already did ({taken.method} {taken.pattern})"
            )
        self._by_shape[route.shape] = route
        self._routes.append(route)
        if route.names:
            self._patterned.setdefault(len(segments), []).append(route)
        else:
            self._exact.setdefault(tuple(part for part in segments if part is not None), []).append(route)
        return route

    def match(self, method: str, segments: list[str]) -> tuple[Route, dict[str, str]] | list[str]:
        """The route for ``method`` and the path's (decoded) segments, or the methods the path allows.

        Where routes overlap (``/events/{name}`` and ``/events/all``), the one added first wins.
        """
        exact = self._exact.get(tuple(segments), ())
        patterned = self._patterned.get(len(segments))
        found: list[tuple[Route, dict[str, str]]] = [(route, {}) for route in exact]
        if patterned:
            for route in patterned:
                params = _match(route, segments)
                if params is not None:
                    found.append((route, params))
            if exact:
                found.sort(key=lambda pair: self._routes.index(pair[0]))
        allowed: list[str] = []
        for route, params in found:
            if route.method == method:
                return route, params
            allowed.append(route.method)
        if method == "HEAD" and "GET" in allowed:
            return self.match("GET", segments)
        if "GET" in allowed and "HEAD" not in allowed:
            allowed.append("HEAD")
        return sorted(set(allowed))


def _match(route: Route, segments: list[str]) -> dict[str, str] | None:
    params: dict[str, str] = {}
    names = iter(route.names)
    for want, got in zip(route.segments, segments, strict=True):
        if want is None:
            if not got:
                return None
            params[next(names)] = got
        elif want != got:
            return None
    return params
