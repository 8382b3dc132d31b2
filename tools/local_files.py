"""Files outside the notebook folder that a chapter's code reaches, for self-contained editions.

A chapter reaches a repository file from its own folder as ``Path("..") / "examples" / "x.py"``.
An edition (the student edition, an nbgrader assignment) is handed out as one folder, so its
builder copies each such file into that folder and rewrites the expression to
``Path(".") / "examples" / "x.py"``.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import nbformat

_REPO_PATH = re.compile(r"""Path\(\s*(["'])\.\.\1\s*\)((?:\s*/\s*(["'])[^"'\n]+\3)+)""")
_PART = re.compile(r"""(["'])([^"'\n]+)\1""")


def repository_files(source: str) -> list[tuple[str, ...]]:
    """The repository files a code cell names as ``Path("..") / "dir" / "file"``.

    >>> repository_files('SCRIPT = Path("..") / "examples" / "ddp.py"')
    [('examples', 'ddp.py')]
    """
    return [
        tuple(m[1] for m in _PART.findall(match.group(2))) for match in _REPO_PATH.finditer(source)
    ]


def localise(source: str) -> str:
    """``source`` with each ``Path("..") / ...`` made relative to the edition's folder.

    >>> localise('SCRIPT = Path("..") / "examples" / "ddp.py"')
    'SCRIPT = Path(".") / "examples" / "ddp.py"'
    """
    return _REPO_PATH.sub(lambda m: f'Path("."){m.group(2)}', source)


def copy_local_files(nb: nbformat.NotebookNode, notebook_dir: Path, out_dir: Path) -> list[Path]:
    """Copy the repository files the code cells of ``nb`` name into ``out_dir``.

    Parameters
    ----------
    nb : NotebookNode
        The chapter, as stored in ``notebook_dir``.
    notebook_dir : Path
        The chapter's folder; ``Path("..")`` is its parent.
    out_dir : Path
        The edition's folder; each file lands at the same relative path under it.

    Returns
    -------
    list of Path
        The copies written (names of missing files are skipped).
    """
    written = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for parts in repository_files(cell.source):
            source = Path(notebook_dir).parent.joinpath(*parts)
            if source.is_file():
                target = Path(out_dir).joinpath(*parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
                written.append(target)
    return written


def localise_notebook(nb: nbformat.NotebookNode) -> None:
    """Apply :func:`localise` to every code cell of ``nb``, in place."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.source = localise(cell.source)
