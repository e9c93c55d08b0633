"""Events on a timer, from configuration: ``[[eventhub.schedule]]`` entries.

    [[eventhub.schedule]]
    every = "5s"            # or "250ms", "2m", "1h", "1.5s", or a number of seconds
    emit = "tick.fast"
    payload = { kind = "heartbeat" }   # optional, any TOML value

Each entry emits its event every ``every`` seconds while the hub serves,
starting one period after start. The times are kept on a grid (start + k *
period): a late pass does not shift the following ones, and passes missed
while the loop was busy are skipped, not bunched up.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eventhub.errors import ConfigError, PatternError
from eventhub.names import check_name

if TYPE_CHECKING:
    from eventhub.reactor._api import ReactorAPI

__all__ = ["MIN_PERIOD", "Schedule", "parse_duration", "start"]

#: The shortest period a schedule may have: below it a timer would spin the loop.
MIN_PERIOD = 0.01

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h|d)?\s*$")


def parse_duration(value: str | float, key: str) -> float:
    """Seconds from ``"5s"``, ``"250ms"``, ``"2m"``, ``"1h"``, ``"1d"`` or a number.

    A malformed or too short value is a ``ConfigError`` naming ``key``.
    """
    if isinstance(value, bool):
        raise ConfigError(key, f'must be a duration such as "5s", not {value!r}')
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(value)
        if match is None:
            raise ConfigError(key, f'must be a duration such as "5s", "250ms", "2m", not {value!r}')
        seconds = float(match[1]) * _UNITS[match[2] or "s"]
    if not seconds >= MIN_PERIOD:  # also refuses NaN
        raise ConfigError(key, f"must be at least {MIN_PERIOD}s, not {value!r}")
    return seconds


@dataclass(frozen=True)
class Schedule:
    """One ``[[eventhub.schedule]]`` entry: emit ``emit`` with ``payload`` every ``every``."""

    every: str | float
    emit: str
    payload: Any = None

    def period(self, key: str) -> float:
        return parse_duration(self.every, f"{key}.every")

    def check(self, key: str) -> None:
        self.period(key)
        try:
            check_name(self.emit)
        except PatternError as error:
            raise ConfigError(f"{key}.emit", str(error)) from None


def check(schedules: Sequence[Schedule]) -> None:
    """``ConfigError`` naming the entry and key of the first wrong value."""
    for index, entry in enumerate(schedules):
        entry.check(f"eventhub.schedule[{index}]")


def start(schedules: Sequence[Schedule], reactor: ReactorAPI, emit: Callable[[str, Any], None]) -> bool:
    """Arm a timer per entry on ``reactor``; returns True when there was one."""
    for index, entry in enumerate(schedules):
        _Ticker(reactor, entry.period(f"eventhub.schedule[{index}]"), entry.emit, entry.payload, emit)
    return bool(schedules)


class _Ticker:
    __slots__ = ("_emit", "_name", "_next", "_payload", "_period", "_reactor")

    def __init__(
        self, reactor: ReactorAPI, period: float, name: str, payload: Any, emit: Callable[[str, Any], None]
    ) -> None:
        self._reactor = reactor
        self._period = period
        self._name = name
        self._payload = payload
        self._emit = emit
        self._next = reactor.seconds() + period
        reactor.call_later(period, self._tick)

    def _tick(self) -> None:
        now = self._reactor.seconds()
        missed = max(0, int((now - self._next) // self._period))
        self._next += (missed + 1) * self._period
        self._reactor.call_later(max(0.0, self._next - now), self._tick)
        self._emit(self._name, self._payload)
