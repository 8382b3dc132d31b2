"""The ledger of the article's claims (notebook 05, chapter 6) quotes only stored evidence.

The ledger is a markdown table in ``notebooks/05_optimization.ipynb`` with the columns
claim | tested in | measured | verdict. Every number in its "measured" column must appear, as
printed, in the stored outputs of a notebook that its "tested in" column links to (code-cell
outputs only, never the prose), so that re-running a notebook with a different result, or
editing a number in the ledger, makes this test fail.

A label such as ``03:`` that names a cited notebook is not a number. A number is matched as
a whole token: ``0.91`` does not match ``0.912`` or ``-0.91``, and a
paired result written ``+0.031 +/- 0.004`` must appear with the same signs and digits (spaces
may differ).
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
LEDGER_NOTEBOOK = NOTEBOOK_DIR / "05_optimization.ipynb"
COLUMNS = ("claim", "tested in", "measured", "verdict")
VERDICTS = ("holds", "does not hold", "depends", "inconclusive", "not tested")

_NUMBER = r"[+-]?\d+(?:\.\d+)?(?:e[+-]?\d+)?%?"
# a paired result "mean +/- SE" is one quotation; then single numbers
TOKEN_RE = re.compile(rf"(?<![\w.]){_NUMBER}\s*(?:\+/-|±)\s*{_NUMBER}(?![\w])|(?<![\w.]){_NUMBER}")
NOTEBOOK_LINK_RE = re.compile(r"\((\d\d_[a-z_]+\.ipynb)(?:#[^)]*)?\)")


def split_row(line: str) -> list[str]:
    """Cells of a markdown table row; ``\\|`` is a literal bar inside a cell."""
    body = line.strip().strip("|")
    cells = re.split(r"(?<!\\)\|", body)
    return [c.strip().replace("\\|", "|") for c in cells]


def ledger_rows(notebook: Path = LEDGER_NOTEBOOK) -> list[dict[str, str]]:
    """The rows of the ledger table: the markdown table whose header is :data:`COLUMNS`."""
    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        lines = cell.source.splitlines()
        for i, line in enumerate(lines):
            if not line.lstrip().startswith("|"):
                continue
            header = tuple(c.lower() for c in split_row(line))
            if header != COLUMNS:
                continue
            rows = []
            for row_line in lines[i + 2 :]:  # skip the |---| line
                if not row_line.lstrip().startswith("|"):
                    break
                cells = split_row(row_line)
                assert len(cells) == len(COLUMNS), f"ledger row with {len(cells)} cells: {row_line}"
                rows.append(dict(zip(COLUMNS, cells, strict=True)))
            return rows
    raise AssertionError(f"no table with the header {COLUMNS} in {notebook.name}")


def stored_output_text(notebook: Path) -> str:
    """All text that a notebook's code cells printed or displayed, as stored in the file."""
    nb = nbformat.read(notebook, as_version=4)
    parts = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for out in cell.get("outputs", []):
            if "text" in out:
                parts.append(out["text"])
            for mime, value in out.get("data", {}).items():
                if mime.startswith("text/"):
                    parts.append(value if isinstance(value, str) else "".join(value))
            if out.get("output_type") == "error":
                parts.append(f"{out.get('ename', '')}: {out.get('evalue', '')}")
    return "\n".join(parts)


def quoted_numbers(text: str) -> list[str]:
    """The numbers quoted in ``text``, paired results ``a +/- b`` kept whole."""
    return [m.group(0) for m in TOKEN_RE.finditer(text.replace("−", "-"))]


def _number_pattern(number: str) -> str:
    escaped = re.escape(number)
    # an unsigned number must not be preceded by a sign; none may continue with more digits
    before = r"(?<![\w.])" if number[0] in "+-" else r"(?<![\w.+-])"
    return before + escaped + r"(?!\.?\d)"


def appears_in(quote: str, text: str) -> bool:
    """Whether ``quote`` (a number or a paired result) appears in ``text`` as printed."""
    parts = re.split(r"\s*(?:\+/-|±)\s*", quote)
    if len(parts) == 2:
        pattern = _number_pattern(parts[0]) + r"\s*(?:\+/-|±)\s*" + _number_pattern(parts[1])
    else:
        pattern = _number_pattern(quote)
    return re.search(pattern, text) is not None


def cited_notebooks(row: dict[str, str]) -> list[Path]:
    return [NOTEBOOK_DIR / name for name in NOTEBOOK_LINK_RE.findall(row["tested in"])]


def without_notebook_labels(measured: str, cited: list[Path]) -> str:
    """``measured`` without labels such as ``03:`` that name a cited notebook (not numbers)."""
    for path in cited:
        measured = re.sub(rf"(?<![\w.]){path.name[:2]}:", "", measured)
    return measured


def missing_numbers(row: dict[str, str], outputs: dict[Path, str]) -> list[str]:
    """Numbers of the row's "measured" cell found in none of its cited notebooks' outputs."""
    cited = cited_notebooks(row)
    texts = [outputs[p] for p in cited]
    measured = without_notebook_labels(row["measured"], cited)
    return [q for q in quoted_numbers(measured) if not any(appears_in(q, t) for t in texts)]


@pytest.fixture(scope="module")
def rows():
    return ledger_rows()


@pytest.fixture(scope="module")
def outputs():
    return {p: stored_output_text(p) for p in sorted(NOTEBOOK_DIR.glob("*.ipynb"))}


def test_ledger_covers_the_article_claims(rows):
    assert len(rows) >= 7
    sections = " ".join(r["claim"] for r in rows)
    for section in ("1.2", "2.1", "5.1", "5.2", "5.3"):
        assert f"({section})" in sections, f"no ledger row for the article's section {section}"


def test_every_row_cites_existing_notebooks_and_gives_a_verdict(rows):
    for row in rows:
        cited = cited_notebooks(row)
        assert cited, f"row cites no notebook: {row['claim']}"
        assert all(p.exists() for p in cited), [p.name for p in cited]
        assert row["verdict"].lower().lstrip("*").startswith(VERDICTS), row["verdict"]
        assert quoted_numbers(row["measured"]), f"row quotes no number: {row['claim']}"


def test_every_quoted_number_is_in_the_stored_outputs(rows, outputs):
    problems = {r["claim"]: missing_numbers(r, outputs) for r in rows}
    problems = {claim: nums for claim, nums in problems.items() if nums}
    assert not problems, f"numbers quoted in the ledger but not in the cited outputs: {problems}"


def _change_last_digit(quote: str) -> str:
    i = max(i for i, ch in enumerate(quote) if ch.isdigit())
    return quote[:i] + str((int(quote[i]) + 1) % 10) + quote[i + 1 :]


def test_a_changed_number_is_caught(rows, outputs):
    # change every quoted number of a row by one unit in its last printed digit: the check
    # must then report the row (the mutated numbers are not in the outputs)
    for row in rows:
        measured = TOKEN_RE.sub(lambda m: _change_last_digit(m.group(0)), row["measured"])
        assert missing_numbers({**row, "measured": measured}, outputs), row["claim"]


@pytest.mark.parametrize(
    ("quote", "text", "expected"),
    [
        ("0.912", "accuracy 0.912 on 359 images", True),
        ("0.91", "accuracy 0.912", False),
        ("0.912", "accuracy 0.9123", False),
        ("0.912", "accuracy 10.912", False),
        ("0.5", "change -0.5 points", False),
        ("-0.5", "change -0.5 points", True),
        ("+0.031 +/- 0.004", "gain +0.031 +/- 0.004 (3 seeds)", True),
        ("+0.031 +/- 0.004", "gain +0.031 +/-  0.004", True),
        ("+0.031 +/- 0.004", "gain +0.031 +/- 0.005", False),
        ("+0.031 +/- 0.004", "gain -0.031 +/- 0.004", False),
        ("98%", "share 98% of the images", True),
        ("1148", "steps: 1148 with step", True),
        ("1148", "steps: 11480", False),
        ("3e-07", "difference 3e-07,", True),
        ("0.98", "ends 0.98.", True),
    ],
)
def test_number_matching(quote, text, expected):
    assert appears_in(quote, text) is expected


def test_quoted_numbers_keep_paired_results_whole():
    text = "gain +0.031 +/- 0.004 over 0.912 -> 0.95, 16-layer, 3e-07"
    assert quoted_numbers(text) == ["+0.031 +/- 0.004", "0.912", "0.95", "16", "3e-07"]
