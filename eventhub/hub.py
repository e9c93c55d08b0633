"""The Hub: owns the plugin manager, the chain and the reactor (being written)."""

from __future__ import annotations


class Hub:
    pass
