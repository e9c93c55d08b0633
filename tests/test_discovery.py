"""eventhub.discovery: entry points found on sys.path, cached, conflicts and shadowed copies reported."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from eventhub._discovery import discover


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
