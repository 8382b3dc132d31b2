"""The nbgrader course: `make nbgrader`'s output is a course that `nbgrader autograde` grades.

One course is built from the real chapters (``source/`` and, by ``nbgrader generate_assignment``,
``release/``) and two students submit: ``full`` hands in the source notebooks (every autograded
cell must get full marks) and ``blank`` hands in the release notebooks unchanged (every
autograded cell must get zero). Each student is graded by one ``nbgrader autograde`` run into
the SQLite gradebook of their own copy of the course; the two runs go side by side (each
notebook executes once per student, and the notebooks use one thread each).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest

from tools.edition import edition_parts, is_solution, notebook_paths, repository_files
from tools.make_nbgrader import (
    BEGIN,
    END,
    NOTE_TAG,
    POINTS,
    build_source,
    generate_release,
    main,
    nbgrader_command,
    nbgrader_env,
    nbgrader_notebook,
    solution_source,
)
from tools.make_student import self_check_indices

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
CHAPTERS = [p.stem for p in notebook_paths(NOTEBOOK_DIR)]
STUDENTS = {"full": "source", "blank": "release"}  # student -> the folder they hand in
new_code = nbformat.v4.new_code_cell
new_md = nbformat.v4.new_markdown_cell


def _nbgrader_installed() -> bool:
    try:
        import nbgrader  # noqa: F401
    except ImportError:
        return False
    return True


needs_nbgrader = pytest.mark.skipif(
    not _nbgrader_installed(), reason='nbgrader is not installed: pip install -e ".[grading]"'
)


def _read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def _role(cell: nbformat.NotebookNode) -> str:
    meta = cell.metadata["nbgrader"]
    if meta["solution"]:
        return "solution"
    if meta["grade"]:
        return "test"
    assert meta["locked"], "every other cell is read-only"
    return "read-only"


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> dict[str, Path]:
    """The course built from the real chapters, with the release; per student, a copy of it
    in which that student's submission of every chapter has been autograded."""
    if not _nbgrader_installed():
        pytest.skip('nbgrader is not installed: pip install -e ".[grading]"')
    base = tmp_path_factory.mktemp("nbgrader")
    built = base / "course"
    assert main([str(NOTEBOOK_DIR), str(built)]) == 0
    roots = {}
    for student, step in STUDENTS.items():
        roots[student] = base / student
        shutil.copytree(built, roots[student])
        for chapter in CHAPTERS:
            shutil.copytree(
                built / step / chapter, roots[student] / "submitted" / student / chapter
            )
    runs = {
        student: subprocess.Popen(
            nbgrader_command("autograde", "*", "--log-level=WARN"),
            cwd=root,
            env=nbgrader_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for student, root in roots.items()
    }
    for student, proc in runs.items():
        out, _ = proc.communicate(timeout=1800)
        assert proc.returncode == 0, f"{student}: {out[-3000:]}"
    return roots


@pytest.fixture(scope="module")
def course(graded: dict[str, Path]) -> Path:
    """The built course (source, release, config, gradebook), as the first student's copy."""
    return graded["full"]


# --- the real course -----------------------------------------------------------------------


@needs_nbgrader
def test_course_layout(course: Path) -> None:
    assert (course / "nbgrader_config.py").is_file() and (course / "gradebook.db").is_file()
    for step in ("source", "release"):
        assert sorted(p.name for p in (course / step).iterdir()) == CHAPTERS
        for chapter in CHAPTERS:
            nbformat.validate(_read(course / step / chapter / f"{chapter}.ipynb"))
    # files the notebooks reach from the repository root travel inside the assignment
    for chapter in CHAPTERS:
        for cell in _read(NOTEBOOK_DIR / f"{chapter}.ipynb").cells:
            for parts in repository_files(cell.source) if cell.cell_type == "code" else []:
                assert (course / "release" / chapter).joinpath(*edition_parts(parts)).is_file()


@needs_nbgrader
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_source_roles_follow_the_tags(course: Path, chapter: str) -> None:
    full = _read(NOTEBOOK_DIR / f"{chapter}.ipynb")
    source = _read(course / "source" / chapter / f"{chapter}.ipynb")
    assert len(source.cells) == len(full.cells)
    checks = {
        k
        for i, c in enumerate(full.cells)
        if is_solution(c)
        for k in self_check_indices(full.cells, i)
    }
    assert checks, "every chapter has self-checks"
    for i, (cell, original) in enumerate(zip(source.cells, full.cells, strict=True)):
        role = _role(cell)
        if is_solution(original):
            assert role == "solution"
            assert BEGIN in cell.source and END in cell.source and cell.outputs == []
        elif i in checks:
            assert role == "test" and cell.metadata["nbgrader"]["points"] == POINTS
            assert cell.source == original.source and cell.outputs == []
        else:
            assert role == "read-only"
    ids = [c.metadata["nbgrader"]["grade_id"] for c in source.cells]
    assert len(set(ids)) == len(ids)


@needs_nbgrader
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_release_has_stubs_and_no_solution(course: Path, chapter: str) -> None:
    full = _read(NOTEBOOK_DIR / f"{chapter}.ipynb")
    release = _read(course / "release" / chapter / f"{chapter}.ipynb")
    assert NOTE_TAG in release.cells[0].metadata["tags"]
    others = "\n".join(c.source for c in full.cells if not is_solution(c))
    release_text = "\n".join(c.source for c in release.cells)
    for original, cell in zip(full.cells, release.cells, strict=True):
        if not is_solution(original):
            continue
        assert "raise NotImplementedError()" in cell.source and BEGIN not in cell.source
        for line in original.source.splitlines():
            code = line.strip()
            if code and not code.startswith("#") and code not in others:
                assert code not in release_text, f"solution line {code!r} leaked"


@needs_nbgrader
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_autograde_scores(graded: dict[str, Path], chapter: str) -> None:
    from nbgrader.api import Gradebook

    scores = {}
    for student, root in graded.items():
        with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
            notebook = gradebook.find_submission_notebook(chapter, chapter, student)
            autograded = [g for g in notebook.grades if g.cell.cell_type == "code"]
            assert autograded, f"{chapter} has no autograded cell"
            scores[student] = {g.name: (g.auto_score, g.max_score) for g in autograded}
    assert all(score == top == POINTS for score, top in scores["full"].values()), scores["full"]
    assert all(score == 0 for score, _ in scores["blank"].values()), scores["blank"]
    # the full submission also ran every teaching cell without an error
    result = _read(graded["full"] / "autograded" / "full" / chapter / f"{chapter}.ipynb")
    errors = [
        (i, out.ename)
        for i, cell in enumerate(result.cells)
        if cell.cell_type == "code"
        for out in cell.outputs
        if out.output_type == "error"
    ]
    assert not errors, errors


# --- the converter on made-up notebooks -----------------------------------------------------


def _exercise_notebook() -> nbformat.NotebookNode:
    solution = new_code("answer = 6 * 7\nprint(answer)", metadata={"tags": ["solution"]})
    solution.execution_count = 3
    solution.outputs = [nbformat.v4.new_output("stream", text="42\n")]
    check = new_code("assert answer == 42\nprint('passed')")
    check.outputs = [nbformat.v4.new_output("stream", text="passed\n")]
    teach = new_code('SCRIPT = Path("..") / "examples" / "run.py"\nx = 1')
    teach.outputs = [nbformat.v4.new_output("stream", text="kept\n")]
    return nbformat.v4.new_notebook(
        cells=[
            new_md("# Demo"),
            teach,
            new_md("**Exercise 1: the answer.** Store it in `answer`."),
            solution,
            check,
            new_code("assert answer > 0"),
            new_md("## References"),
        ]
    )


def test_nbgrader_notebook_on_a_made_up_notebook() -> None:
    nb = _exercise_notebook()
    before = nbformat.writes(nb)
    out = nbgrader_notebook(nb, "demo")
    assert nbformat.writes(nb) == before, "the input notebook must not be modified"
    nbformat.validate(out)
    assert [_role(c) for c in out.cells] == [
        "read-only",
        "read-only",
        "read-only",
        "solution",
        "test",
        "test",
        "read-only",
    ]
    assert [c.metadata["nbgrader"]["grade_id"] for c in out.cells[3:6]] == [
        "demo-exercise-1",
        "demo-exercise-1-check-1",
        "demo-exercise-1-check-2",
    ]
    solution = out.cells[3].source
    assert solution.startswith("# Exercise 1: the answer.\n# Your solution here. Define `answer`")
    assert solution.endswith(f"{BEGIN}\nanswer = 6 * 7\nprint(answer)\n{END}")
    assert out.cells[3].outputs == [] and out.cells[4].outputs == []
    assert out.cells[1].outputs == nb.cells[1].outputs
    assert out.cells[1].source.startswith('SCRIPT = Path(".") / "examples" / "run.py"')
    assert "nbgrader assignment" in out.cells[0].source


def test_repository_files_and_solution_source() -> None:
    assert repository_files("p = Path('..') / 'data' / 'x.csv'; q = Path('.') / 'y'") == [
        ("data", "x.csv")
    ]
    assert repository_files("Path('..')") == []
    assert solution_source("# hint", "  y = 2\n") == f"# hint\n{BEGIN}\ny = 2\n{END}"


@needs_nbgrader
def test_generate_release_on_a_made_up_course(tmp_path: Path) -> None:
    src = tmp_path / "repo" / "notebooks"
    src.mkdir(parents=True)
    (src.parent / "examples").mkdir()
    (src.parent / "examples" / "run.py").write_text("print('hi')\n")
    nbformat.write(_exercise_notebook(), src / "01_demo.ipynb")
    root = tmp_path / "course"
    assert build_source(src, root) == ["01_demo"]
    assert (root / "source" / "01_demo" / "examples" / "run.py").is_file()
    generate_release(root)
    release = _read(root / "release" / "01_demo" / "01_demo.ipynb")
    assert "6 * 7" not in release.cells[3].source
    assert release.cells[1].outputs == _exercise_notebook().cells[1].outputs
    assert (root / "release" / "01_demo" / "examples" / "run.py").is_file()
