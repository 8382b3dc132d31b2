"""Time of ``import corrlib`` against ``import torch``, each in a fresh interpreter.

``import corrlib`` includes ``import torch``; the target is at most 1.2x, i.e. corrlib adds at
most a fifth on top of torch (it must not pull in matplotlib, ``scipy.stats`` or ``scipy.fft``,
which are imported on first use). Every measurement starts a new Python process that times only
its import statement (not the interpreter's start-up); the two imports take turns, after one
warm-up each, so that the machine's load and the file cache treat them alike. The best of the
repeats and their median are both reported.

Usage: ``python benchmarks/bench_import.py`` (or through ``run_all.py``).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path

from _timing import HEADER, Comparison

ROOT = Path(__file__).resolve().parents[1]
TARGET = 1.2

_CHILD = "import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"


def import_time(module: str) -> float:
    """Seconds that ``import module`` takes in a fresh interpreter."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    out = subprocess.run(
        [sys.executable, "-c", _CHILD.format(module=module)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return float(out.stdout.strip().splitlines()[-1])


def measure(repeats: int = 7) -> dict[str, list[float]]:
    """Interleaved fresh-interpreter import times of torch and corrlib, after one warm-up each."""
    modules = ("torch", "corrlib")
    for module in modules:
        import_time(module)
    times: dict[str, list[float]] = {m: [] for m in modules}
    for _ in range(repeats):
        for module in modules:
            times[module].append(import_time(module))
    return times


def run(repeats: int = 7) -> list[Comparison]:
    times = measure(repeats)
    ours, base = times["corrlib"], times["torch"]
    return [
        Comparison(
            f"import corrlib, best of {repeats} fresh interpreters",
            min(ours),
            "import torch",
            min(base),
            TARGET,
        ),
        Comparison(
            f"import corrlib, median of {repeats} fresh interpreters",
            statistics.median(ours),
            "import torch",
            statistics.median(base),
            TARGET,
        ),
    ]


def main() -> int:
    results = run()
    print(HEADER)
    for r in results:
        print(r.row())
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
