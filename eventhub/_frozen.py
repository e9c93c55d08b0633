"""``Frozen``: the base of the immutable value classes that ``eventhub run`` imports.

What ``@dataclass(frozen=True)`` gives (an ``__init__`` from the annotated
fields, equality and hash over them, a repr, assignment refused with
``FrozenInstanceError``, copy and pickle), written once instead of generated per
class: on Python 3.11 the decorator ``exec``s the source of six methods per
class, ~0.4 ms, and the run path had twenty such classes, a tenth of the time
``eventhub run`` took to echo its first byte (a ``NamedTuple`` costs ~0.2 ms,
and is a tuple). Settings classes stay dataclasses, the form ``read_settings``
reads.

A record is declared as a dataclass is, without the decorator::

    class Link(Frozen):
        plugin: str
        call: Call
        what: str = EXECUTE

Its fields are its annotations, in order (``__match_args__``); a default is a
class attribute, read through the class until given. ``dataclass_transform``
tells mypy the same: the ``__init__`` it takes and that fields are read-only.
A class on a hot path (``Event``, ``Address``) declares ``__slots__``,
``__match_args__`` and its own ``__init__``, setting fields through the slots'
setters or ``object.__setattr__`` (``_init``).
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

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" not in vars(cls):  # a record: its fields are its annotations
            own = vars(cls).get("__annotations__", {})
            fields = [name for name, hint in own.items() if not str(hint).startswith(("ClassVar", "Final"))]
            cls.__match_args__ = (*cls.__match_args__, *fields)  # type: ignore[misc]  # read-only to users

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        fields = self.__match_args__
        if len(args) > len(fields):
            raise TypeError(f"{type(self).__name__}() takes {len(fields)} arguments, {len(args)} given")
        given = dict(zip(fields, args, strict=False))
        for name, value in kwargs.items():
            if name not in fields or name in given:
                raise TypeError(f"{type(self).__name__}() got an unexpected or repeated argument {name!r}")
            given[name] = value
        missing = [name for name in fields if name not in given and not hasattr(type(self), name)]
        if missing:
            raise TypeError(f"{type(self).__name__}() missing {', '.join(map(repr, missing))}")
        self._init(**given)

    def _init(self, **fields: Any) -> None:
        for name, value in fields.items():
            object.__setattr__(self, name, value)

    def _replace(self, **changes: Any) -> Any:
        """A copy with ``changes`` (a record's: fields as its ``__init__`` takes them)."""
        return type(self)(**{**{name: getattr(self, name) for name in self.__match_args__}, **changes})

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

    # copy and pickle restore an object with setattr, which a frozen one refuses.
    def __getstate__(self) -> dict[str, Any]:
        state = dict(getattr(self, "__dict__", {}))
        state.update((name, getattr(self, name)) for name in _slots(type(self)) if hasattr(self, name))
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._init(**state)


def _slots(cls: type) -> list[str]:
    names: list[str] = []
    for klass in reversed(cls.__mro__):
        slots = vars(klass).get("__slots__", ())
        names.extend((slots,) if isinstance(slots, str) else slots)
    return names
