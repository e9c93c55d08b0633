"""Configuration: ``eventhub.toml`` (or ``[tool.eventhub]`` in ``pyproject.toml``) and ``--set``.

The file::

    [eventhub]
    order = ["auth", "audit"]     # chain order (see eventhub.ordering)
    disable = ["noisy"]           # never imported
    on_error = "continue"         # or "stop"
    backend = "auto"              # reactor backend: auto | select | poll | epoll | asyncio | uvloop

    [plugins.echo]                # each plugin's own table, given to its eventhub_configure
    port = 8000

In ``pyproject.toml`` the same keys go under ``[tool.eventhub]`` and
``[tool.eventhub.plugins.NAME]``. ``eventhub.toml`` wins when both exist.
``--set NAME.key=value`` overrides one value (``NAME`` is ``eventhub`` for the
core table); the value is read as TOML (``8001``, ``true``, ``["a","b"]``) and
as a plain string when it is not valid TOML.

``read_settings`` is the one place that checks a table against a dataclass: the
core uses it for ``[eventhub]`` and plugins use it for their own tables.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
import types
import typing
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from eventhub.errors import ConfigError, UsageError
from eventhub.schedule import Schedule
from eventhub.schedule import check as check_schedules

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

log = logging.getLogger("eventhub.config")

CONFIG_FILE = "eventhub.toml"
PYPROJECT = "pyproject.toml"
CORE_SECTION = "eventhub"
_TOP_LEVEL = (CORE_SECTION, "plugins")

T = TypeVar("T")


@dataclass(frozen=True)
class CoreSettings:
    """The ``[eventhub]`` table."""

    order: tuple[str, ...] = ()
    disable: tuple[str, ...] = ()
    on_error: Literal["continue", "stop"] = "continue"
    backend: str = "auto"
    schedule: tuple[Schedule, ...] = ()

    def __post_init__(self) -> None:
        check_schedules(self.schedule)


class Settings(Mapping[str, Any]):
    """One table (a plugin's ``[plugins.NAME]``, or ``[eventhub]``) as the hub hands it over.

    Read-only, and it remembers where each key came from: the config file, or
    ``--set`` with its raw text. ``read_settings`` uses that to name the origin
    of an unknown key, and to take ``--set greeter.name=42`` as the string
    ``"42"`` for a string field (TOML alone would read the integer 42).
    """

    __slots__ = ("_raw", "_source", "_values", "name")

    def __init__(
        self, name: str, values: Mapping[str, Any], source: str = "", raw: Mapping[str, str] | None = None
    ) -> None:
        self.name = name
        self._values = dict(values)
        self._source = source
        self._raw = dict(raw or {})

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Settings({self.name!r}, {self._values!r})"

    def origin(self, key: str) -> str:
        """``--set`` or the config file a key came from."""
        return "--set" if key in self._raw else self._source

    def raw(self, key: str) -> str | None:
        """The text given to ``--set`` for ``key``, if it came from there."""
        return self._raw.get(key)


@dataclass(frozen=True)
class Config:
    """The whole configuration: the core table and one table per plugin."""

    core: CoreSettings = field(default_factory=CoreSettings)
    plugins: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    source: str = "defaults"
    # table name (``eventhub`` or a plugin's) -> key -> the raw text given to --set
    overrides: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def plugin_settings(self, name: str) -> Settings:
        """Plugin ``name``'s own table (empty when it has none)."""
        return Settings(name, self.plugins.get(name, {}), self.source, self.overrides.get(name))


def load(path: str | Path | None = None, overrides: Sequence[str] = (), cwd: Path | None = None) -> Config:
    """Read the config file (``path``, else ``eventhub.toml`` or ``pyproject.toml`` in ``cwd``)."""
    document, source = _read_document(Path(path) if path else None, cwd or Path.cwd())
    raw: dict[str, dict[str, str]] = {}
    for override in overrides:
        _apply_override(document, override, raw)
    for key in document:
        if key not in _TOP_LEVEL:
            log.warning("%s: unknown table or key %r (expected [eventhub] or [plugins.NAME])", source, key)
    core_table = _table(document.get(CORE_SECTION, {}), CORE_SECTION)
    plugins_table = _table(document.get("plugins", {}), "plugins")
    plugins = {name: _table(table, f"plugins.{name}") for name, table in plugins_table.items()}
    core_settings = Settings(CORE_SECTION, core_table, source, raw.get(CORE_SECTION))
    core = read_settings(CoreSettings, core_settings, CORE_SECTION)
    return Config(core=core, plugins=plugins, source=source, overrides=raw)


def _read_document(path: Path | None, cwd: Path) -> tuple[dict[str, Any], str]:
    if path is not None:
        if not path.is_file():
            raise UsageError(f"config file not found: {path}")
        return _parse(path), str(path)
    candidate = cwd / CONFIG_FILE
    if candidate.is_file():
        return _parse(candidate), str(candidate)
    pyproject = cwd / PYPROJECT
    if pyproject.is_file():
        tool = _parse(pyproject).get("tool", {})
        section = tool.get("eventhub") if isinstance(tool, dict) else None
        if isinstance(section, dict):
            document = {k: v for k, v in section.items() if k != "plugins"}
            return {
                CORE_SECTION: document,
                "plugins": section.get("plugins", {}),
            }, f"{pyproject} [tool.eventhub]"
    return {}, "defaults"


def _parse(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as stream:
            return tomllib.load(stream)
    except tomllib.TOMLDecodeError as error:
        # The message ends with "(at line L, column C)".
        raise UsageError(f"{path}: invalid TOML: {error}") from None
    except OSError as error:
        raise UsageError(f"{path}: cannot read: {error.strerror}") from None


def _table(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(where, f"must be a table, not {_type_name(value)}")
    return value


def _apply_override(document: dict[str, Any], override: str, raw: dict[str, dict[str, str]]) -> None:
    target, sep, raw_value = override.partition("=")
    section, dot, key = target.strip().rpartition(".")
    if not sep or not dot or not section or not key:
        raise UsageError(f"--set {override!r}: expected NAME.key=value")
    raw_text = raw_value.strip()
    value = parse_value(raw_text)
    if section == CORE_SECTION:
        table = _table(document.setdefault(CORE_SECTION, {}), CORE_SECTION)
    else:
        plugins = _table(document.setdefault("plugins", {}), "plugins")
        table = _table(plugins.setdefault(section, {}), f"plugins.{section}")
    table[key] = value
    raw.setdefault(section, {})[key] = raw_text


def env_flag(variable: str) -> bool:
    """An on/off environment variable: set to anything but empty or ``0`` means on."""
    return os.environ.get(variable, "") not in ("", "0")


def env_list(variable: str) -> list[str]:
    """A comma-separated environment variable, as a list of names."""
    return split_names(os.environ.get(variable, ""))


def split_names(*values: str) -> list[str]:
    """Comma-separated names (``--only a,b --only c``, ``$EVENTHUB_DISABLE_PLUGINS``), blanks dropped."""
    return [name.strip() for value in values for name in value.split(",") if name.strip()]


def parse_value(raw: str) -> Any:
    """A ``--set`` value: TOML when it parses as a value, else the plain string."""
    try:
        return tomllib.loads(f"value = {raw}")["value"]
    except tomllib.TOMLDecodeError:
        return raw


def read_settings(cls: type[T], table: Mapping[str, Any], section: str, *, source: str = "") -> T:
    """Build dataclass ``cls`` from ``table``, checking each value against its annotation.

    ``section`` is what ``--set`` calls the table (``echo``, or ``eventhub`` for
    the core): a value of the wrong type is a ``ConfigError`` naming
    ``section.key``; an unknown key gets a warning naming where it came from (the
    file or ``--set``, known when ``table`` is the ``Settings`` the hub passed).
    Supported annotations: ``str``, ``int``, ``float``, ``bool``,
    ``tuple[X, ...]``, ``Literal[...]`` and ``X | None``.
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls) if f.init}
    values: dict[str, Any] = {}
    for key, value in table.items():
        origin = table.origin(key) if isinstance(table, Settings) else source
        if key not in known:
            where = f"{origin}: " if origin else ""
            log.warning("%sunknown key %r in [%s]", where, key, _file_table(section))
            continue
        raw = table.raw(key) if isinstance(table, Settings) else None
        if raw is not None and not isinstance(value, str) and _takes_text(hints[key]):
            value = raw  # --set name=42 for a string field means the text "42"
        values[key] = _check(value, hints[key], f"{section}.{key}")
    for required in dataclasses.fields(cls):
        no_default = (
            required.default is dataclasses.MISSING and required.default_factory is dataclasses.MISSING
        )
        if required.init and no_default and required.name not in values:
            raise ConfigError(f"{section}.{required.name}", "is required")
    return cls(**values)


def check_range(key: str, value: float, low: float, high: float | None = None) -> None:
    """``ConfigError`` naming ``key`` unless ``low <= value <= high`` (no upper bound when ``high`` is None).

    For the range checks a settings dataclass makes in ``__post_init__``, after
    ``read_settings`` has checked the types.
    """
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f">= {low}"
        raise ConfigError(key, f"must be {bounds}, not {value}")


def _file_table(section: str) -> str:
    """The table's name in the config file: ``eventhub``, or ``plugins.NAME``."""
    inside = section == CORE_SECTION or section.startswith((f"{CORE_SECTION}.", "plugins."))
    return section if inside else f"plugins.{section}"


def _takes_text(annotation: Any) -> bool:
    return annotation is str or (
        typing.get_origin(annotation) in (typing.Union, types.UnionType)
        and str in typing.get_args(annotation)
    )


def _check(value: Any, annotation: Any, key: str) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Literal:
        if value not in args:
            choices = ", ".join(repr(a) for a in args)
            raise ConfigError(key, f"must be one of {choices}, not {value!r}")
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        for candidate in inner[:-1]:
            try:
                return _check(value, candidate, key)
            except ConfigError:
                pass
        return _check(value, inner[-1], key)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(key, f"must be a list, not {_type_name(value)}")
        return tuple(_check(item, args[0], f"{key}[{i}]") for i, item in enumerate(value))
    if annotation is Any:
        return value
    if dataclasses.is_dataclass(annotation) and isinstance(annotation, type):
        return read_settings(annotation, _table(value, key), key)
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if annotation in (str, int, float, bool):
        # bool is an int in Python; a port of `true` is still wrong.
        if not isinstance(value, annotation) or (annotation is int and isinstance(value, bool)):
            raise ConfigError(key, f"must be {_TYPE_WORDS[annotation]}, not {_type_name(value)} {value!r}")
        return value
    raise TypeError(f"{key}: unsupported annotation {annotation!r}")


_TYPE_WORDS = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


def _type_name(value: object) -> str:
    names = {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "a boolean",
        list: "a list",
        dict: "a table",
    }
    return names.get(type(value), type(value).__name__)
