"""The two configurations: the default run (minutes) and ``--quick`` (seconds, for the smoke test)."""

from __future__ import annotations

from dataclasses import dataclass

SCENARIOS = ("echo", "chain", "bus", "discovery", "startup", "memory", "workers", "nats", "http")


@dataclass(frozen=True)
class Config:
    """Every knob of a run; ``--repeat`` overrides ``repeat``."""

    quick: bool
    repeat: int
    echo_cases: tuple[tuple[int, int], ...]
    echo_warmup: float
    echo_duration: float
    chain_counts: tuple[int, ...]
    chain_rounds: int
    chain_sample_seconds: float
    bus_counts: tuple[int, ...]
    bus_rounds: int
    bus_sample_seconds: float
    discovery_dists: tuple[int, ...]
    discovery_warm_runs: int
    startup_runs: int
    memory_conns: int
    memory_base: int
    workers_warmup: float
    workers_duration: float
    nats_events: int
    http_conns: tuple[int, ...]
    http_warmup: int  # whole seconds (wrk takes no fraction); 0: none
    http_duration: int
    http_fanout_events: int


DEFAULT = Config(
    quick=False,
    repeat=3,
    echo_cases=((1, 64), (100, 64), (1000, 64), (5000, 64), (100, 16384)),
    echo_warmup=0.3,
    echo_duration=1.0,
    chain_counts=(1, 10, 100),
    chain_rounds=25,
    chain_sample_seconds=0.01,
    bus_counts=(1, 10, 100),
    bus_rounds=25,
    bus_sample_seconds=0.01,
    discovery_dists=(0, 2000),
    discovery_warm_runs=3,
    startup_runs=15,  # ~70 ms each for eventhub, ~170 ms for twistd: 15 steadies the medians on a shared box
    memory_conns=10_000,
    memory_base=100,
    workers_warmup=0.5,
    workers_duration=2.0,
    nats_events=20_000,
    http_conns=(1, 50, 500),
    http_warmup=1,
    http_duration=2,
    http_fanout_events=2000,
)

QUICK = Config(
    quick=True,
    repeat=1,
    echo_cases=((1, 64),),
    echo_warmup=0.02,
    echo_duration=0.1,
    chain_counts=(1, 3),
    chain_rounds=3,
    chain_sample_seconds=0.002,
    bus_counts=(1, 3),
    bus_rounds=3,
    bus_sample_seconds=0.002,
    discovery_dists=(0, 10),
    discovery_warm_runs=1,
    startup_runs=1,
    memory_conns=20,
    memory_base=4,
    workers_warmup=0.1,
    workers_duration=0.3,
    nats_events=300,
    http_conns=(10,),
    http_warmup=0,
    http_duration=1,
    http_fanout_events=20,
)


def size_label(size: int) -> str:
    """``64`` -> ``64 B``, ``16384`` -> ``16 KiB``."""
    return f"{size // 1024} KiB" if size >= 1024 and size % 1024 == 0 else f"{size} B"


def case_label(conns: int, size: int) -> str:
    """How an echo case is named in the report: ``100 x 64 B``."""
    return f"{conns} x {size_label(size)}"
