"""Write the student edition: every notebook with its solution cells replaced by stubs.

A cell tagged ``solution`` keeps its tag, gains ``solution-stub``, and its source becomes only
comments: the exercise it belongs to (from the Markdown cell above), the names the self-check
uses, and how to check the answer. The stubs' and the self-checks' outputs are cleared (a stored
"passed: period = 12" would give the answer away); every other cell keeps its outputs. Local
links are rewritten to work from the output folder, linked documents (the glossary) are copied
next to the notebooks, and files the code reaches as ``Path("..") / ...`` are copied in too, so
that the edition is one self-contained folder (:mod:`tools.edition`).

Usage: ``python -m tools.make_student [NOTEBOOK_DIR] [OUT_DIR]`` (defaults ``notebooks``
and ``build/student``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

from tools.edition import (  # noqa: F401 (checked_names and stub_source: the tests' API here)
    Edition,
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
    rewrite_markdown_links,
    self_check_indices,
    stub_source,
)

STUB_TAG = "solution-stub"
NOTE_TAG = "student-edition"
NOTE = (
    "> **Student edition.** Each exercise's solution is replaced by a cell that says what to "
    "write. Write your answer there, run it, then run the self-check cell below it: it passes "
    "without an `AssertionError` when your answer is right."
)


def student_notebook(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The student edition of a notebook (a new object; ``nb`` is not modified).

    The same cells in the same order: each solution cell (tagged ``solution`` and
    ``solution-stub``) a comment saying what to write, without outputs; the self-check cells
    unchanged but without outputs; the note on the edition added to the title cell.
    """
    out = nbformat.from_dict(nb)
    cells = out.cells
    for i, cell in enumerate(cells):
        if not is_solution(cell):
            continue
        checks = self_check_indices(cells, i)
        names = checked_names(cell.source, [cells[k].source for k in checks])
        cell.source = stub_source(exercise_summary(previous_markdown(cells, i)), names)
        cell.metadata["tags"] = [*cell.metadata.get("tags", []), STUB_TAG]
        for k in [i, *checks]:
            clear_outputs(cells[k])
    add_note(out, NOTE, NOTE_TAG)
    return out


def build_student(src_dir: Path | str, out_dir: Path | str) -> Edition:
    """Write the student edition of the notebooks in ``src_dir`` into ``out_dir`` (emptied).

    Returns the :class:`~tools.edition.Edition`: the files written and the broken links.
    """
    src_dir, out_dir = Path(src_dir), Path(out_dir)
    paths = notebook_paths(src_dir)
    fresh_output_dir(src_dir, out_dir)
    edition = Edition(out_dir, document_name=lambda p: p.name)
    for path in paths:
        edition.add_page(path, path.name)
    for path in paths:
        full = read_notebook(path)
        copy_local_files(full, path.parent, out_dir)
        nb = student_notebook(full)
        localise_notebook(nb)
        for cell in (c for c in nb.cells if c.cell_type == "markdown"):
            cell.source = rewrite_markdown_links(
                cell.source, lambda t, p=path: edition.link(t, p.parent, p.name)
            )
        nbformat.validate(nb)
        nbformat.write(nb, out_dir / path.name)
    while edition.pending_documents:
        doc = edition.pending_documents.pop(0)
        text = rewrite_markdown_links(
            doc.read_text(encoding="utf-8"), lambda t, d=doc: edition.link(t, d.parent, d.name)
        )
        (out_dir / edition.pages[doc.resolve()]).write_text(text, encoding="utf-8")
    return edition


def main(argv: list[str] | None = None) -> int:
    """Command line; a broken link is reported on stderr (and exit status 1 with --strict)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src_dir", nargs="?", default="notebooks", type=Path)
    parser.add_argument("out_dir", nargs="?", default="build/student", type=Path)
    parser.add_argument("--strict", action="store_true", help="fail on a broken link")
    args = parser.parse_args(argv)
    edition = build_student(args.src_dir, args.out_dir)
    print(f"student edition: {len(edition.pages)} files in {args.out_dir}")
    for where, target in edition.broken:
        print(f"warning: broken link in {where}: {target}", file=sys.stderr)
    return 1 if args.strict and edition.broken else 0


if __name__ == "__main__":
    sys.exit(main())
