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
import json
import logging
import math
import os
import re
import socket
import stat
import sys
import types
import typing
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from eventhub._frozen import Frozen
from eventhub.errors import ConfigError, UsageError
from eventhub.schedule import Schedule
from eventhub.schedule import check as check_schedules

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
    workers: int | str = 1  # "auto": one per usable core

    def __post_init__(self) -> None:
        check_schedules(self.schedule)
        if isinstance(self.workers, str) and self.workers != "auto":
            raise ConfigError("eventhub.workers", f"must be a number or 'auto', not {self.workers!r}")
        if isinstance(self.workers, int) and self.workers < 1:
            raise ConfigError("eventhub.workers", f"must be at least 1, not {self.workers}")


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


class Config(Frozen):
    """The whole configuration: the core table and one table per plugin."""

    __slots__ = ("core", "core_given", "overrides", "plugins", "source")
    __match_args__ = ("core", "plugins", "source", "overrides", "core_given")

    core: CoreSettings
    plugins: Mapping[str, Mapping[str, Any]]
    source: str
    # table name (``eventhub`` or a plugin's) -> key -> the raw text given to --set
    overrides: Mapping[str, Mapping[str, str]]
    # the keys of [eventhub] given in the file or with --set (the others are defaults)
    core_given: frozenset[str]

    def __init__(
        self,
        core: CoreSettings | None = None,
        plugins: Mapping[str, Mapping[str, Any]] | None = None,
        source: str = "defaults",
        overrides: Mapping[str, Mapping[str, str]] | None = None,
        core_given: frozenset[str] = frozenset(),
    ) -> None:
        self._init(core=core or CoreSettings(), plugins=plugins or {}, source=source)
        self._init(overrides=overrides or {}, core_given=core_given)

    def plugin_settings(self, name: str) -> Settings:
        """Plugin ``name``'s own table (empty when it has none)."""
        return Settings(name, self.plugins.get(name, {}), self.source, self.overrides.get(name))

    def origin(self, section: str, key: str) -> str:
        """Where ``section.key`` came from: ``--set``, the file, or ``default``."""
        if key in self.overrides.get(section, {}):
            return "--set"
        given = key in self.core_given if section == CORE_SECTION else key in self.plugins.get(section, {})
        return self.source if given else "default"

    def effective(self) -> dict[str, dict[str, tuple[Any, str]]]:
        """Every table: key -> (value, origin); ``[eventhub]`` with its defaults too."""
        tables: dict[str, dict[str, tuple[Any, str]]] = {CORE_SECTION: {}}
        for spec in dataclasses.fields(CoreSettings):
            value = _plain(getattr(self.core, spec.name))
            tables[CORE_SECTION][spec.name] = (value, self.origin(CORE_SECTION, spec.name))
        for name, table in sorted(self.plugins.items()):
            tables[f"plugins.{name}"] = {key: (value, self.origin(name, key)) for key, value in table.items()}
        return tables


def toml_value(value: Any) -> str:
    """``value`` written as TOML (an inline table for a mapping), for ``eventhub config``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{key} = {toml_value(item)}" for key, item in value.items()) + " }"
    if value is None:
        return '""  # none'
    return json.dumps(repr(value))


def _plain(value: Any) -> Any:
    """``value`` with dataclasses (schedule entries) turned into tables, tuples into lists."""
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: v for k, v in dataclasses.asdict(value).items() if v is not None}
    return value


def load(
    path: str | os.PathLike[str] | None = None,
    overrides: Sequence[str] = (),
    cwd: str | os.PathLike[str] | None = None,
) -> Config:
    """Read the config file (``path``, else ``eventhub.toml`` or ``pyproject.toml`` in ``cwd``)."""
    # os.path rather than pathlib: pathlib (with urllib.parse) is ~3 ms of every start-up.
    folder = os.fspath(cwd) if cwd else os.getcwd()
    document, source = _read_document(os.fspath(path) if path else None, folder)
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
    return Config(core=core, plugins=plugins, source=source, overrides=raw, core_given=frozenset(core_table))


def _read_document(path: str | None, cwd: str) -> tuple[dict[str, Any], str]:
    if path is not None:
        return _parse(path), str(path)
    candidate = os.path.join(cwd, CONFIG_FILE)
    if _file_mode(candidate) is not None:
        return _parse(candidate), str(candidate)
    pyproject = os.path.join(cwd, PYPROJECT)
    if _file_mode(pyproject) is not None:
        tool = _parse(pyproject).get("tool", {})
        section = tool.get("eventhub") if isinstance(tool, dict) else None
        if section is not None and not isinstance(section, dict):
            raise UsageError(f"{pyproject}: [tool.eventhub] must be a table, not {_type_name(section)}")
        if section is not None:
            document = {k: v for k, v in section.items() if k != "plugins"}
            return {
                CORE_SECTION: document,
                "plugins": section.get("plugins", {}),
            }, f"{pyproject} [tool.eventhub]"
    return {}, "defaults"


def _parse(path: str) -> dict[str, Any]:
    """The TOML document in ``path``; a ``UsageError`` naming it for anything else.

    The one place a config file is read, so each way it can be wrong is one
    line with the path (exit status 2), never a traceback: not there, not a
    regular file (a folder; a device or a pipe, which could block the read),
    unreadable, not UTF-8, invalid TOML, or nested deeper than the parser's
    recursion can go.
    """
    mode = _file_mode(path)
    if mode is None:
        raise UsageError(f"config file not found: {path}")
    if not stat.S_ISREG(mode):
        raise UsageError(f"{path}: not a file ({_file_kind(mode)})")
    try:
        with open(path, "rb") as stream:
            data = stream.read()
    except OSError as error:
        raise UsageError(f"{path}: cannot read: {error.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise UsageError(f"{path}: not UTF-8 (line {line}): TOML files are UTF-8") from None
    try:
        return _toml_loads(text)
    except ValueError as error:  # tomllib.TOMLDecodeError
        # The message ends with "(at line L, column C)".
        raise UsageError(f"{path}: invalid TOML: {error}") from None
    except RecursionError:
        raise UsageError(f"{path}: invalid TOML: nested too deeply") from None


def _file_mode(path: str) -> int | None:
    """``path``'s mode (following links), None when nothing is there; ``UsageError`` if it cannot be seen."""
    try:
        return os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError, ValueError):  # ValueError: a NUL in the path
        return None
    except OSError as error:
        raise UsageError(f"{path}: cannot read: {error.strerror}") from None


def _file_kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a pipe"
    return "a socket" if stat.S_ISSOCK(mode) else "not a regular file"


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
    try:
        value = parse_value(raw_text)
    except RecursionError:
        raise UsageError(f"--set {target.strip()}: nested too deeply") from None
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
    if raw.isascii() and raw.isdecimal() and (raw == "0" or raw[0] != "0"):
        return int(raw)  # what TOML makes of it (a port, a count), without importing the parser
    try:
        return _toml_loads(f"value = {raw}")["value"]
    except ValueError:  # tomllib.TOMLDecodeError
        return raw


def _toml_loads(text: str) -> dict[str, Any]:
    """``tomllib.loads``, imported on first use: a start-up without a config file skips ~2 ms."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    return tomllib.loads(text)


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
        try:
            values[key] = _check(value, hints[key], f"{section}.{key}")
        except ConfigError as error:
            if not isinstance(table, Settings) or not origin:  # where it came from is not known
                raise
            raise ConfigError(
                error.key, f"{str(error).removeprefix(error.key + ': ')} (from {origin})"
            ) from None
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


MIN_TIMEOUT = 0.1  # seconds: a shorter idle timeout would keep the loop sweeping, not serving


def check_timeout(key: str, value: float, minimum: float = MIN_TIMEOUT) -> None:
    """``ConfigError`` naming ``key`` unless ``value`` is 0 (off) or finite seconds >= ``minimum``.

    Below the minimum a timeout is a mistake, not a setting: ``1e-9`` makes its
    timer fire on every pass of the loop, and the CPU spins.
    """
    if value == 0:
        return
    if not math.isfinite(value) or value < minimum:
        raise ConfigError(key, f"must be 0 (off) or a number of seconds >= {minimum:g}, not {value:g}")


_HOST_NAME = re.compile(
    r"(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?"
)


def check_host(key: str, host: str) -> None:
    """``ConfigError`` naming ``key`` unless ``host`` is an IP address or shaped like a host name.

    The interface a service listens on. Names are resolved only when listening.
    An empty string is an error, not "every interface": exposing a service to
    other machines has to be asked for by name, ``"0.0.0.0"`` (IPv4) or ``"::"``.
    """
    if host == "":
        raise ConfigError(key, 'must not be empty; "0.0.0.0" or "::" listen on every interface')
    if _HOST_NAME.fullmatch(host):
        return
    try:
        socket.getaddrinfo(host, None, flags=socket.AI_NUMERICHOST | socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError, ValueError):
        raise ConfigError(key, f"must be an IP address or a host name, not {host!r}") from None


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
