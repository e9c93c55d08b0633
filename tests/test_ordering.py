"""eventhub.ordering: the order plugins are called in, from their constraints and eventhub.order."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import eventhub
from eventhub import config
from eventhub._ordering import Placement, order
from eventhub.errors import OrderingError


def test_ordering_rules() -> None:
    free = Placement()
    assert order({"b": free, "a": free, "c": free}) == ["a", "b", "c"]
    assert order({"b": free, "a": Placement(rank=2), "c": Placement(rank=0)}) == ["c", "b", "a"]
    assert order({"a": Placement(after=["b"]), "b": free}) == ["b", "a"]
    assert order({"a": free, "b": Placement(before=["a"])}) == ["b", "a"]
    assert order({"a": free, "b": free, "c": free}, explicit=["c", "a", "missing"]) == ["c", "a", "b"]
    # Constraints naming absent plugins are ignored.
    assert order({"a": Placement(after=["ghost"])}) == ["a"]
    with pytest.raises(OrderingError, match=r"cycle .*a -> b -> a|cycle .*b -> a -> b"):
        order({"a": Placement(after=["b"]), "b": Placement(after=["a"])})
    with pytest.raises(OrderingError, match="cycle"):
        order({"a": Placement(after=["b"]), "b": free}, explicit=["a", "b"])


@given(
    st.dictionaries(
        st.sampled_from("abcdefgh"),
        st.tuples(st.lists(st.sampled_from("abcdefgh"), max_size=3), st.integers(0, 2)),
        max_size=8,
    )
)
def test_ordering_meets_every_constraint_or_reports_a_cycle(spec: dict[str, tuple[list[str], int]]) -> None:
    placements = {name: Placement(after=after, rank=rank) for name, (after, rank) in spec.items()}
    try:
        result = order(placements)
    except OrderingError:
        return
    assert sorted(result) == sorted(placements)
    position = {name: i for i, name in enumerate(result)}
    for name, (after, _) in spec.items():
        for other in after:
            if other in position and other != name:
                assert position[other] < position[name]
    assert result == order(dict(reversed(list(placements.items()))))  # install order does not matter


def test_hub_orders_handlers_by_declared_constraints() -> None:
    log: list[str] = []

    def handler(name: str, **attrs: object) -> type[eventhub.Handler]:
        def execute(self: eventhub.Handler, event: eventhub.Event) -> None:
            log.append(name)

        return type(name, (eventhub.Handler,), {"execute": execute, **attrs})

    hub = eventhub.Hub(config=config.Config(core=config.CoreSettings(order=("zed",))))
    hub.register(handler("alpha", eventhub_after=("beta",)))
    hub.register(handler("beta"))
    hub.register(handler("zed"))
    hub.dispatch(eventhub.Event("e"))
    assert log == ["zed", "beta", "alpha"]
    assert hub.plugin_order == ["zed", "beta", "alpha"]
