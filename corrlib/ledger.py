"""Key results: each chapter prints its headline numbers once, by name, for the ledger.

The ledger of the article's claims (``07_conclusion``) quotes no number by hand. Each chapter
ends its experiments with one cell, tagged ``key-results``, that calls :func:`show_key_results`;
the cell's stored output is the chapter's record of what it measured. The ledger reads those
records back with :func:`read_key_results`, so every number it shows is bound to one named
result in one notebook's stored output, and a stale or edited number cannot pass unnoticed.

A printed record looks like this (one ``name = value`` line per result)::

    Key results of chapter 05 (cited by name in 07_conclusion):
      05.whitening_adam_gain = +0.012
      05.whitening_adam_verdict = inconclusive

Examples
--------
>>> record = show_key_results("05", {"gain": 0.0123, "verdict": "inconclusive"}, digits=3)
Key results of chapter 05 (cited by name in 07_conclusion):
  05.gain = 0.012
  05.verdict = inconclusive
>>> parse_key_results("  05.gain = 0.012\\n  05.verdict = inconclusive\\n")
{'05.gain': '0.012', '05.verdict': 'inconclusive'}
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from enum import Enum
from numbers import Integral, Real
from os import PathLike
from typing import Any

__all__ = [
    "KEY_RESULTS_TAG",
    "format_key_value",
    "parse_key_results",
    "read_key_results",
    "show_key_results",
]

KEY_RESULTS_TAG = "key-results"
"""The cell tag of a chapter's key-results cell."""

_NAME = re.compile(r"^[0-9]{2}\.[a-z][a-z0-9_]*$")
_LINE = re.compile(r"^  (?P<name>[0-9]{2}\.[a-z][a-z0-9_]*) = (?P<value>\S(?:.*\S)?)$")


def format_key_value(value: Any, digits: int = 2, signed: bool = False) -> str:
    """The printed form of one key result.

    Parameters
    ----------
    value : str, Enum, int, float, NumPy or 0-d torch scalar
        Strings and enum members (a :class:`~corrlib.comparison.Verdict`) print as their text;
        integers as integers; real numbers rounded to ``digits`` decimals.
    digits : int, default=2
        Decimals of a real number.
    signed : bool, default=False
        Print a leading ``+`` on a non-negative real number (for differences).

    Returns
    -------
    str

    Raises
    ------
    ValueError
        If a real number is NaN or infinite (a ledger cannot cite it), or a string is empty or
        spans several lines.
    TypeError
        If ``value`` is none of the above (a tensor with several elements, a list).
    """
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, str):
        text = value.strip()
        if not text or "\n" in text:
            raise ValueError(f"a key result must be one non-empty line of text, got {value!r}")
        return text
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        value = value.item()  # NumPy and 0-d torch scalars
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, Integral):
        return f"{int(value):+d}" if signed else str(int(value))
    if isinstance(value, Real):
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"a key result must be finite, got {number}")
        text = f"{number:+.{digits}f}" if signed else f"{number:.{digits}f}"
        return text.replace("-0." + "0" * digits, "0." + "0" * digits)  # no "-0.00"
    raise TypeError(
        f"a key result is a string, an enum member or a real number, got {type(value).__name__}"
    )


def show_key_results(
    chapter: str, results: Mapping[str, Any], digits: int = 2, signed: bool = False
) -> dict[str, str]:
    """Print a chapter's key results, one ``chapter.name = value`` line each.

    Parameters
    ----------
    chapter : str
        The chapter's two-digit number, ``"05"``.
    results : mapping of str to value
        Result names (lower case, digits and ``_``, starting with a letter) and their values;
        a value that is already a string is printed as it is (format it yourself when a result
        needs other decimals than ``digits``).
    digits, signed
        Passed to :func:`format_key_value` for real-number values.

    Returns
    -------
    dict of str to str
        The printed record, ``{"05.name": "value"}``, as :func:`read_key_results` reads it back.

    Raises
    ------
    ValueError
        If ``chapter`` is not two digits, a name is malformed, or ``results`` is empty.
    """
    if not re.fullmatch(r"[0-9]{2}", chapter):
        raise ValueError(f"chapter must be two digits such as '05', got {chapter!r}")
    if not results:
        raise ValueError("results is empty: a key-results cell records at least one result")
    record: dict[str, str] = {}
    for name, value in results.items():
        full = f"{chapter}.{name}"
        if not _NAME.match(full):
            raise ValueError(
                f"result name {name!r}: use lower case letters, digits and '_', starting with a letter"
            )
        record[full] = format_key_value(value, digits=digits, signed=signed)
    print(f"Key results of chapter {chapter} (cited by name in 07_conclusion):")
    for full, text in record.items():
        print(f"  {full} = {text}")
    return record


def parse_key_results(text: str) -> dict[str, str]:
    """The ``name = value`` lines of a printed record (other lines are ignored).

    Raises
    ------
    ValueError
        If a name occurs twice.
    """
    record: dict[str, str] = {}
    for line in text.splitlines():
        match = _LINE.match(line)
        if match is None:
            continue
        name = match["name"]
        if name in record:
            raise ValueError(f"key result {name} is recorded twice")
        record[name] = match["value"]
    return record


def read_key_results(notebook: str | PathLike[str]) -> dict[str, str]:
    """The key results stored in a notebook: the printed output of its ``key-results`` cells.

    Reads the ``.ipynb`` file (JSON) as saved; nothing is executed.

    Parameters
    ----------
    notebook : path
        A notebook whose cells tagged :data:`KEY_RESULTS_TAG` called :func:`show_key_results`.

    Returns
    -------
    dict of str to str
        ``{"05.name": "value"}`` in the order printed.

    Raises
    ------
    ValueError
        If the notebook has no key-results cell, such a cell has no stored output (the
        notebook was saved without running it), or a name occurs twice.
    """
    with open(notebook, encoding="utf-8") as handle:
        cells = json.load(handle)["cells"]
    tagged = [
        c
        for c in cells
        if c.get("cell_type") == "code" and KEY_RESULTS_TAG in c.get("metadata", {}).get("tags", [])
    ]
    if not tagged:
        raise ValueError(f"{notebook}: no code cell tagged {KEY_RESULTS_TAG!r}")
    text = []
    for cell in tagged:
        printed = "".join(
            "".join(out.get("text", ""))
            for out in cell.get("outputs", [])
            if out.get("output_type") == "stream"
        )
        if not printed:
            raise ValueError(
                f"{notebook}: a {KEY_RESULTS_TAG!r} cell has no stored output; run the notebook"
            )
        text.append(printed)
    return parse_key_results("\n".join(text))
