"""What flows through the hub (``Event``), the seed's handler base class (``Handler``), and ``on``.

Three ways to subscribe, all validated at registration like every hook:

- a ``Handler`` subclass declares ``events = ("order.*", "run")``; without
  ``events`` it receives every event (the seed's meaning);
- a plugin module or object marks functions with ``@eventhub.on("order.paid")``;
- code holding a hub calls ``hub.subscribe(pattern, callback)``.

Any of them may be ``async def`` (each delivery runs as a task on the hub's
reactor) or declare ``blocking = True`` (each delivery runs on the reactor's
thread pool). See ``eventhub._bus`` for the delivery guarantees.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable
from typing import Any, Literal, TypeVar

from eventhub._frozen import Frozen
from eventhub._markers import hookimpl

__all__ = ["ALL_EVENTS", "DropPolicy", "Event", "Handler", "HandlerOptions", "on"]

# The pattern of "every event": what a Handler without ``events`` subscribes to.
ALL_EVENTS = ">"

DropPolicy = Literal["drop-oldest", "drop-newest"]


def _id_counter() -> itertools.count[int]:
    # 64 random bits above a 64-bit counter: unique within the process, and
    # across processes and hosts for any practical purpose (a bridge dedupes on
    # it), for the cost of one next() per event. os.urandom rather than the
    # random module, which (with math, bisect, hashlib's sha512) is start-up work.
    return itertools.count(int.from_bytes(os.urandom(8), "big") << 64)


_ids = _id_counter()


def _reset_ids() -> None:
    global _ids
    _ids = _id_counter()


if hasattr(os, "register_at_fork"):  # a forked worker must not repeat its parent's ids
    os.register_at_fork(after_in_child=_reset_ids)


def _next_id() -> int:
    return next(_ids)


class Event(Frozen):
    """One event: ``name`` says what happened, ``payload`` is whatever the emitter attached.

    ``id`` is unique (a 128-bit integer; ``f"{event.id:032x}"`` for text),
    ``time`` the wall-clock time of emission (``time.time()``), ``source``
    the emitting plugin's name when known. Frozen: a handler cannot change
    what the next one sees, except through a mutable payload it was given on
    purpose.
    """

    __slots__ = ("id", "name", "payload", "source", "time")
    __match_args__ = ("name", "payload")

    name: str
    payload: Any
    source: str | None
    id: int
    time: float

    def __init__(
        self,
        name: str,
        payload: Any = None,
        *,
        source: str | None = None,
        id: int | None = None,
        time: float | None = None,
    ) -> None:
        # The slots' own setters: half the cost of object.__setattr__ per
        # field, on the path of every event emitted.
        _set_name(self, name)
        _set_payload(self, payload)
        _set_source(self, source)
        _set_id(self, _next_id() if id is None else id)
        _set_time(self, _now() if time is None else time)

    def _key(self) -> tuple[Any, ...]:
        return (self.name, self.payload, self.source)  # not id and time: the same event, re-emitted

    def __repr__(self) -> str:
        # What a trace line or a failure report needs; id and time are a lookup away.
        source = "" if self.source is None else f", source={self.source!r}"
        return f"Event(name={self.name!r}, payload={self.payload!r}{source})"


def _slot_setter(field_name: str) -> Callable[[Event, Any], None]:
    """The slot's own descriptor setter (frozenness is ``__setattr__``'s; this bypasses it)."""
    setter: Callable[[Event, Any], None] = vars(Event)[field_name].__set__
    return setter


_set_name, _set_payload, _set_source, _set_id, _set_time = map(
    _slot_setter, ("name", "payload", "source", "id", "time")
)
_now = time.time


class HandlerOptions(Frozen):
    """How one handler wants its events: what ``on`` and ``Handler`` class attributes declare.

    ``max_concurrency`` bounds the deliveries of an ``async`` handler running at
    once; beyond it up to ``max_pending`` wait in a queue, and when that is full
    ``drop`` says which delivery is dropped (counted and logged, never silently).
    """

    patterns: tuple[str, ...]
    blocking: bool = False
    max_concurrency: int = 100
    max_pending: int = 1000
    drop: DropPolicy = "drop-oldest"


F = TypeVar("F", bound=Callable[..., Any])

ON_ATTRIBUTE = "eventhub_on"


def on(
    *patterns: str,
    blocking: bool = False,
    max_concurrency: int = 100,
    max_pending: int = 1000,
    drop: DropPolicy = "drop-oldest",
) -> Callable[[F], F]:
    """Mark a plugin's function as the handler of the events matching ``patterns``::

        @eventhub.on("order.paid", "order.refunded")
        async def notify(event): ...

    The hub checks the patterns and options when the plugin is registered
    (a bad one refuses the plugin, naming it). Plain functions run on the
    loop; ``async def`` ones run as tasks; ``blocking=True`` runs a plain
    function on the thread pool.
    """
    options = HandlerOptions(tuple(patterns), blocking, max_concurrency, max_pending, drop)

    def mark(function: F) -> F:
        # A staticmethod or classmethod wraps the function: the mark goes on the function.
        target = function.__func__ if isinstance(function, staticmethod | classmethod) else function
        marks: list[HandlerOptions] = getattr(target, ON_ATTRIBUTE, [])
        setattr(target, ON_ATTRIBUTE, [*marks, options])
        return function

    return mark


class Handler:
    """Base class of the seed's handlers: subclass it and override ``execute``.

    A ``Handler`` subclass is a plugin of its own: register the class (it is
    instantiated with no arguments) or an instance. One that does not override
    ``execute`` is refused at registration with an error that names it.

    ``execute`` may be ``async def``. Class attributes say what it handles and how::

        class Audit(eventhub.Handler):
            events = ("order.*", "run")    # default: every event
            blocking = False               # True: run execute on the thread pool
            max_concurrency = 100          # async execute: deliveries running at once
            eventhub_after = ("auth",)     # run after the plugin named "auth"
            eventhub_before = ("reply",)
    """

    events: tuple[str, ...] | str = (ALL_EVENTS,)
    blocking: bool = False
    max_concurrency: int = 100
    max_pending: int = 1000
    drop: DropPolicy = "drop-oldest"

    def execute(self, event: Event) -> Any:
        raise NotImplementedError(f"{type(self).__qualname__} must override execute(self, event)")

    # The bus calls ``execute`` directly (see eventhub.bus); this hook
    # implementation exists so that pluggy registers and validates handlers
    # like any other plugin.
    @hookimpl
    def eventhub_execute(self, event: Event) -> None:
        self.execute(event)

    def handler_options(self) -> HandlerOptions:
        """The options the class attributes declare (checked at registration)."""
        events = (self.events,) if isinstance(self.events, str) else tuple(self.events)
        return HandlerOptions(events, self.blocking, self.max_concurrency, self.max_pending, self.drop)
