"""Plugins made for one benchmark run: a module and a dist-info folder with its entry points.

What ``pip install --target`` would leave behind, written directly (no build,
no pip: milliseconds), so that ``eventhub run`` finds the plugin as installed,
through the entry-point group ``eventhub.plugins``, in its workers too. The
folder goes on the server's PYTHONPATH; ``env`` gives the environment for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from benchmarks._proc import child_env

GROUP = "eventhub.plugins"


def write_plugin(root: Path, dist: str, entry_points: Mapping[str, str], modules: Mapping[str, str]) -> Path:
    """Write ``modules`` (name -> source) and a dist-info naming ``entry_points`` under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    for name, source in modules.items():
        (root / f"{name}.py").write_text(source)
    info = root / f"{dist.replace('-', '_')}-0.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0\n")
    lines = [f"[{GROUP}]", *(f"{name} = {target}" for name, target in entry_points.items())]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    return root


def env(root: Path, *more: str) -> dict[str, str]:
    """A server's environment: ``root`` (and ``more``) importable, a discovery cache of its own."""
    return child_env({"EVENTHUB_CACHE_DIR": str(root / ".cache")}, [str(root), *more])
