"""Median, min and max of repeated runs, as stored in results.json."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import TypedDict


class Stat(TypedDict):
    """One figure: the median of ``runs`` with its spread (seconds, or KiB for memory)."""

    median: float
    min: float
    max: float
    runs: list[float]


def summarize(values: Sequence[float]) -> Stat:
    """Median, min and max of one figure's runs (rounded to 0.1 ms)."""
    vals = [round(v, 4) for v in values]
    return Stat(median=round(statistics.median(vals), 4), min=min(vals), max=max(vals), runs=vals)
