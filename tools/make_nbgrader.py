"""Write the course as an nbgrader course: one assignment per chapter, graded by the self-checks.

The conversion follows the conventions :mod:`tools.make_student` reads: a code cell tagged
``solution`` is an exercise's solution, and the code cells right after it (up to the next
Markdown or solution cell) are its self-checks. In the nbgrader source notebook

- each solution cell becomes an nbgrader *solution* cell: a comment saying what to write (the
  student edition's stub), then the solution between ``### BEGIN SOLUTION`` and
  ``### END SOLUTION``, which ``nbgrader generate_assignment`` replaces by
  ``raise NotImplementedError()`` in the release;
- each self-check cell becomes a read-only *autograded test* cell worth :data:`POINTS` points;
- every other cell (Markdown and code) becomes *read-only*.

Solution and self-check cells lose their outputs; the teaching cells keep theirs (the
course's ``nbgrader_config.py`` tells nbgrader not to clear them). Files the code reaches as
``Path("..") / "examples" / "x.py"`` are copied into the assignment folder (:mod:`tools.edition`),
so that each assignment is one self-contained folder.

Usage: ``python -m tools.make_nbgrader [NOTEBOOK_DIR] [OUT_DIR]`` (defaults ``notebooks`` and
``build/nbgrader``); ``--no-release`` writes only the source notebooks and the configuration.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import nbformat

from tools.edition import (
    add_note,
    checked_names,
    clear_outputs,
    copy_local_files,
    exercise_summary,
    fresh_output_dir,
    is_solution,
    localise_notebook,
    notebook_paths,
    previous_markdown,
    read_notebook,
    self_check_indices,
    stub_source,
)

COURSE_ID = "correlation-in-deep-learning"
POINTS = 1
SCHEMA_VERSION = 3
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
NOTE_TAG = "nbgrader-edition"
NOTE = (
    "> **nbgrader assignment.** Each exercise's solution cell ends in "
    "`raise NotImplementedError()`: replace that line with your answer, run the cell, then run "
    "the self-check cell below it. The self-checks are the graded cells; the other cells are "
    "read-only."
)
CONFIG = f'''\
"""nbgrader configuration of the course (written by `make nbgrader`; run nbgrader here)."""

c = get_config()  # noqa: F821 (nbgrader defines it)

c.CourseDirectory.course_id = "{COURSE_ID}"
# the release keeps the teaching cells' outputs (figures, tables), as the student edition does;
# the solution and self-check cells have none in the source notebooks
c.ClearOutput.enabled = False
# autograde: seconds per cell (a chapter runs in under a minute on a laptop CPU)
c.Execute.timeout = 600
'''


def _meta(grade_id: str, *, solution: bool = False, grade: bool = False) -> dict:
    meta = {
        "grade": grade,
        "grade_id": grade_id,
        "locked": not solution,
        "schema_version": SCHEMA_VERSION,
        "solution": solution,
        "task": False,
    }
    if grade:
        meta["points"] = POINTS
    return meta


def solution_source(stub: str, solution: str) -> str:
    """A solution cell's nbgrader source: the stub comment, then the solution between markers.

    >>> print(solution_source("# Define `x`.", "x = 1"))
    # Define `x`.
    ### BEGIN SOLUTION
    x = 1
    ### END SOLUTION
    """
    return f"{stub}\n{BEGIN}\n{solution.strip()}\n{END}"


def nbgrader_notebook(nb: nbformat.NotebookNode, assignment: str) -> nbformat.NotebookNode:
    """The nbgrader source version of a chapter (a new object; ``nb`` is not modified).

    The same cells in the same order, each with ``nbgrader`` metadata: solution cells
    (grade id ``{assignment}-exercise-{n}``), autograded self-checks
    (``{assignment}-exercise-{n}-check-{k}``, :data:`POINTS` points each) and read-only cells
    (``{assignment}-cell-{i}``); a note added to the title cell.
    """
    out = nbformat.from_dict(nb)
    cells = out.cells
    roles: dict[int, dict] = {}
    exercise = 0
    for i, cell in enumerate(cells):
        if not is_solution(cell):
            continue
        exercise += 1
        name = f"{assignment}-exercise-{exercise}"
        checks = self_check_indices(cells, i)
        names = checked_names(cell.source, [cells[k].source for k in checks])
        stub = stub_source(exercise_summary(previous_markdown(cells, i)), names)
        cell.source = solution_source(stub, cell.source)
        roles[i] = _meta(name, solution=True)
        for n, k in enumerate(checks, start=1):
            roles[k] = _meta(f"{name}-check-{n}", grade=True)
            clear_outputs(cells[k])
        clear_outputs(cell)
    for i, cell in enumerate(cells):
        cell.metadata["nbgrader"] = roles.get(i, _meta(f"{assignment}-cell-{i}"))
    localise_notebook(out)
    add_note(out, NOTE, NOTE_TAG)
    return out


def build_source(src_dir: Path | str, out_dir: Path | str) -> list[str]:
    """Write ``nbgrader_config.py`` and ``source/<chapter>/<chapter>.ipynb`` into ``out_dir``
    (emptied first); return the assignments (the notebooks' stems), in course order."""
    src_dir, out_dir = Path(src_dir), Path(out_dir)
    paths = notebook_paths(src_dir)
    fresh_output_dir(src_dir, out_dir)
    (out_dir / "nbgrader_config.py").write_text(CONFIG, encoding="utf-8")
    assignments = []
    for path in paths:
        nb = read_notebook(path)
        folder = out_dir / "source" / path.stem
        folder.mkdir(parents=True)
        copy_local_files(nb, path.parent, folder)
        converted = nbgrader_notebook(nb, path.stem)
        nbformat.validate(converted)
        nbformat.write(converted, folder / path.name)
        assignments.append(path.stem)
    return assignments


def nbgrader_command(*args: str) -> list[str]:
    """The command line that runs nbgrader with this interpreter (``python -m nbgrader ...``)."""
    return [sys.executable, "-m", "nbgrader", *args]


def nbgrader_env() -> dict[str, str]:
    """The environment for nbgrader: this interpreter's scripts first on ``PATH`` (nbgrader
    runs ``alembic`` by name, which must be its own, also when .venv is not activated)."""
    scripts = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": os.pathsep.join([scripts, os.environ.get("PATH", "")])}


def generate_release(course_dir: Path | str) -> None:
    """Run ``nbgrader generate_assignment`` on every assignment (one process, the glob ``*``):
    writes ``release/``; raises subprocess.CalledProcessError when nbgrader fails."""
    subprocess.run(
        nbgrader_command("generate_assignment", "*", "--force", "--log-level=WARN"),
        cwd=course_dir,
        env=nbgrader_env(),
        check=True,
    )


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src_dir", nargs="?", default="notebooks", type=Path)
    parser.add_argument("out_dir", nargs="?", default="build/nbgrader", type=Path)
    parser.add_argument("--no-release", action="store_true", help="skip generate_assignment")
    args = parser.parse_args(argv)
    assignments = build_source(args.src_dir, args.out_dir)
    if not args.no_release:
        generate_release(args.out_dir)
    print(f"nbgrader course: {len(assignments)} assignments in {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
