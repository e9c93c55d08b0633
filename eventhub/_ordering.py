"""The one place that decides the order of the execution chain.

The rules, strongest first:

1. ``[eventhub] order`` in the config: the plugins it names run in that order,
   and whenever a named and an unnamed plugin could both run next, the named
   one goes first.
2. Constraints the plugins declare: ``eventhub_after = ("auth",)`` and
   ``eventhub_before = (...)`` on the plugin object, module or Handler class
   (pluggy has no such thing). A name that is not installed is ignored.
3. ``@hookimpl(tryfirst=True)`` / ``trylast=True`` on ``eventhub_execute``.
4. The plugin's name (its entry-point name), alphabetically.

Rules 1 and 2 are hard constraints; 3 and 4 break ties among the plugins that
the constraints leave free, so the order never depends on install order. A
constraint cycle is an ``OrderingError`` naming the plugins in it.

Every other hook (lifecycle, network) is called in the same plugin order, except
that an implementation marked ``tryfirst`` (``trylast``) of that hook runs
before (after) the unmarked ones, as in pluggy.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Collection, Mapping, Sequence

from eventhub._frozen import Frozen
from eventhub.errors import OrderingError


class Placement(Frozen):
    """What one plugin says about where it runs."""

    after: Collection[str] = ()
    before: Collection[str] = ()
    rank: int = 1  # 0 tryfirst, 1 normal, 2 trylast


def order(placements: Mapping[str, Placement], explicit: Sequence[str] = ()) -> list[str]:
    """Return the plugin names of ``placements`` in chain order (see the module docstring)."""
    position = {name: index for index, name in enumerate(explicit) if name in placements}
    successors: dict[str, set[str]] = {name: set() for name in placements}
    pinned = sorted(position, key=position.__getitem__)
    for earlier, later in itertools.pairwise(pinned):
        successors[earlier].add(later)
    for name, placement in placements.items():
        for other in placement.after:
            if other in successors and other != name:
                successors[other].add(name)
        for other in placement.before:
            if other in successors and other != name:
                successors[name].add(other)

    def key(name: str) -> tuple[int, int, str]:
        return (position.get(name, len(position)), placements[name].rank, name)

    waiting = {name: 0 for name in placements}
    for later_set in successors.values():
        for later in later_set:
            waiting[later] += 1
    ready = [key(name) for name, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    result: list[str] = []
    while ready:
        name = heapq.heappop(ready)[2]
        result.append(name)
        for later in successors[name]:
            waiting[later] -= 1
            if waiting[later] == 0:
                heapq.heappush(ready, key(later))
    if len(result) < len(placements):
        stuck = {name for name, count in waiting.items() if count > 0}
        cycle = _find_cycle(stuck, successors)
        raise OrderingError(
            "plugin order constraints form a cycle (A -> B: A must run before B): "
            + " -> ".join(cycle + cycle[:1]),
            tuple(cycle),
        )
    return result


def _find_cycle(stuck: set[str], successors: Mapping[str, set[str]]) -> list[str]:
    """A cycle among ``stuck`` (every stuck name has a stuck predecessor, so one exists)."""
    predecessors = {name: sorted(p for p in stuck if name in successors[p]) for name in stuck}
    path: list[str] = []
    seen: dict[str, int] = {}
    name = min(stuck)
    while name not in seen:
        seen[name] = len(path)
        path.append(name)
        name = predecessors[name][0]
    cycle = path[seen[name] :]
    cycle.reverse()
    return cycle
