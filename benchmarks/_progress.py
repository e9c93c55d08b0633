"""The progress line printed while the benchmarks run (on stderr, one line per step)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Counts the steps of the current scenario and prints one line per finished step."""

    def __init__(self, stream: TextIO = sys.stderr) -> None:
        self.stream = stream
        self.started = time.monotonic()
        self.scenario = ""
        self.total = 0
        self.done = 0

    def begin(self, scenario: str, total: int) -> None:
        self.scenario, self.total, self.done = scenario, total, 0
        self.note(f"{scenario}: {total} steps")

    def step(self, what: str, outcome: str) -> None:
        self.done += 1
        self.note(f"{self.scenario} {self.done:>3}/{self.total:<3} {what}: {outcome}")

    def note(self, text: str) -> None:
        elapsed = time.monotonic() - self.started
        minutes, seconds = divmod(int(elapsed), 60)
        self.stream.write(f"[{minutes:2d}m{seconds:02d}s] {text}\n")
        self.stream.flush()
