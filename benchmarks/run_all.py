"""Run every benchmark and print one Markdown table (the README's performance section).

Usage: ``make bench`` (or ``python benchmarks/run_all.py``). Exit status 1 if a target is missed.
"""

from __future__ import annotations

import platform
import sys

import torch
from _timing import HEADER
from bench_core import run as run_core
from bench_import import run as run_import


def main() -> int:
    torch.set_num_threads(torch.get_num_threads())
    print(
        f"# corrlib benchmarks on {platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads\n"
    )
    print(HEADER)
    results = run_core()
    results += run_import()
    for r in results:
        print(r.row(), flush=True)
    failed = [r for r in results if not r.passed]
    print(f"\n{len(results) - len(failed)} of {len(results)} targets met")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
