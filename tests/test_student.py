"""The student edition: valid notebooks, no solution code, a stub per exercise, checks kept."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from tools.edition import (
    edition_parts,
    is_local,
    is_solution,
    localise,
    markdown_links,
    notebook_paths,
    repository_files,
    split_fragment,
)
from tools.make_student import (
    NOTE_TAG,
    STUB_TAG,
    build_student,
    checked_names,
    exercise_summary,
    main,
    self_check_indices,
    stub_source,
    student_notebook,
)

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(p.name for p in NOTEBOOK_DIR.glob("*.ipynb"))
new_code = nbformat.v4.new_code_cell
new_md = nbformat.v4.new_markdown_cell


@pytest.fixture(scope="module")
def edition(tmp_path_factory):
    out = tmp_path_factory.mktemp("student")
    return out, build_student(NOTEBOOK_DIR, out)


def _pair(edition, name: str) -> tuple[nbformat.NotebookNode, nbformat.NotebookNode]:
    out, _ = edition
    full = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
    student = nbformat.read(out / name, as_version=4)
    return full, student


def _is_comment_only(source: str) -> bool:
    return all(line.lstrip().startswith("#") for line in source.splitlines() if line.strip())


# --- the real course -----------------------------------------------------------------------


def test_every_notebook_is_written(edition) -> None:
    out, result = edition
    assert sorted(p.name for p in out.glob("*.ipynb")) == NOTEBOOKS
    assert result.broken == [], f"links to missing files: {result.broken}"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_student_notebook_is_valid(edition, name: str) -> None:
    out, _ = edition
    nb = nbformat.read(out / name, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_no_solution_code(edition, name: str) -> None:
    full, student = _pair(edition, name)
    solutions = [c.source for c in full.cells if is_solution(c)]
    elsewhere = "\n".join(c.source for c in full.cells if not is_solution(c))
    student_text = "\n".join(c.source for c in student.cells)
    for cell in student.cells:
        if is_solution(cell):  # the emptied solution cells keep their tag
            assert _is_comment_only(cell.source) and STUB_TAG in cell.metadata["tags"]
    for source in solutions:
        assert source.strip() not in student_text
        # every code line of a solution that the rest of the notebook does not show itself
        for line in source.splitlines():
            code = line.strip()
            if code and not code.startswith("#") and code not in elsewhere:
                assert code not in student_text, f"solution line {code!r} leaked"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_every_exercise_has_a_stub(edition, name: str) -> None:
    full, student = _pair(edition, name)
    assert len(student.cells) == len(full.cells)
    assert NOTE_TAG in student.cells[0].metadata.get("tags", [])
    assert "Student edition" in student.cells[0].source
    assert [is_solution(c) for c in student.cells] == [is_solution(c) for c in full.cells]
    solutions = [i for i, c in enumerate(full.cells) if is_solution(c)]
    assert len(solutions) >= 3, "the template asks for at least three exercises"
    stubs = [i for i, c in enumerate(student.cells) if STUB_TAG in c.metadata.get("tags", [])]
    assert stubs == [i for i in solutions]
    for i in stubs:
        stub = student.cells[i]
        assert stub.cell_type == "code" and stub.outputs == [] and stub.execution_count is None
        assert _is_comment_only(stub.source) and "Your solution here" in stub.source


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_self_checks_are_kept(edition, name: str) -> None:
    full, student = _pair(edition, name)
    for i, cell in enumerate(full.cells):
        if not is_solution(cell):
            continue
        checks = self_check_indices(full.cells, i)
        assert checks, f"solution cell {i} has no self-check after it"
        assert any("assert" in full.cells[k].source for k in checks)
        for k in checks:
            kept = student.cells[k]
            assert kept.source == full.cells[k].source
            assert kept.metadata.get("tags", []) == full.cells[k].metadata.get("tags", [])
            assert kept.outputs == [] and kept.execution_count is None


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_other_code_cells_are_unchanged(edition, name: str) -> None:
    full, student = _pair(edition, name)
    changed = {i for i, c in enumerate(full.cells) if is_solution(c)}
    for i in list(changed):
        changed.update(self_check_indices(full.cells, i))
    for i, cell in enumerate(full.cells):
        if cell.cell_type == "code" and i not in changed:
            kept = student.cells[i]
            assert kept.source == localise(cell.source) and kept.outputs == cell.outputs


def test_files_the_code_reaches_are_inside_the_edition(edition) -> None:
    out, _ = edition
    for name in NOTEBOOKS:
        for cell in nbformat.read(out / name, as_version=4).cells:
            if cell.cell_type == "code":
                assert 'Path("..")' not in cell.source and "Path('..')" not in cell.source
        for cell in nbformat.read(NOTEBOOK_DIR / name, as_version=4).cells:
            for parts in repository_files(cell.source) if cell.cell_type == "code" else []:
                assert out.joinpath(*edition_parts(parts)).is_file(), parts


def test_links_work_inside_the_edition(edition) -> None:
    out, _ = edition
    for path in (p for p in out.iterdir() if p.suffix in {".ipynb", ".md"}):
        if path.suffix == ".ipynb":
            texts = [c.source for c in nbformat.read(path, 4).cells if c.cell_type == "markdown"]
        else:
            texts = [path.read_text(encoding="utf-8")]
        targets = [t for text in texts for t in markdown_links(text)]
        for target in filter(is_local, targets):
            resolved = (path.parent / split_fragment(target)[0]).resolve()
            assert resolved.is_file(), f"{path.name}: {target} is broken"
            assert resolved.is_relative_to(out.resolve()), f"{path.name}: {target} leaves"


# --- the builder on made-up notebooks -------------------------------------------------------


def _exercise_notebook() -> nbformat.NotebookNode:
    solution = new_code("answer = 6 * 7\nprint(answer)", metadata={"tags": ["solution"]})
    solution.execution_count = 3
    solution.outputs = [nbformat.v4.new_output("stream", text="42\n")]
    check = new_code("# Self-check\nassert answer == 42\nprint('passed: 42')")
    check.outputs = [nbformat.v4.new_output("stream", text="passed: 42\n")]
    return nbformat.v4.new_notebook(
        cells=[
            new_md("# Demo\n\nSee [the glossary](../GLOSSARY.md) and [next](02_b.ipynb#top)."),
            new_code("x = 1"),
            new_md(
                "## Exercises\n\nIntro text.\n\n**Exercise 1: the answer.** Store it in\n`answer`."
            ),
            solution,
            check,
            new_md("**Exercise 2.** Use `%time`. Then more."),
            new_code("%time y = 2", metadata={"tags": ["solution", "keep-me"]}),
        ]
    )


def test_student_notebook_on_a_made_up_notebook() -> None:
    nb = _exercise_notebook()
    before = nbformat.writes(nb)
    student = student_notebook(nb)
    assert nbformat.writes(nb) == before, "the input notebook must not be modified"
    nbformat.validate(student)
    assert len(student.cells) == len(nb.cells)
    assert "Student edition" in student.cells[0].source
    stub = student.cells[3]
    assert stub.metadata["tags"] == ["solution", STUB_TAG]
    assert stub.source.splitlines()[0] == "# Exercise 1: the answer."
    assert "`answer`" in stub.source and "6 * 7" not in stub.source
    assert stub.outputs == [] and stub.execution_count is None
    assert student.cells[4].source == nb.cells[4].source and student.cells[4].outputs == []
    last = student.cells[6]  # magics cannot be parsed: no names, still a stub; other tags kept
    assert last.metadata["tags"] == ["solution", "keep-me", STUB_TAG]
    assert _is_comment_only(last.source)
    assert last.source.startswith("# Exercise 2. Use `%time`.")
    assert student.cells[1].source == "x = 1"


def test_build_student_copies_linked_documents_and_reports_broken_links(tmp_path) -> None:
    src = tmp_path / "course" / "notebooks"
    src.mkdir(parents=True)
    (src.parent / "GLOSSARY.md").write_text("# Glossary\n\n[a](notebooks/01_a.ipynb)\n")
    nbformat.write(_exercise_notebook(), src / "01_a.ipynb")
    out = tmp_path / "out"
    (out / "stale").mkdir(parents=True)
    result = build_student(src, out)
    assert sorted(p.name for p in out.iterdir()) == ["01_a.ipynb", "GLOSSARY.md"]
    assert result.broken == [("01_a.ipynb", "02_b.ipynb#top")]
    first = nbformat.read(out / "01_a.ipynb", 4).cells[0].source
    assert "](GLOSSARY.md)" in first and "](02_b.ipynb#top)" in first
    assert "](01_a.ipynb)" in (out / "GLOSSARY.md").read_text()
    assert main([str(src), str(out)]) == 0
    assert main([str(src), str(out), "--strict"]) == 1


def test_build_student_needs_notebooks(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="no \\*.ipynb"):
        notebook_paths(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_student(tmp_path / "missing", tmp_path / "out")
    nbformat.write(_exercise_notebook(), tmp_path / "a.ipynb")
    for out in (tmp_path, tmp_path.parent):  # emptying either would delete the notebooks
        with pytest.raises(ValueError, match="holds the notebooks"):
            build_student(tmp_path, out)
    assert (tmp_path / "a.ipynb").is_file()


@pytest.mark.parametrize(
    ("markdown", "summary"),
    [
        ("**Exercise 3: by hand.** Compute it. Then more.", "Exercise 3: by hand."),
        ("**Exercise 1.** Build `d = 2 * a`. Then print it.", "Exercise 1. Build `d = 2 * a`."),
        ("## Exercises\n\n**Exercise 1: a.** x\n\nafter", "Exercise 1: a."),
        ("Just do it. Now.", "Just do it."),
        ("", ""),
    ],
)
def test_exercise_summary(markdown: str, summary: str) -> None:
    assert exercise_summary(markdown) == summary


def test_checked_names_and_stub_source() -> None:
    solution = "import numpy as np\ndef f(x):\n    return x\nvalue = f(2)\ntmp = 3"
    assert checked_names(solution, ["assert f(value) == 2 and np.pi > 3", "print(len([1]))"]) == [
        "f",
        "np",
        "value",
    ]
    assert checked_names("a = (", ["a"]) == []
    stub = stub_source("Exercise 9: long " + "word " * 40, ["a", "b"], width=60)
    assert all(len(line) <= 60 and line.startswith("# ") for line in stub.splitlines())
    text = " ".join(line.removeprefix("# ") for line in stub.splitlines())
    assert "Define `a` and `b`: the self-check below uses them" in text


def test_a_notebook_another_reads_travels_as_its_key_results_only(tmp_path) -> None:
    # 02_b's code reads 01_a's stored key results (as the ledger of 07 does): the edition holds
    # a copy of 01_a with only its key-results cell, named so that nbgrader keeps it too
    src = tmp_path / "notebooks"
    src.mkdir()
    first = _exercise_notebook()
    record = new_code("show_key_results('01', {'x': 1})", metadata={"tags": ["key-results"]})
    record.outputs = [nbformat.v4.new_output("stream", text="  01.x = 1\n")]
    first.cells.insert(2, record)
    nbformat.write(first, src / "01_a.ipynb")
    reader = nbformat.v4.new_notebook(
        cells=[new_md("# B"), new_code('A = Path("..") / "notebooks" / "01_a.ipynb"')]
    )
    nbformat.write(reader, src / "02_b.ipynb")
    out = tmp_path / "student"
    build_student(src, out)
    copied = nbformat.read(out / "notebooks" / "01_a.ipynb.json", as_version=4)
    assert [c.source for c in copied.cells] == [record.source]
    assert copied.cells[0].outputs == record.outputs
    code = nbformat.read(out / "02_b.ipynb", as_version=4).cells[1].source
    assert code == 'A = Path(".") / "notebooks" / "01_a.ipynb.json"'
