"""eventhub.discovery: entry points found on sys.path, cached, conflicts and shadowed copies reported."""

from __future__ import annotations

import builtins
import json
import os
import shutil
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

import eventhub._discovery as discovery
from eventhub import Hub, UsageError
from eventhub._discovery import PluginEntry, discover
from eventhub.reactor import Reactor, backend_availability


def _fake_dist(site: Path, dist: str, eps: dict[str, str], group: str = "eventhub.plugins") -> None:
    info = site / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    lines = "".join(f"{name} = {value}\n" for name, value in eps.items())
    (info / "entry_points.txt").write_text(f"[{group}]\n{lines}")


def test_discovery_cache_notices_installs_and_uninstalls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVENTHUB_CACHE_DIR", str(tmp_path / "cache"))
    site = tmp_path / "site"
    site.mkdir()
    _fake_dist(site, "one", {"one": "one_mod"})
    _fake_dist(site, "unrelated", {"x": "y"}, group="console_scripts")
    entries, conflicts = discover([str(site)])
    assert [(e.name, e.dist, e.version) for e in entries] == [("one", "one", "1.0")]
    assert conflicts == []
    cache = json.loads((tmp_path / "cache" / "entry-points.json").read_text())
    assert len(cache["entries"]) == 1

    # Warm: served from the cache (a dist-info edited in place is not re-read)...
    (site / "one-1.0.dist-info" / "entry_points.txt").write_text("[eventhub.plugins]\nrenamed = one_mod\n")
    assert [e.name for e in discover([str(site)])[0]] == ["one"]
    # ...but an install or uninstall changes the folder and is seen.
    time.sleep(0.01)
    _fake_dist(site, "two", {"two": "two_mod"})
    entries, conflicts = discover([str(site)])
    assert [e.name for e in entries] == ["renamed", "two"]
    assert conflicts == []
    os.rename(site / "two-1.0.dist-info", tmp_path / "gone")
    assert [e.name for e in discover([str(site)])[0]] == ["renamed"]


def test_discovery_reports_conflicts_and_survives_a_broken_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVENTHUB_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "entry-points.json").write_text("{not json")
    site = tmp_path / "site"
    _fake_dist(site, "a-dist", {"same": "a_mod"})
    _fake_dist(site, "b-dist", {"same": "b_mod"})
    entries, conflicts = discover([str(site)])
    assert entries == []
    assert [c.name for c in conflicts] == ["same"]
    assert "declared by a-dist 1.0 (a_mod) and b-dist 1.0 (b_mod)" in conflicts[0].describe()


def test_an_earlier_copy_of_a_distribution_shadows_a_later_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVENTHUB_CACHE_DIR", str(tmp_path / "cache"))
    _fake_dist(tmp_path / "user", "shadow", {"newname": "new_mod"})
    _fake_dist(tmp_path / "system", "shadow", {"oldname": "old_mod"})
    _fake_dist(tmp_path / "early", "quiet", {"unrelated": "x"}, group="console_scripts")
    _fake_dist(tmp_path / "late", "quiet", {"ghost": "ghost_mod"})
    for _ in range(2):  # cold, then from the cache
        entries, conflicts = discover([str(tmp_path / d) for d in ("user", "system", "early", "late")])
        assert [e.name for e in entries] == ["newname"]
        assert conflicts == []


GROUPS = ("eventhub.hookspecs", "eventhub.plugins", "eventhub.reactors")


def _cache_file(tmp_path: Path) -> Path:
    return tmp_path / "cache" / "entry-points.json"


def _cached_keys(tmp_path: Path) -> list[str]:
    """The keys of the cache file, in the file's order, as ``group folder``."""
    entries: dict[str, Any] = json.loads(_cache_file(tmp_path).read_text())["entries"]
    return [key.replace("\0", " ") for key in entries]


def _new_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start over as a new process would: forget what this one read of the cache and used."""
    monkeypatch.setattr(discovery, "_loaded", None, raising=False)


def _file_identity(path: Path) -> tuple[int, int, int]:
    """Changes whenever the file is rewritten (a write makes a new file and renames it over the old)."""
    stat = path.stat()
    return stat.st_ino, stat.st_mtime_ns, stat.st_size


def _touch_folder(folder: Path) -> None:
    """Change the folder's mtime, as an install does, so its cached key is stale."""
    time.sleep(0.01)
    (folder / "installed.txt").write_text("")


def test_a_write_drops_the_keys_of_folders_that_no_longer_exist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A throwaway venv leaves its keys behind; the next write drops them, and only them."""
    monkeypatch.setenv("EVENTHUB_CACHE_DIR", str(tmp_path / "cache"))
    throwaway, other, site = tmp_path / "throwaway", tmp_path / "other", tmp_path / "site"
    for folder in (throwaway, other, site):
        folder.mkdir()
    discover([str(throwaway), str(other)])
    _new_process(monkeypatch)
    shutil.rmtree(throwaway)
    discover([str(site)])  # a miss: written
    assert _cached_keys(tmp_path) == [f"eventhub.plugins {other}", f"eventhub.plugins {site}"]


def test_the_cache_keeps_the_most_recently_seen_keys_up_to_its_cap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVENTHUB_CACHE_DIR", str(tmp_path / "cache"))
    folders = [tmp_path / f"venv{n:04}" for n in range(1000)]
    for folder in folders:
        folder.mkdir()
    site = tmp_path / "site"
    site.mkdir()
    discover([str(f) for f in folders])
    # All of a process's own keys are kept, however many: dropping one would
    # make each of its starts scan and write again.
    assert len(_cached_keys(tmp_path)) == 1000
    _new_process(monkeypatch)
    discover([str(folders[0]), str(site)])  # folders[0] seen again; site is new: a write
    keys = _cached_keys(tmp_path)
    assert len(keys) < 1000
    cap = discovery._MAX_KEYS
    assert len(keys) == cap
    # Dropped first: the keys least recently seen by a write, here the front of the old file.
    survivors = [f"eventhub.plugins {f}" for f in folders[1000 - (cap - 2) :]]
    assert keys == [*survivors, f"eventhub.plugins {folders[0]}", f"eventhub.plugins {site}"]


def test_a_process_reads_the_cache_file_once_for_all_groups(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Read once even when it is written in between: memory then holds what was written."""
    monkeypatch.setenv("EVENTHUB_CACHE_DIR", str(tmp_path / "cache"))
    site = tmp_path / "site"
    _fake_dist(site, "spec-dist", {"specs": "spec_mod"}, group="eventhub.hookspecs")
    _fake_dist(site, "plugin-dist", {"plugin": "plugin_mod"})
    _fake_dist(site, "backend-dist", {"backend": "backend_mod"}, group="eventhub.reactors")
    cache_file = str(_cache_file(tmp_path))
    opened: list[str] = []
    real_open = builtins.open

    def counting_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        if str(file) == cache_file:
            opened.append(str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", counting_open)

    def names(group: str) -> list[str]:
        return [e.name for e in discover([str(site)], group=group)[0]]

    for process in ("cold", "warm"):
        assert [names(group) for group in GROUPS] == [["specs"], ["plugin"], ["backend"]], process
        assert len(opened) == 1, process  # cold: one attempt, the file does not exist yet
        # Each group's scan was written, the last write holding the first ones' keys.
        assert _cached_keys(tmp_path) == [f"{group} {site}" for group in GROUPS]
        _new_process(monkeypatch)
        opened.clear()


def test_a_warm_start_does_not_rewrite_the_cache_even_with_stale_keys_in_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVENTHUB_CACHE_DIR", str(tmp_path / "cache"))
    gone, site = tmp_path / "gone", tmp_path / "site"
    _fake_dist(site, "one", {"one": "one_mod"})
    gone.mkdir()
    for group in GROUPS:
        discover([str(gone), str(site)], group=group)
    shutil.rmtree(gone)
    written = _file_identity(_cache_file(tmp_path))
    for _ in range(2):  # two warm starts: the stale keys wait for the next write
        _new_process(monkeypatch)
        for group in GROUPS:
            discover([str(gone), str(site)], group=group)
        assert _file_identity(_cache_file(tmp_path)) == written
    _touch_folder(site)
    _new_process(monkeypatch)
    assert [e.name for e in discover([str(site)])[0]] == ["one"]  # a miss: written, pruned
    # The key this process used goes last: the file's order is how recently a write saw each key.
    assert _cached_keys(tmp_path) == [
        f"eventhub.hookspecs {site}",
        f"eventhub.reactors {site}",
        f"eventhub.plugins {site}",
    ]


def test_no_cache_neither_reads_nor_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVENTHUB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("EVENTHUB_NO_CACHE", "1")
    site = tmp_path / "site"
    _fake_dist(site, "one", {"one": "one_mod"})
    assert [e.name for e in discover([str(site)])[0]] == ["one"]
    assert not _cache_file(tmp_path).exists()


def test_a_built_in_backend_does_not_look_up_third_party_backends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``eventhub run --backend epoll``: the hub checks the name, the reactor is built; neither scans
    ``eventhub.reactors``. An unknown name is looked up there, and the error lists what exists."""
    monkeypatch.setenv("EVENTHUB_CACHE_DIR", str(tmp_path / "cache"))
    site = tmp_path / "site"
    _fake_dist(site, "third-poller", {"third": "third_mod:Poller"}, group="eventhub.reactors")
    monkeypatch.syspath_prepend(str(site))
    scanned: list[str] = []
    real_scan = discovery._scan_path

    def recording_scan(search_path: list[str], group: str) -> Iterable[tuple[list[PluginEntry], list[str]]]:
        scanned.append(group)
        return real_scan(search_path, group)

    monkeypatch.setattr(discovery, "_scan_path", recording_scan)
    built_in = [name for name, reason in backend_availability().items() if reason is None]
    assert {"auto", "select", "asyncio"} <= set(built_in)
    for name in built_in:
        Hub(backend=name)
        Reactor(name).close()
    assert "eventhub.reactors" not in scanned
    with pytest.raises(UsageError, match=r"unknown reactor backend 'nosuch'; available: auto, .*\bthird\b"):
        Hub(backend="nosuch")
    assert "eventhub.reactors" in scanned
