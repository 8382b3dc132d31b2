"""Timing helpers for the benchmarks: best of several repeats, printed as a table."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


def best_times(*fns: Callable[[], object], repeats: int = 5) -> list[float]:
    """Best wall-clock time in seconds of each function, measured interleaved.

    The functions take turns (a, b, a, b, ...) after one warm-up call each, so that a burst of
    load from other processes hits every contender alike; the best of ``repeats`` runs is
    the least disturbed one.
    """
    for fn in fns:
        fn()
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - start)
    return best


@dataclass
class Comparison:
    """One benchmark line: corrlib's time against a baseline's, and the target ratio."""

    name: str
    ours: float
    baseline_name: str
    baseline: float
    target: float  # pass when ours / baseline <= target

    @property
    def ratio(self) -> float:
        return self.ours / self.baseline

    @property
    def passed(self) -> bool:
        return self.ratio <= self.target

    def row(self) -> str:
        status = "PASS" if self.passed else "FAIL"
        return (
            f"| {self.name} | {self.ours * 1e3:.1f} | {self.baseline_name} | "
            f"{self.baseline * 1e3:.1f} | {self.ratio:.2f}x | <= {self.target:g}x | {status} |"
        )


HEADER = "| corrlib | ms | baseline | ms | ratio | target | |\n|---|---:|---|---:|---:|---:|---|"
