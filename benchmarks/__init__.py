"""eventhub's benchmark suite: ``python -m benchmarks`` measures eventhub beside its peers.

Each scenario (echo, chain, bus, discovery, startup, memory) lives in its own module
and returns plain dictionaries; ``benchmarks.report`` turns them into the table,
``results.json``, the Markdown report and the plots under ``docs/benchmarks/``.
Servers and the load generator run as separate processes (``benchmarks.servers``,
``benchmarks.loadgen``) so that a server's CPU time can be read from ``/proc``.
"""

from __future__ import annotations
