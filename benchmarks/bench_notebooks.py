"""The course's time budget: run every notebook in a fresh kernel and time it.

Each notebook runs top to bottom in a new kernel of this interpreter (like "Restart Kernel and
Run All Cells"), from the notebook's folder, without saving anything. Prints one Markdown table
(the README's time budget): every notebook must finish in under 120 s (the course plan's limit)
and the whole course in under 10 minutes; the exit status is 1 if a target is missed or a
notebook fails.

Usage: ``make bench`` or ``python benchmarks/bench_notebooks.py [NOTEBOOK ...]`` (default: every
``notebooks/*.ipynb``).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
from jupyter_client.kernelspec import NATIVE_KERNEL_NAME, KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_TARGET_S = 120.0
TOTAL_TARGET_S = 600.0
HEADER = "| notebook | seconds | target | |\n|---|---:|---:|---|"


@dataclass
class NotebookTiming:
    """One notebook's wall-clock time in a fresh kernel (``error`` set when it failed)."""

    name: str
    seconds: float
    error: str = ""

    @property
    def passed(self) -> bool:
        return not self.error and self.seconds < NOTEBOOK_TARGET_S

    def row(self) -> str:
        status = "PASS" if self.passed else f"FAIL {self.error}".strip()
        return f"| {self.name} | {self.seconds:.1f} | < {NOTEBOOK_TARGET_S:g} s | {status} |"


def time_notebook(path: Path, *, timeout: float = 600.0) -> NotebookTiming:
    """Execute a notebook in a new kernel of this interpreter and time it.

    Parameters
    ----------
    path : Path
        The notebook; it is read, executed in memory and never written.
    timeout : float, default 600
        Seconds allowed per cell.

    Returns
    -------
    NotebookTiming
        The time from kernel start to the end of the last cell.
    """
    nb = nbformat.read(path, as_version=4)
    # only the native kernel: the interpreter running this script, whatever kernelspecs exist
    kernel_manager = KernelManager(
        kernel_name=NATIVE_KERNEL_NAME, kernel_spec_manager=KernelSpecManager(kernel_dirs=[])
    )
    client = NotebookClient(
        nb,
        km=kernel_manager,
        timeout=timeout,
        resources={"metadata": {"path": str(path.parent)}},
    )
    error = ""
    # the kernel's own stderr (start-up notices) is shown only when the notebook fails
    with tempfile.TemporaryFile("w+") as kernel_log:
        start = time.perf_counter()
        try:
            client.execute(stderr=kernel_log)
        except CellTimeoutError:
            error = "(cell timeout)"
        except CellExecutionError as exc:
            error = f"({exc.ename})"
        except Exception as exc:  # a dead kernel, a missing kernelspec, ...
            error = f"({type(exc).__name__})"
        seconds = time.perf_counter() - start
        if error:
            kernel_log.seek(0)
            print(f"{path.name} failed; kernel log:\n{kernel_log.read()}", file=sys.stderr)
    return NotebookTiming(path.stem, seconds, error)


def total_row(timings: list[NotebookTiming]) -> tuple[str, bool]:
    """The table's total line and whether the course's total target is met."""
    total = sum(t.seconds for t in timings)
    passed = total < TOTAL_TARGET_S
    status = "PASS" if passed else "FAIL"
    return f"| **total** | {total:.1f} | < {TOTAL_TARGET_S:g} s | {status} |", passed


def main(argv: list[str] | None = None) -> int:
    """Time the notebooks, print the table; return 1 if a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb"))
    if not paths:
        print("no notebooks to time", file=sys.stderr)
        return 1
    print(
        f"# Notebook run times in a fresh kernel on {platform.machine()}, "
        f"{os.cpu_count()} CPU cores, Python {platform.python_version()}\n"
    )
    print(HEADER)
    timings = []
    for path in paths:
        timings.append(time_notebook(path))
        print(timings[-1].row(), flush=True)
    line, total_ok = total_row(timings)
    print(line)
    met = sum(t.passed for t in timings) + total_ok
    print(f"\n{met} of {len(timings) + 1} targets met")
    return 0 if met == len(timings) + 1 else 1


if __name__ == "__main__":
    sys.exit(main())
