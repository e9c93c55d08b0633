"""``python -m benchmarks.transports --quick``: every subject measured or explained, every echo checked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from benchmarks import transports

REPO = Path(__file__).resolve().parent.parent


def test_the_transport_benchmark_runs_every_subject(tmp_path: Path) -> None:
    out = tmp_path / "transports.json"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.transports", "--quick", "--json", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(out.read_text())
    assert set(results["tls"]) == set(transports.TLS_SUBJECTS)
    assert set(results["udp"]) == set(transports.UDP_SUBJECTS)
    for name in ("eventhub-tls", "asyncio-tls"):
        assert results["tls"][name]["us_per_round_trip"] >= 0, results["tls"][name]
    for name, row in results["tls"].items():
        assert "skipped" in row or "cpu_s_per_gb" in row, (name, row)
    for name in ("eventhub-udp", "bare-udp"):
        assert results["udp"][name]["datagrams_per_cpu_s"] > 0, results["udp"][name]
    assert "TLS echo" in done.stdout and "UDP echo" in done.stdout
