"""Finding the entry points of a group (``eventhub.plugins`` and others), without importing anything.

``importlib.metadata.entry_points(group=...)`` reads the metadata of every
installed distribution: about 250 ms with 2,000 of them. Like stevedore, we keep
a cache keyed on what is installed. The key is, per ``sys.path`` entry, the
modification time of that folder: pip adds and removes ``*.dist-info`` folders
(an upgrade removes the old one), which changes the folder's mtime. So a warm
lookup is one ``stat`` per path entry and one small JSON read; only a path entry
that changed is scanned again. Editing an installed ``entry_points.txt`` in
place is the one change this cannot see; ``EVENTHUB_NO_CACHE=1`` turns the cache off.

The cache lives in ``$EVENTHUB_CACHE_DIR`` or ``$XDG_CACHE_HOME/eventhub``
(``~/.cache/eventhub``), one JSON file for every group and every environment
that ran eventhub. A cache that cannot be read or written is ignored.

A process reads the file once, however many groups it looks up (``eventhub
run`` asks for ``eventhub.hookspecs`` and ``eventhub.plugins``, and for
``eventhub.reactors`` only when the backend named is not built in), and keeps
in memory what it read and what it wrote since. It writes only when a path
entry was scanned, so a warm start writes nothing.

Pruning, on write only: each throwaway venv or ``--target`` folder that ever ran
eventhub leaves keys behind, and every start-up parses them all. So a write
drops the keys of path entries that no longer exist, then keeps at most
``_MAX_KEYS``, dropping the least recently seen first: the file's order is the
order of the writes that last used each key (a write puts the keys its process
used at the end). Warm starts do not reorder the file, since that would be a
write each; a folder only warm starts use can thus reach the front and be
dropped, and it costs one scan on its next start, which puts it back.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import re
import sys
from collections.abc import Iterable, Sequence

from eventhub._frozen import Frozen
from eventhub.config import env_flag

log = logging.getLogger("eventhub.discovery")

GROUP = "eventhub.plugins"
_CACHE_VERSION = 2


class PluginEntry(Frozen):
    """One entry point of the group: what it names and which distribution declares it."""

    name: str
    value: str
    dist: str
    version: str

    def load(self) -> object:
        """Import the module (and attribute) the entry point names, as ``EntryPoint.load`` does.

        Without ``importlib.metadata``, which costs a start-up about 8 ms (it imports
        ``email``, ``zipfile``, ``csv``): a warm start reads only the cache. The
        value is ``module[:attr.attr] [extras]``; extras name no object.
        """
        module, _, attributes = self.value.split("[", 1)[0].partition(":")
        target: object = importlib.import_module(module.strip())
        for attribute in filter(None, attributes.strip().split(".")):
            target = getattr(target, attribute)
        return target


class Conflict(Frozen):
    """Two or more distributions declare the same entry-point name."""

    name: str
    entries: tuple[PluginEntry, ...]

    def describe(self) -> str:
        owners = " and ".join(f"{e.dist} {e.version} ({e.value})" for e in self.entries)
        return f"entry point {self.name!r} is declared by {owners}; uninstall one of them"


def discover(
    path: Sequence[str] | None = None, group: str = GROUP
) -> tuple[list[PluginEntry], list[Conflict]]:
    """The group's entry points on ``path`` (default ``sys.path``), sorted by name.

    Names declared by more than one distribution are returned as conflicts,
    never silently resolved. A distribution installed in two path entries is
    the first one's, as for imports.
    """
    search_path = list(sys.path if path is None else path)
    found: dict[str, list[PluginEntry]] = {}
    shadowed: set[str] = set()
    for entries, dists in _scan_path(search_path, group):
        for entry in entries:
            if _normalize(entry.dist) not in shadowed:
                found.setdefault(entry.name, []).append(entry)
        shadowed.update(dists)
    entries = [group_[0] for _, group_ in sorted(found.items()) if len(group_) == 1]
    conflicts = [Conflict(n, tuple(g)) for n, g in sorted(found.items()) if len(g) > 1]
    return entries, conflicts


def _scan_path(search_path: Sequence[str], group: str) -> Iterable[tuple[list[PluginEntry], list[str]]]:
    """Per path entry, its entries of ``group`` and the (normalized) names of all its distributions.

    From the cache when the folder is unchanged. The names of distributions
    without plugins are kept too: a distribution found earlier on the path
    shadows a later copy of itself, with or without entry points, as for imports.
    """
    loaded = None if env_flag("EVENTHUB_NO_CACHE") else _loaded_cache(_cache_file())
    cache: CacheEntries = {} if loaded is None else loaded.entries
    changed = False
    results: list[tuple[list[PluginEntry], list[str]]] = []
    for item in search_path:
        location = os.path.abspath(item or ".")
        try:
            mtime = os.stat(location).st_mtime_ns
        except OSError:
            continue
        key = f"{group}\0{location}"
        if loaded is not None:
            loaded.used.add(key)
        cached = cache.get(key)
        if cached is not None and cached[0] == mtime:
            entries = [PluginEntry(*fields) for fields in cached[1]]
            dists = cached[2]
        else:
            entries, dists = _scan_location(location, group)
            cache[key] = (mtime, [[e.name, e.value, e.dist, e.version] for e in entries], dists)
            changed = True
        results.append((entries, dists))
    if changed and loaded is not None:
        loaded.save()
    return results


def _scan_location(location: str, group: str) -> tuple[list[PluginEntry], list[str]]:
    """One folder's entries of ``group`` and the normalized names of all its distributions.

    Reads each distribution's ``entry_points.txt`` and nothing else; ``METADATA``
    (name and version, for ``eventhub plugins``) only of the few that declare
    an entry point of the group.
    """
    from importlib import metadata  # only on a cache miss: see PluginEntry.load

    entries: list[PluginEntry] = []
    dists: list[str] = []
    seen: set[str] = set()
    header = f"[{group}]"
    for dist in metadata.distributions(path=[location]):
        # importlib.metadata reads the name from the folder name when it can.
        key = _normalize(getattr(dist, "_normalized_name", None) or dist.metadata["Name"] or "?")
        if key in seen:
            continue  # two copies in one folder: importlib.metadata takes the first too
        seen.add(key)
        dists.append(key)
        text = dist.read_text("entry_points.txt")
        if not text or header not in text:
            continue
        for ep in dist.entry_points.select(group=group):
            entries.append(PluginEntry(ep.name, ep.value, dist.metadata["Name"] or key, dist.version or "?"))
    return entries, dists


def _normalize(dist_name: str) -> str:
    """The PEP 503 normalized name, with underscores, as importlib.metadata makes it."""
    return re.sub(r"[-_.]+", "_", dist_name).lower()


def _cache_file() -> str:
    base = os.environ.get("EVENTHUB_CACHE_DIR")
    if not base:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        base = os.path.join(xdg, "eventhub")
    return os.path.join(base, "entry-points.json")  # not pathlib: ~3 ms of every start-up


# "group \0 folder" -> (folder mtime, [[name, value, dist, version], ...], [dist names])
CacheEntries = dict[str, tuple[int, list[list[str]], list[str]]]

# Keys kept at most. A process uses (existing path entries) x (groups): some 15
# keys for a venv, so this keeps the last twenty or so environments, a file of
# about 70 KB (some 220 bytes a key), parsed in under 1 ms. Uncapped, the file
# reached 2,500 keys (300 KB, most for folders long gone), 4-5 ms to parse.
_MAX_KEYS = 300


class _LoadedCache:
    """The cache file as this process read it, plus what it scanned since: read once, shared by all groups.

    Holding it for the life of the process is safe: every key is checked
    against its folder's mtime before use, so a copy another process has since
    replaced only costs scans (and that process's new keys, at our next write).
    """

    __slots__ = ("entries", "file", "used")

    def __init__(self, file: str) -> None:
        self.file = file
        self.entries = _read_cache(file)
        self.used: set[str] = set()  # keys this process looked up, never pruned by it

    def save(self) -> None:
        """Prune, write, and keep the pruned entries: the memory holds what the file holds."""
        self.entries = _pruned(self.entries, self.used)
        _write_cache(self.file, self.entries)


_loaded: _LoadedCache | None = None


def _loaded_cache(cache_file: str) -> _LoadedCache:
    """The cache of ``cache_file``, read on first use (again only if the cache's path changed)."""
    global _loaded
    if _loaded is None or _loaded.file != cache_file:
        _loaded = _LoadedCache(cache_file)
    return _loaded


def _pruned(entries: CacheEntries, used: set[str]) -> CacheEntries:
    """``entries`` without keys of vanished path entries, at most ``_MAX_KEYS``, least recently seen dropped.

    Keys in ``used`` (this process's) go last, and are always kept, even above
    the cap: dropping one would make each of its starts scan and write again.
    ``exists``, not ``isdir``: a zip file on ``sys.path`` is a path entry too,
    and dropping its key would mean a scan and a write at every start.
    """
    others = [k for k in entries if k not in used and os.path.exists(k.partition("\0")[2])]
    mine = [k for k in entries if k in used]
    kept = others[max(0, len(others) + len(mine) - _MAX_KEYS) :] + mine
    return {key: entries[key] for key in kept}


def _read_cache(cache_file: str) -> CacheEntries:
    try:
        with open(cache_file, encoding="utf-8") as stream:
            data = json.load(stream)
        if data.get("version") != _CACHE_VERSION:
            return {}
        return {key: (int(v[0]), v[1], v[2]) for key, v in data["entries"].items()}
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError):
        return {}


def _write_cache(cache_file: str, entries: CacheEntries) -> None:
    import tempfile  # only on a cache miss: about 2 ms of imports (shutil, random)

    payload = {"version": _CACHE_VERSION, "entries": entries}
    try:
        folder = os.path.dirname(cache_file)
        os.makedirs(folder, exist_ok=True)
        # Write then rename: a concurrent reader sees the old file or the new one, whole.
        fd, temp = tempfile.mkstemp(dir=folder, prefix=".entry-points-")
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            json.dump(payload, stream)
        os.replace(temp, cache_file)
    except OSError as error:
        log.debug("cannot write the plugin cache %s: %s", cache_file, error)
