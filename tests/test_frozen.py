"""``Frozen``, the value classes' base: what ``@dataclass(frozen=True, slots=True)`` gave them."""

from __future__ import annotations

import copy
import dataclasses
import pickle
import socket
from typing import ClassVar

import pytest

from eventhub import Event, Failure
from eventhub._frozen import Frozen
from eventhub.config import Config, CoreSettings
from eventhub.protocol import Address, UNIXAddress


def test_assigning_or_deleting_a_field_raises_frozen_instance_error() -> None:
    address = Address("127.0.0.1", 8000)
    with pytest.raises(dataclasses.FrozenInstanceError, match="'port'"):
        address.port = 1  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError, match="'host'"):
        del address.host
    with pytest.raises(AttributeError):
        address.other = 1


def test_equality_and_hash_follow_the_fields_and_the_exact_class() -> None:
    assert Address("::1", 80, socket.AF_INET6) == Address("::1", 80, socket.AF_INET6)
    assert hash(Address("a", 1)) == hash(Address("a", 1))
    assert Address("a", 1) != Address("a", 2)
    assert UNIXAddress("a", 0, 1) != Address("a", 0, 1)  # a subclass is not equal, as with dataclasses
    assert Address("a", 1) != ("a", 1, socket.AF_INET)
    assert {Address("a", 1): "x"}[Address("a", 1)] == "x"


def test_repr_names_the_compared_fields_in_order() -> None:
    assert repr(UNIXAddress("/tmp/s", pid=7)) == (
        f"UNIXAddress(host='/tmp/s', port=0, family={socket.AF_UNIX!r}, pid=7, uid=None, gid=None)"
    )


@pytest.mark.parametrize("roundtrip", [copy.copy, copy.deepcopy, lambda v: pickle.loads(pickle.dumps(v))])
def test_copy_and_pickle_give_an_equal_frozen_object_with_every_slot(roundtrip: object) -> None:
    assert callable(roundtrip)
    event = Event("order.paid", {"id": 1}, source="shop")
    again = roundtrip(event)
    assert again == event
    assert (again.id, again.time) == (event.id, event.time)  # not compared, still kept
    unix = UNIXAddress("/run/s", pid=1, uid=2, gid=3)
    assert roundtrip(unix) == unix
    with pytest.raises(dataclasses.FrozenInstanceError):
        again.name = "x"


def test_an_event_compares_name_payload_and_source_not_id_or_time() -> None:
    assert Event("a", 1, source="s") == Event("a", 1, source="s", id=5, time=1.0)
    assert Event("a", 1, source="s") != Event("a", 1, source="t")
    match Event("a.b", 2):
        case Event("a.b", payload):
            assert payload == 2
        case _:  # pragma: no cover
            pytest.fail("Event's positional pattern is (name, payload)")


def test_config_defaults_are_fresh_tables_and_the_core_defaults() -> None:
    config = Config()
    assert config.core == CoreSettings()
    assert config.plugins == {} and config.overrides == {} and config.source == "defaults"
    assert Config(plugins={"echo": {"port": 1}}) == Config(plugins={"echo": {"port": 1}})


class Point(Frozen):
    x: int
    y: int = 0
    label: ClassVar[str] = "point"  # not a field


def test_a_record_takes_its_annotated_fields_in_order_with_their_defaults() -> None:
    assert Point.__match_args__ == ("x", "y")
    assert (Point(1).x, Point(1).y) == (1, 0)
    assert Point(1, 2) == Point(x=1, y=2) == Point(1, y=2)
    assert repr(Point(1, 2)) == "Point(x=1, y=2)"
    assert Point(1)._replace(y=5) == Point(1, 5)
    with pytest.raises(TypeError, match="missing 'x'"):
        Point()  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected or repeated argument 'z'"):
        Point(1, z=3)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="repeated argument 'x'"):
        Point(1, x=2)  # type: ignore[misc]
    with pytest.raises(TypeError, match="takes 2 arguments, 3 given"):
        Point(1, 2, 3)  # type: ignore[call-arg]
    with pytest.raises(dataclasses.FrozenInstanceError):
        Point(1).x = 2  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(Point(3, 4))) == Point(3, 4)


def test_the_run_path_records_are_records_not_tuples() -> None:
    failure = Failure("p", "eventhub_execute", ValueError("x"))
    assert not isinstance(failure, tuple)
    assert failure.event is None and failure == Failure("p", "eventhub_execute", failure.error)
