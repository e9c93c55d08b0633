"""``Frozen``: the base of the immutable value classes that ``eventhub run`` imports.

What ``@dataclass(frozen=True, slots=True)`` gives (equality and hash over the
fields, a repr, assignment refused with ``FrozenInstanceError``, copy and
pickle), written once instead of generated per class. Generating costs: on
Python 3.11 the decorator ``exec``s the source of six methods and builds the
class twice, ~0.4 ms a class, and the run path had twenty of them, a tenth of
the time ``eventhub run`` takes to echo its first byte. Records with no
behaviour of their own are ``typing.NamedTuple``s instead (~0.05 ms); settings
classes stay dataclasses, the form ``read_settings`` reads.

A subclass declares ``__slots__``, names its compared fields in order in
``__match_args__`` (as a dataclass does; ``Event`` overrides ``_key`` to compare
a keyword-only field too) and sets its fields in ``__init__`` through the
slots' own setters, ``object.__setattr__`` or ``_init``.
"""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:  # typing's own from Python 3.12 (frozen_default); tells mypy the fields are read-only
    from typing_extensions import dataclass_transform
else:

    def dataclass_transform(**_: object) -> Any:
        return lambda cls: cls


__all__ = ["Frozen"]


@dataclass_transform(frozen_default=True)
class Frozen:
    __slots__ = ()
    __match_args__: ClassVar[tuple[str, ...]] = ()

    def _init(self, **fields: Any) -> None:
        for name, value in fields.items():
            object.__setattr__(self, name, value)

    def _key(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.__match_args__)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Frozen) and other.__class__ is self.__class__:
            return self._key() == other._key()
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__match_args__)
        return f"{type(self).__qualname__}({fields})"

    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    # copy and pickle restore slots with setattr, which a frozen object refuses.
    def __getstate__(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _slots(type(self)) if hasattr(self, name)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._init(**state)


def _slots(cls: type) -> list[str]:
    names: list[str] = []
    for klass in reversed(cls.__mro__):
        slots = vars(klass).get("__slots__", ())
        names.extend((slots,) if isinstance(slots, str) else slots)
    return names
