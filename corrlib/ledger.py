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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from numbers import Integral, Real
from os import PathLike
from typing import Any

__all__ = [
    "CLAIM_VERDICTS",
    "KEY_RESULTS_TAG",
    "LEDGER_COLUMNS",
    "Cite",
    "Claim",
    "check_cite",
    "cite_outcome",
    "claim_verdict",
    "format_key_value",
    "ledger_markdown",
    "ledger_rows",
    "paired_cite",
    "paired_key_results",
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


def paired_key_results(
    stem: str, result: Any, verdict: Any = None, digits: int = 3
) -> dict[str, Any]:
    """The key results of one paired comparison: ``stem_diff``, ``stem_low``, ``stem_high``
    (the mean difference and its 95 % Student-t interval, signed), ``stem_n`` and ``stem_verdict``.

    Parameters
    ----------
    stem : str
        The comparison's name, ``"decov_vs_none_accuracy"``.
    result : corrlib.comparison.PairedDifference
        The comparison (its interval is printed with ``digits`` decimals).
    verdict : str or Verdict, optional
        The verdict the chapter decided (for example after Holm's adjustment within a family);
        by default ``result.verdict()`` (no margin, no adjustment).
    digits : int, default=3

    Returns
    -------
    dict
        Ready to be merged into the mapping passed to :func:`show_key_results`.

    Examples
    --------
    >>> from corrlib.comparison import paired_difference
    >>> res = paired_difference([0.91, 0.93, 0.92, 0.94, 0.92], [0.89, 0.90, 0.90, 0.91, 0.90])
    >>> paired_key_results("gain", res)
    {'gain_diff': '+0.024', 'gain_low': '+0.017', 'gain_high': '+0.031', 'gain_n': 5, \
'gain_verdict': <Verdict.HIGHER: 'higher'>}
    """
    from corrlib.comparison import Verdict

    low, high = result.confidence_interval()
    chosen = result.verdict() if verdict is None else Verdict(str(verdict))
    return {
        f"{stem}_diff": format_key_value(result.mean, digits=digits, signed=True),
        f"{stem}_low": format_key_value(low, digits=digits, signed=True),
        f"{stem}_high": format_key_value(high, digits=digits, signed=True),
        f"{stem}_n": int(result.n),
        f"{stem}_verdict": chosen,
    }


# --- the ledger: claims, the results they cite, and the rule that gives their verdict ----------

CLAIM_VERDICTS = ("holds", "does not hold", "depends", "inconclusive", "not tested")
"""The verdicts a claim of the ledger can get, from :func:`claim_verdict`."""

_COMPARISON_WORDS = ("higher", "lower", "equivalent", "inconclusive")


@dataclass(frozen=True)
class Cite:
    """One cited result of a claim: what was compared, and which verdict the claim predicts.

    Attributes
    ----------
    setting : str
        What was compared, in words (no numbers: every number shown comes from ``numbers``).
    verdict : str
        The full name (``"03.decov_vs_none_accuracy_verdict"``) of the key result that holds the
        observed outcome: a comparison verdict ("higher", "lower", "equivalent",
        "inconclusive") or the value of a check ("True", "False").
    claimed : str
        The outcome the article's claim predicts in this setting.
    numbers : tuple of str
        Full names of the key results shown with it, in the order of ``template``.
    template : str
        How the numbers are shown: ``str.format`` with one ``{}`` per name.
    """

    setting: str
    verdict: str
    claimed: str
    numbers: tuple[str, ...] = ()
    template: str = ""

    @property
    def names(self) -> tuple[str, ...]:
        """Every key-result name this cite reads."""
        return (*self.numbers, self.verdict)


def paired_cite(chapter: str, stem: str, setting: str, claimed: str) -> Cite:
    """A :class:`Cite` of a comparison recorded by :func:`paired_key_results`."""
    if claimed not in _COMPARISON_WORDS[:3]:
        raise ValueError(f"a claim predicts 'higher', 'lower' or 'equivalent', got {claimed!r}")
    base = f"{chapter}.{stem}"
    return Cite(
        setting=setting,
        verdict=f"{base}_verdict",
        claimed=claimed,
        numbers=(f"{base}_diff", f"{base}_low", f"{base}_high", f"{base}_n"),
        template="{} [{}, {}], n = {}",
    )


def check_cite(chapter: str, name: str, setting: str, claimed: str) -> Cite:
    """A :class:`Cite` of a yes/no check recorded as ``True`` or ``False``."""
    if claimed not in ("True", "False"):
        raise ValueError(f"a check is claimed 'True' or 'False', got {claimed!r}")
    return Cite(setting=setting, verdict=f"{chapter}.{name}", claimed=claimed)


@dataclass(frozen=True)
class Claim:
    """One row of the ledger: a claim of the article and the results that test it.

    Attributes
    ----------
    key : str
        A short identifier (``"2.1-accuracy"``), used by the pending list.
    section : str
        The article's section(s), ``"2.1"``.
    claim : str
        The claim, in the article's words translated.
    tested_in : str
        Where it is tested, as chapter and section (``"03 §5"``): plain text, because the table is
        a cell's output, whose links a website built from the notebooks does not resolve.
    cites : tuple of Cite
        The cited results; empty for a claim that is not tested.
    scope : str
        The setting the verdict is limited to, and what it does not cover (no numbers).
    """

    key: str
    section: str
    claim: str
    tested_in: str = ""
    cites: tuple[Cite, ...] = ()
    scope: str = ""


def cite_outcome(observed: str, claimed: str) -> str:
    """``"for"``, ``"against"`` or ``"open"``: how one observed outcome bears on a claim.

    For the claim: the observed outcome is the one claimed. Open: the comparison is
    "inconclusive". Against: anything else (the opposite direction, or "equivalent" where a
    difference was claimed, or a difference where "no difference" was claimed, or a check
    with the other value).

    >>> cite_outcome("higher", "higher"), cite_outcome("equivalent", "higher")
    ('for', 'against')
    >>> cite_outcome("inconclusive", "lower")
    'open'
    """
    if observed == claimed:
        return "for"
    if observed == "inconclusive":
        return "open"
    return "against"


def claim_verdict(outcomes: Iterable[tuple[str, str]]) -> str:
    """The verdict of a claim from its cited ``(observed, claimed)`` outcomes.

    - "not tested": no cited result;
    - "holds": every cited outcome is the claimed one;
    - "does not hold": every cited outcome goes against the claim (opposite or equivalent);
    - "depends": at least one for and at least one against (it differs across settings);
    - "inconclusive": otherwise (some outcomes undecided, none contradicting another).

    >>> claim_verdict([("higher", "higher"), ("higher", "higher")])
    'holds'
    >>> claim_verdict([("higher", "higher"), ("lower", "higher")])
    'depends'
    >>> claim_verdict([("higher", "higher"), ("inconclusive", "higher")])
    'inconclusive'
    >>> claim_verdict([])
    'not tested'
    """
    kinds = [cite_outcome(observed, claimed) for observed, claimed in outcomes]
    if not kinds:
        return "not tested"
    if all(k == "for" for k in kinds):
        return "holds"
    if all(k == "against" for k in kinds):
        return "does not hold"
    if "for" in kinds and "against" in kinds:
        return "depends"
    return "inconclusive"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def ledger_rows(
    claims: Sequence[Claim],
    records: Mapping[str, str],
    pending: Mapping[str, str] | None = None,
) -> list[dict[str, str]]:
    """The ledger's rows as text: claim, tested in, evidence, verdict.

    Parameters
    ----------
    claims : sequence of Claim
    records : mapping of str to str
        The key results of the cited chapters, ``{"03.name": "value"}`` (from
        :func:`read_key_results`).
    pending : mapping of str to str, optional
        Claims (by key) whose tests are still being written, with where they will be tested;
        such a claim must cite nothing yet and is shown as "not tested (yet)".

    Raises
    ------
    KeyError
        If a cited name is not in ``records`` (the cited chapter does not record it).
    ValueError
        If a pending claim already cites results, or a key is unknown or repeated.
    """
    pending = dict(pending or {})
    keys = [c.key for c in claims]
    if len(set(keys)) != len(keys):
        raise ValueError("two claims share a key")
    unknown = set(pending) - set(keys)
    if unknown:
        raise ValueError(f"pending keys that name no claim: {sorted(unknown)}")
    rows = []
    for claim in claims:
        if claim.key in pending and claim.cites:
            raise ValueError(f"{claim.key}: a pending claim cites nothing yet")
        evidence, outcomes = [], []
        for cite in claim.cites:
            missing = [name for name in cite.names if name not in records]
            if missing:
                raise KeyError(f"{claim.key}: not in the cited key results: {missing}")
            observed = records[cite.verdict]
            outcomes.append((observed, cite.claimed))
            shown = cite.template.format(*(records[name] for name in cite.numbers))
            shown = f"{shown}: " if shown else ""
            evidence.append(
                f"{cite.verdict[:2]} · {cite.setting}: {shown}**{observed}** "
                f"(claimed: {cite.claimed})"
            )
        if claim.key in pending:
            tested_in = f"planned: {pending[claim.key]}"
            verdict = "not tested (yet)"
        else:
            tested_in = claim.tested_in or "-"
            verdict = claim_verdict(outcomes)
        rows.append(
            {
                "claim": f"{claim.claim} ({claim.section})",
                "tested in": tested_in,
                "evidence": "<br>".join(evidence) if evidence else "-",
                "verdict": f"**{verdict}**" + (f": {claim.scope}" if claim.scope else ""),
            }
        )
    return rows


LEDGER_COLUMNS = ("claim", "tested in", "evidence", "verdict")


def ledger_markdown(
    claims: Sequence[Claim],
    records: Mapping[str, str],
    pending: Mapping[str, str] | None = None,
) -> str:
    """The ledger as a Markdown table (see :func:`ledger_rows`)."""
    lines = [
        "| " + " | ".join(LEDGER_COLUMNS) + " |",
        "|" + "---|" * len(LEDGER_COLUMNS),
    ]
    for row in ledger_rows(claims, records, pending):
        lines.append("| " + " | ".join(_cell(row[c]) for c in LEDGER_COLUMNS) + " |")
    return "\n".join(lines) + "\n"
