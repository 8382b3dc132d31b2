"""Write the student edition: every notebook with its solution cells replaced by stubs.

A cell tagged ``solution`` becomes a cell tagged ``solution-stub`` whose source is only
comments: the exercise it belongs to (from the Markdown cell above), the names the
self-check uses, and how to check the answer. Outputs and execution counts of the stubs and of
the self-check cells are cleared (a stored "passed: period = 12" would give the answer away);
every other cell is kept with its outputs. Local links are rewritten so that they work from
the output folder, and linked documents (the glossary) are copied next to the notebooks; files
the code reaches as ``Path("..") / ...`` are copied into the output folder and the path made
``Path(".") / ...`` (:mod:`tools.local_files`), so that the edition is one self-contained folder.

Usage: ``python -m tools.make_student [NOTEBOOK_DIR] [OUT_DIR]`` (defaults ``notebooks``
and ``build/student``).
"""

from __future__ import annotations

import ast
import builtins
import re
import sys
import textwrap
from pathlib import Path

import nbformat

from tools.edition import (
    Edition,
    command_line,
    fresh_output_dir,
    is_solution,
    notebook_paths,
    read_notebook,
    report,
)
from tools.links import rewrite_markdown_links
from tools.local_files import copy_local_files, localise_notebook

STUB_TAG = "solution-stub"
NOTE_TAG = "student-edition"
NOTE = (
    "> **Student edition.** Each exercise's solution is replaced by a cell that says what to "
    "write. Write your answer there, run it, then run the self-check cell below it: it passes "
    "without an `AssertionError` when your answer is right."
)
_EXERCISE = re.compile(r"\*\*(Exercise[^*]*)\*\*\s*(.*)", re.DOTALL)
_SENTENCE_END = re.compile(r"(?<=[.?!])\s+(?=[A-Z(`*])")


def _paragraphs(markdown: str) -> list[str]:
    return [" ".join(p.split()) for p in re.split(r"\n\s*\n", markdown) if p.strip()]


def exercise_summary(markdown: str) -> str:
    """A short summary of an exercise from the Markdown cell that states it.

    Parameters
    ----------
    markdown : str
        The cell's source; the exercise is its last paragraph starting with ``**Exercise``
        (or, without one, its last paragraph).

    Returns
    -------
    str
        The bold title when it has a description (``"Exercise 1: Spearman by hand."``),
        otherwise the title and the first sentence after it (``"Exercise 1. Build a feature
        ..."``); ``""`` for an empty cell.
    """
    paragraphs = _paragraphs(markdown)
    if not paragraphs:
        return ""
    exercises = [p for p in paragraphs if p.startswith("**Exercise")]
    paragraph = exercises[-1] if exercises else paragraphs[-1]
    match = _EXERCISE.match(paragraph)
    if match is None:
        return _SENTENCE_END.split(paragraph, maxsplit=1)[0]
    title, rest = match.group(1).strip(), match.group(2).strip()
    if re.fullmatch(r"Exercise\s*[\w.]*[.:]?", title) and rest:
        return f"{title} {_SENTENCE_END.split(rest, maxsplit=1)[0]}"
    return title


def _names(source: str, context: type[ast.expr_context]) -> set[str]:
    """Names bound (``ast.Store``, defs, imports) or read (``ast.Load``) by a code cell."""
    try:
        tree = ast.parse(source)
    except SyntaxError:  # IPython magics and the like: no hint, no failure
        return set()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, context):
            names.add(node.id)
        elif context is ast.Store and isinstance(
            node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef
        ):
            names.add(node.name)
        elif context is ast.Store and isinstance(node, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names - set(dir(builtins))


def checked_names(solution: str, checks: list[str]) -> list[str]:
    """The names a solution defines that its self-check cells use, sorted.

    Parameters
    ----------
    solution : str
        The solution cell's source.
    checks : list of str
        The sources of the self-check cells that follow it.

    Returns
    -------
    list of str
        Names both bound by ``solution`` and read by a check, e.g. ``["my_rho"]``.
    """
    read: set[str] = set()
    for check in checks:
        read |= _names(check, ast.Load)
    return sorted(_names(solution, ast.Store) & read)


def self_check_indices(cells: list[nbformat.NotebookNode], solution_index: int) -> list[int]:
    """Indices of the self-check cells of a solution: the code cells right after it.

    The run stops at the first Markdown cell or the next solution cell.
    """
    found: list[int] = []
    for k in range(solution_index + 1, len(cells)):
        if cells[k].cell_type != "code" or is_solution(cells[k]):
            break
        found.append(k)
    return found


def _previous_markdown(cells: list[nbformat.NotebookNode], index: int) -> str:
    for k in range(index - 1, -1, -1):
        if cells[k].cell_type == "markdown":
            return cells[k].source
    return ""


def stub_source(summary: str, names: list[str], width: int = 96) -> str:
    """The comment-only source of a stub cell.

    Parameters
    ----------
    summary : str
        What the exercise asks (see :func:`exercise_summary`).
    names : list of str
        The names the self-check expects the answer to define.
    width : int, default 96
        Line width of the wrapped comments.

    Returns
    -------
    str
        Lines that all start with ``#``, e.g. ``# Exercise 2: find the period.`` then
        ``# Your solution here. Define `period`: the self-check below uses it ...``.
    """
    if len(names) > 1:
        listed = ", ".join(f"`{n}`" for n in names[:-1]) + f" and `{names[-1]}`"
        define = f"Define {listed}: the self-check below uses them and passes"
    elif names:
        define = f"Define `{names[0]}`: the self-check below uses it and passes"
    else:
        define = "Then run the self-check below: it passes"
    text = f"Your solution here. {define} when your answer is right."
    lines = [summary, text] if summary else [text]
    return "\n".join(
        "\n".join(
            textwrap.wrap(
                line,
                width=width,
                initial_indent="# ",
                subsequent_indent="# ",
                break_on_hyphens=False,
                break_long_words=False,
            )
        )
        for line in lines
    )


def _clear(cell: nbformat.NotebookNode) -> None:
    cell.outputs = []
    cell.execution_count = None
    cell.metadata.pop("execution", None)


def student_notebook(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The student edition of a notebook (a new object; ``nb`` is not modified).

    Parameters
    ----------
    nb : NotebookNode
        A notebook whose solutions are code cells tagged ``solution``.

    Returns
    -------
    NotebookNode
        The same cells in the same order: each solution cell (still tagged ``solution``, and
        also ``solution-stub``) emptied to a comment that says what to write, with no outputs
        and execution count None; self-check cells with their source unchanged and outputs
        cleared; a note on the student edition added to the title cell (tagged
        ``student-edition``); the other cells unchanged.
    """
    out = nbformat.from_dict(nb)
    cells = out.cells
    for i, cell in enumerate(cells):
        if not is_solution(cell):
            continue
        checks = self_check_indices(cells, i)
        summary = exercise_summary(_previous_markdown(cells, i))
        names = checked_names(cell.source, [cells[k].source for k in checks])
        cell.source = stub_source(summary, names)
        tags = cell.metadata.get("tags", [])
        cell.metadata["tags"] = [*tags, STUB_TAG]  # still tagged "solution": the same cell
        _clear(cell)
        for k in checks:
            _clear(cells[k])
    if cells and cells[0].cell_type == "markdown":
        # the note joins the title cell, so every cell keeps its position
        cells[0].source = f"{cells[0].source.rstrip()}\n\n{NOTE}"
        cells[0].metadata["tags"] = [*cells[0].metadata.get("tags", []), NOTE_TAG]
    return out


def _rewrite_links(nb: nbformat.NotebookNode, edition: Edition, base: Path, where: str) -> None:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = rewrite_markdown_links(
                cell.source, lambda t: edition.link(t, base, where)
            )


def build_student(src_dir: Path | str, out_dir: Path | str) -> Edition:
    """Write the student edition of every notebook in ``src_dir`` into ``out_dir``.

    Parameters
    ----------
    src_dir : Path or str
        The folder of the full notebooks.
    out_dir : Path or str
        The output folder; it is emptied first.

    Returns
    -------
    Edition
        The written files (``pages``: source path -> output name) and the links to missing
        files (``broken``).
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
        _rewrite_links(nb, edition, path.parent, path.name)
        nbformat.validate(nb)
        nbformat.write(nb, out_dir / path.name)
    while (doc := edition.next_document()) is not None:
        text = rewrite_markdown_links(
            doc.read_text(encoding="utf-8"), lambda t, d=doc: edition.link(t, d.parent, d.name)
        )
        (out_dir / edition.pages[doc.resolve()]).write_text(text, encoding="utf-8")
    return edition


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status.

    A link to a missing file is reported on stderr; with ``--strict`` it also makes the
    exit status 1.
    """
    args = command_line(__doc__.splitlines()[0], "build/student").parse_args(argv)
    edition = build_student(args.src_dir, args.out_dir)
    return report(
        edition, f"student edition: {len(edition.pages)} files in {args.out_dir}", args.strict
    )


if __name__ == "__main__":
    sys.exit(main())
