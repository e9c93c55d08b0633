"""Plugin discovery scenario: ``eventhub plugins`` with 0 and N unrelated distributions on the path.

The distributions are synthetic dist-info folders (METADATA, RECORD, and for a
third of them an entry_points.txt in groups other than ``eventhub.plugins``) in
a temporary folder put on PYTHONPATH. "Cold" is the first run with an empty
``EVENTHUB_CACHE_DIR``; "warm" the runs after it. ``importlib.metadata``'s own
``entry_points(group=...)`` and a bare ``python -c pass`` are timed alongside
for reference.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._config import Config
from benchmarks._proc import child_env, console_script, pin_cpus
from benchmarks._progress import Progress
from benchmarks._stats import summarize

ENTRY_POINTS_PY = "import importlib.metadata as m; m.entry_points(group='eventhub.plugins')"


def make_distributions(root: Path, count: int) -> None:
    """Write ``count`` synthetic, unrelated distributions into ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        name = f"benchfake{i:05d}"
        info = root / f"{name}-1.0.{i}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0.{i}\n"
            "Summary: a synthetic distribution for eventhub's discovery benchmark\n"
        )
        (info / "RECORD").write_text("")
        if i % 3 == 0:
            (info / "entry_points.txt").write_text(
                f"[console_scripts]\n{name} = {name}:main\n\n[benchfake.plugins]\nx{i} = {name}:X\n"
            )


def _time(argv: list[str], env: dict[str, str], cpu: int | None) -> tuple[float, str | None]:
    """Wall seconds of one run, and its error (non-zero exit) if any."""

    def pin() -> None:
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})

    t0 = time.perf_counter()
    done = subprocess.run(
        argv, env=env, capture_output=True, text=True, timeout=120, preexec_fn=pin, check=False
    )
    elapsed = time.perf_counter() - t0
    if done.returncode != 0:
        return elapsed, f"exit {done.returncode}: {done.stderr.strip()[-300:]}"
    return elapsed, None


def run(cfg: Config, progress: Progress) -> dict[str, Any]:
    cpu, _ = pin_cpus()
    eventhub = [console_script("eventhub"), "plugins"]
    python = [console_script("python")]
    subjects = {
        "eventhub plugins (cold)": None,
        "eventhub plugins (warm)": None,
        "importlib.metadata entry_points": [*python, "-c", ENTRY_POINTS_PY],
        "python -c pass": [*python, "-c", "pass"],
    }
    samples: dict[tuple[int, str], list[float]] = {(n, s): [] for n in cfg.discovery_dists for s in subjects}
    errors: dict[str, str] = {}
    progress.begin("discovery", cfg.repeat * len(cfg.discovery_dists))
    with tempfile.TemporaryDirectory(prefix="eventhub-bench-dists-") as tmp:
        paths = {}
        for n in cfg.discovery_dists:
            paths[n] = Path(tmp, f"dists{n}")
            make_distributions(paths[n], n)
        for rep in range(cfg.repeat):
            order = list(cfg.discovery_dists)
            for n in order[rep % len(order) :] + order[: rep % len(order)]:
                with tempfile.TemporaryDirectory(prefix="eventhub-bench-cache-") as cache:
                    env = child_env({"EVENTHUB_CACHE_DIR": cache}, [str(paths[n])])
                    _measure_rep(n, cfg, env, cpu, eventhub, subjects, samples, errors)
                cold = samples[(n, "eventhub plugins (cold)")]
                warm = samples[(n, "eventhub plugins (warm)")]
                progress.step(f"{n} distributions", _brief(cold, warm, errors))
    table = []
    for (n, subject), values in samples.items():
        table.append({"dists": n, "subject": subject, "summary": summarize(v * 1000 for v in values)})
    return {"dists": list(cfg.discovery_dists), "unit": "ms", "rows": table, "errors": errors}


def _measure_rep(
    n: int,
    cfg: Config,
    env: dict[str, str],
    cpu: int | None,
    eventhub: list[str],
    subjects: dict[str, list[str] | None],
    samples: dict[tuple[int, str], list[float]],
    errors: dict[str, str],
) -> None:
    elapsed, error = _time(eventhub, env, cpu)  # the first run fills the empty cache
    _record(samples[(n, "eventhub plugins (cold)")], elapsed, error, errors, "eventhub plugins")
    for _ in range(cfg.discovery_warm_runs):
        for subject, argv in subjects.items():
            if subject.endswith("(cold)"):
                continue
            elapsed, error = _time(argv or eventhub, env, cpu)
            _record(samples[(n, subject)], elapsed, error, errors, subject)


def _record(
    values: list[float], elapsed: float, error: str | None, errors: dict[str, str], what: str
) -> None:
    if error is None:
        values.append(elapsed)
    else:
        errors[what] = error


def _brief(cold: list[float], warm: list[float], errors: dict[str, str]) -> str:
    if not cold and not warm:
        return "ERROR " + "; ".join(errors.values())[:150]
    text = f"cold {cold[-1] * 1000:.0f} ms" if cold else "cold ?"
    return text + (f", warm {warm[-1] * 1000:.0f} ms" if warm else "")
