"""What every benchmark server shares: the port line, the memory report, the fd limit."""

from __future__ import annotations

import argparse
import gc
import resource
import signal
import sys
import tracemalloc
from collections.abc import Callable
from typing import Any

BACKLOG = 1024


def raise_nofile() -> None:
    """Allow as many descriptors as the hard limit does (thousands of connections)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def announce(port: int) -> None:
    """Print the listening port, the one line the harness waits for."""
    print(port, flush=True)


def report_memory(*_: Any) -> None:
    """Print ``MEM <bytes>`` of traced Python memory (-1 when tracemalloc is off)."""
    gc.collect()
    traced = tracemalloc.get_traced_memory()[0] if tracemalloc.is_tracing() else -1
    sys.stdout.write(f"MEM {traced}\n")
    sys.stdout.flush()


def install_memory_report(register: Callable[[int, Callable[..., None]], object] | None = None) -> None:
    """Answer SIGUSR1 with ``report_memory``; event loops may pass their own ``register``."""
    if register is None:
        signal.signal(signal.SIGUSR1, report_memory)
    else:
        register(signal.SIGUSR1, report_memory)


def parser(description: str) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(description=description)
