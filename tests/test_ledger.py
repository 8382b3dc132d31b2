"""The ledger of the article's claims (``notebooks/07_conclusion.ipynb``) is bound to the evidence.

07 declares its claims in one code cell tagged ``ledger-claims`` (``RECORDS``, ``CLAIMS``,
``PENDING``) and shows the ledger, built by :func:`corrlib.ledger.ledger_markdown` from the
chapters' stored key results, in the cell tagged ``ledger``. These tests check that

(a) the stored ledger equals the one the cited chapters' *current* key results give (a stale 07
    fails), compared row by row and cell by cell (:func:`ledger_problems`);
(b) every cited name is in its chapter's key-results record;
(c) every row's verdict follows from its cited outcomes by the rule stated in 07 (implemented
    here again, independently of corrlib);
(d) by mutation, number by number: the stored ledger with any ONE of its numbers changed, to a
    neighbour (last digit +-1) or to a number printed elsewhere in the notebooks (the nearest one
    of the same form, from the cited chapter's outputs first), is caught. A number is not
    accepted because it appears somewhere in some notebook: each one is compared with the
    one result it is bound to;
and that each chapter 00-06 records its key results in exactly one cell, with its output.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import nbformat
import pytest

from corrlib.ledger import KEY_RESULTS_TAG, ledger_markdown, read_key_results

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
LEDGER_NOTEBOOK = NOTEBOOK_DIR / "07_conclusion.ipynb"
CHAPTERS = {
    "00": "00_introduction",
    "01": "01_concepts",
    "02": "02_core_module",
    "03": "03_integration",
    "04": "04_image_application",
    "05": "05_optimization",
    "06": "06_robustness_security",
}
ARTICLE_SECTIONS = ("1.2", "2.1", "2.2", "3.2", "4.1", "5.1", "5.2", "5.3", "6")
NUMBER = re.compile(r"(?<![\w.])[+-]?\d+(?:\.\d+)?(?![\w.]*\d)")


# --- reading 07 ----------------------------------------------------------------------------------


def _tagged(nb: nbformat.NotebookNode, tag: str) -> list[nbformat.NotebookNode]:
    return [c for c in nb.cells if c.cell_type == "code" and tag in c.metadata.get("tags", [])]


def declared_ledger(path: Path = LEDGER_NOTEBOOK) -> dict:
    """``RECORDS`` (resolved against the notebook's folder), ``CLAIMS`` and ``PENDING`` of 07:
    the source of its cell tagged ``ledger-claims``, run on its own."""
    cells = _tagged(nbformat.read(path, as_version=4), "ledger-claims")
    assert len(cells) == 1, "07 declares its claims in one cell tagged 'ledger-claims'"
    namespace: dict = {}
    source = "from dataclasses import replace\nfrom pathlib import Path\n"
    source += "from corrlib.ledger import Cite, Claim, check_cite, paired_cite\n" + cells[0].source
    exec(compile(source, f"{path.name}:ledger-claims", "exec"), namespace)  # noqa: S102
    records = {ch: (path.parent / p).resolve() for ch, p in namespace["RECORDS"].items()}
    return {"RECORDS": records, "CLAIMS": namespace["CLAIMS"], "PENDING": namespace["PENDING"]}


def stored_ledger(path: Path = LEDGER_NOTEBOOK) -> str:
    """The ledger as stored in 07: the Markdown output of its cell tagged ``ledger``."""
    cells = _tagged(nbformat.read(path, as_version=4), "ledger")
    assert len(cells) == 1, "07 shows its ledger in one cell tagged 'ledger'"
    shown = [
        o.data["text/markdown"] for o in cells[0].outputs if "text/markdown" in o.get("data", {})
    ]
    assert len(shown) == 1, "the ledger cell has no stored Markdown output: run 07"
    return shown[0]


def cited_records(declared: dict) -> dict[str, str]:
    records: dict[str, str] = {}
    for path in declared["RECORDS"].values():
        records |= read_key_results(path)
    return records


def table_rows(markdown: str) -> list[list[str]]:
    """The cells of each row of a Markdown table (header and ``|---|`` line left out)."""
    rows = []
    for line in markdown.strip().splitlines()[2:]:
        body = line.strip()
        assert body.startswith("|") and body.endswith("|"), f"not a table row: {line!r}"
        rows.append([c.strip() for c in re.split(r"(?<!\\)\|", body[1:-1])])
    return rows


def ledger_problems(stored: str, expected: str) -> list[str]:
    """Where ``stored`` differs from ``expected``: one message per differing cell, naming the
    numbers that differ (an empty list when the two tables are the same)."""
    old_lines, new_lines = stored.strip().splitlines(), expected.strip().splitlines()
    if old_lines[:2] != new_lines[:2]:
        return ["the header of the ledger differs"]
    got, want = table_rows(stored), table_rows(expected)
    if len(got) != len(want):
        return [f"the ledger has {len(got)} rows, the cited results give {len(want)}"]
    problems = []
    for i, (row_got, row_want) in enumerate(zip(got, want, strict=True)):
        if len(row_got) != len(row_want):
            problems.append(f"row {i + 1}: {len(row_got)} cells, expected {len(row_want)}")
            continue
        for j, (a, b) in enumerate(zip(row_got, row_want, strict=True)):
            if a != b:
                numbers = [
                    (x, y)
                    for x, y in zip(NUMBER.findall(a), NUMBER.findall(b), strict=False)
                    if x != y
                ]
                problems.append(f"row {i + 1}, column {j + 1}: {numbers or 'text'} differs")
    return problems


# --- the rule of 07, section 2, written again ----------------------------------------------------


def rule(outcomes: list[tuple[str, str]]) -> str:
    kinds = {"for" if o == c else "open" if o == "inconclusive" else "against" for o, c in outcomes}
    if not kinds:
        return "not tested"
    if kinds == {"for"}:
        return "holds"
    if kinds == {"against"}:
        return "does not hold"
    return "depends" if {"for", "against"} <= kinds else "inconclusive"


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def declared() -> dict:
    return declared_ledger()


@pytest.fixture(scope="module")
def records(declared) -> dict[str, str]:
    return cited_records(declared)


@pytest.fixture(scope="module")
def expected(declared, records) -> str:
    return ledger_markdown(declared["CLAIMS"], records, declared["PENDING"])


# --- (a)-(c) -------------------------------------------------------------------------------------


def test_stored_ledger_is_what_the_cited_key_results_give(expected):
    problems = ledger_problems(stored_ledger(), expected)
    assert not problems, f"07's stored ledger is stale or edited (re-run 07): {problems}"


def test_every_cited_name_is_in_its_chapters_record(declared, records):
    for claim in declared["CLAIMS"]:
        for cite in claim.cites:
            for name in cite.names:
                chapter = name[:2]
                assert chapter in declared["RECORDS"], f"{claim.key}: chapter {chapter} not read"
                record = read_key_results(declared["RECORDS"][chapter])
                assert name in record, f"{claim.key}: {name} is not in chapter {chapter}'s record"


def test_every_verdict_follows_from_its_cited_verdicts_by_the_rule(declared, records):
    rows = table_rows(stored_ledger())
    assert len(rows) == len(declared["CLAIMS"])
    for claim, row in zip(declared["CLAIMS"], rows, strict=True):
        if claim.key in declared["PENDING"]:
            assert not claim.cites, f"{claim.key}: pending, but cites results"
            want = "not tested (yet)"
        else:
            want = rule([(records[c.verdict], c.claimed) for c in claim.cites])
        assert row[-1].startswith(f"**{want}**"), f"{claim.key}: shown {row[-1]!r}, rule: {want}"


def comparison_problems(records: dict[str, str], verdict_name: str) -> list[str]:
    """What does not hang together in one cited comparison of ``records``.

    A comparison recorded as ``<stem>_diff`` (or ``<stem>_ratio``), ``<stem>_low``,
    ``<stem>_high`` and ``<stem>_verdict``: the effect lies inside its interval, and a "higher"
    ("lower") verdict, decided after Holm, has an unadjusted interval above (below) no effect
    (0 for a difference, 1 for a ratio). A name without ``_low``/``_high`` is not checked.
    """
    stem = verdict_name.removesuffix("_verdict")
    effect_name = next((f"{stem}_{k}" for k in ("diff", "ratio") if f"{stem}_{k}" in records), None)
    if effect_name is None or f"{stem}_low" not in records or f"{stem}_high" not in records:
        return []
    effect, low, high = (float(records[n]) for n in (effect_name, f"{stem}_low", f"{stem}_high"))
    null = 1.0 if effect_name.endswith("_ratio") else 0.0
    verdict = records[verdict_name]
    problems = []
    if not low <= effect <= high:
        problems.append(f"{stem}: effect {effect} outside its interval [{low}, {high}]")
    if verdict == "higher" and not (low >= null and effect > null):
        problems.append(f"{stem}: 'higher' with the interval [{low}, {high}]")
    if verdict == "lower" and not (high <= null and effect < null):
        problems.append(f"{stem}: 'lower' with the interval [{low}, {high}]")
    return problems


def test_every_cited_comparison_hangs_together(declared, records):
    problems = [
        problem
        for claim in declared["CLAIMS"]
        for cite in claim.cites
        for problem in comparison_problems(records, cite.verdict)
    ]
    assert problems == []


@pytest.mark.parametrize(
    ("edit", "value"),
    [("_diff", "+0.900"), ("_low", "+0.950"), ("_high", "-0.950"), ("_verdict", "lower")],
)
def test_a_comparison_that_does_not_hang_together_is_caught(edit, value):
    record = {"05.x_diff": "+0.050", "05.x_low": "+0.010", "05.x_high": "+0.090"}
    record["05.x_verdict"] = "higher"
    assert comparison_problems(record, "05.x_verdict") == []
    record[f"05.x{edit}"] = value
    assert comparison_problems(record, "05.x_verdict") != []


def test_the_ledger_covers_the_article_and_its_thesis(declared):
    sections = {s.strip() for c in declared["CLAIMS"] for s in c.section.split(",")}
    assert set(ARTICLE_SECTIONS) <= sections, set(ARTICLE_SECTIONS) - sections
    thesis = " ".join(c.claim.lower() for c in declared["CLAIMS"] if "6" in c.section.split(", "))
    for word in ("accuracy", "robustness", "security"):
        assert word in thesis, f"the conclusion's thesis ({word}) has no row"
    assert set(declared["PENDING"]) <= {c.key for c in declared["CLAIMS"]}


# --- (d) mutation, number by number ---------------------------------------------------------------


@cache
def _output_numbers(path: Path, skip_tag: str | None = None) -> tuple[str, ...]:
    """Every number printed in the outputs of ``path``'s code cells (not those tagged ``skip_tag``)."""
    nb = nbformat.read(path, as_version=4)
    found = []
    for cell in nb.cells:
        if cell.cell_type != "code" or (skip_tag and skip_tag in cell.metadata.get("tags", [])):
            continue
        for out in cell.get("outputs", []):
            texts = [out.get("text", "")] + [
                v for k, v in out.get("data", {}).items() if k.startswith("text/")
            ]
            for text in texts:
                found += NUMBER.findall(text if isinstance(text, str) else "".join(text))
    return tuple(found)


def _shape(token: str) -> tuple:
    return (token[0] in "+-", len(token.split(".")[1]) if "." in token else 0)


def _elsewhere(token: str, pools: list[tuple[str, ...]]) -> str:
    """The number printed elsewhere that is nearest to ``token``, of the same form (sign and
    decimals), from the first pool that has one; a different value in any case."""
    value = float(token)
    for pool in pools:
        same = sorted(
            {t for t in pool if _shape(t) == _shape(token) and float(t) != value},
            key=lambda t: (abs(float(t) - value), t),
        )
        if same:
            return same[0]
    raise AssertionError(f"no number of the form of {token} printed anywhere")


def _neighbours(token: str) -> list[str]:
    last = int(token[-1])
    return [token[:-1] + str(d) for d in (last - 1, last + 1) if 0 <= d <= 9]


def _mutants() -> list[pytest.param]:
    if not LEDGER_NOTEBOOK.exists():
        return []
    text = stored_ledger()
    chapters = [NOTEBOOK_DIR / f"{name}.ipynb" for name in CHAPTERS.values()]
    everywhere = [_output_numbers(p) for p in chapters if p.exists()]
    everywhere.append(_output_numbers(LEDGER_NOTEBOOK, skip_tag="ledger"))
    body_start = len("\n".join(text.splitlines()[:2])) + 1  # the numbers of the table's rows
    params = []
    for match in NUMBER.finditer(text, body_start):
        token, start, end = match.group(0), match.start(), match.end()
        row = text.count("\n", 0, start) - 1
        before = text[text.rfind("\n", 0, start) + 1 : start]
        cited = re.findall(r"(\d\d) · ", before)  # the chapter of the cite this number is in
        pools = [_output_numbers(NOTEBOOK_DIR / f"{CHAPTERS[cited[-1]]}.ipynb")] if cited else []
        changes = [("neighbour", n) for n in _neighbours(token)]
        changes.append(("elsewhere", _elsewhere(token, [*pools, *everywhere])))
        for kind, new in changes:
            mutant = text[:start] + new + text[end:]
            name = f"row{row + 1}-at{start}-{token}-{kind}-{new}"
            params.append(pytest.param(mutant, token, new, id=name))
    return params


MUTANTS = _mutants()


def test_every_number_of_the_ledger_has_mutants():
    assert MUTANTS, "07 has no stored ledger"
    assert len({p.values[1] for p in MUTANTS}) > 50, "the ledger shows too few numbers"


@pytest.mark.parametrize(("mutant", "original", "changed"), MUTANTS)
def test_a_changed_number_is_caught(mutant, original, changed, expected):
    problems = ledger_problems(mutant, expected)
    assert problems, f"changing {original} to {changed} in the ledger went unnoticed"
    assert any(f"'{original}'" in p or "text" in p for p in problems), problems


# --- every chapter records its key results ---------------------------------------------------------


@pytest.mark.parametrize("chapter", sorted(CHAPTERS))
def test_each_chapter_has_one_key_results_cell_with_output(chapter):
    path = NOTEBOOK_DIR / f"{CHAPTERS[chapter]}.ipynb"
    if not path.exists():
        pytest.skip(f"{path.name} is not in this checkout yet")
    cells = _tagged(nbformat.read(path, as_version=4), KEY_RESULTS_TAG)
    assert len(cells) == 1, f"{path.name}: {len(cells)} cells tagged {KEY_RESULTS_TAG!r}, not one"
    assert cells[0].get("outputs"), f"{path.name}: its key-results cell has no stored output"
    record = read_key_results(path)
    assert record and all(name.startswith(f"{chapter}.") for name in record), record
