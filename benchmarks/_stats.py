"""Median and spread of repeated measurements, and ratios between them."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any


def summarize(values: Iterable[float | None]) -> dict[str, float | int] | None:
    """Median, min, max and count of the numbers in ``values`` (``None`` entries skipped)."""
    nums = [float(v) for v in values if v is not None]
    if not nums:
        return None
    return {"median": statistics.median(nums), "min": min(nums), "max": max(nums), "n": len(nums)}


def summarize_runs(runs: Sequence[Mapping[str, Any]], fields: Iterable[str]) -> dict[str, Any]:
    """Summarize each numeric field over a list of per-repeat result dicts."""
    out: dict[str, Any] = {}
    for field in fields:
        values = [r.get(field) for r in runs]
        s = summarize(v for v in values if isinstance(v, (int, float)))
        if s is not None:
            out[field] = s
    return out


def median_of(summary: Mapping[str, Any] | None, field: str) -> float | None:
    """The median of ``field`` in a summary made by ``summarize_runs``, if measured."""
    if not summary or field not in summary:
        return None
    return float(summary[field]["median"])


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """``numerator / denominator``, or ``None`` when either is missing or the denominator is 0."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


def percentile(sorted_values: Sequence[float], fraction: float) -> float | None:
    """The nearest-rank percentile of already sorted values (``None`` if empty)."""
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values)) - 1))
    return sorted_values[index]
