"""What the student and HTML editions share: the notebook list, their headings, and an
:class:`Edition` that decides where every linked file lands in the output folder.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote

import nbformat

from tools.links import is_local, split_fragment

SOLUTION_TAG = "solution"
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def notebook_paths(folder: Path | str) -> list[Path]:
    """The course's notebooks: every ``*.ipynb`` directly in ``folder``, sorted by file name.

    Raises
    ------
    FileNotFoundError
        When ``folder`` is not a directory or holds no notebook.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"notebook folder {folder} does not exist")
    paths = sorted(p for p in folder.glob("*.ipynb") if p.is_file())
    if not paths:
        raise FileNotFoundError(f"no *.ipynb notebook in {folder}")
    return paths


def fresh_output_dir(src_dir: Path | str, out_dir: Path | str) -> Path:
    """Empty (or create) the output folder of an edition.

    Raises
    ------
    ValueError
        When ``out_dir`` is ``src_dir`` or one of its parents: emptying it would delete the
        notebooks.
    """
    src, out = Path(src_dir).resolve(), Path(out_dir).resolve()
    if src.is_relative_to(out):
        raise ValueError(f"output folder {out_dir} holds the notebooks of {src_dir}")
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    return Path(out_dir)


def read_notebook(path: Path | str) -> nbformat.NotebookNode:
    """Read a notebook as nbformat version 4."""
    return nbformat.read(Path(path), as_version=4)


def is_solution(cell: nbformat.NotebookNode) -> bool:
    """Whether a cell is a code cell tagged ``solution``."""
    return cell.cell_type == "code" and SOLUTION_TAG in cell.get("metadata", {}).get("tags", [])


def _markdown_lines(nb: nbformat.NotebookNode) -> list[str]:
    """All lines of all Markdown cells, in order (fenced code blocks removed)."""
    lines: list[str] = []
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        fenced = False
        for line in cell.source.splitlines():
            if line.lstrip().startswith(("```", "~~~")):
                fenced = not fenced
            elif not fenced:
                lines.append(line)
        lines.append("")
    return lines


def markdown_title(lines: list[str], default: str = "") -> str:
    """The text of the first level-1 heading among Markdown lines, or ``default``."""
    for line in lines:
        match = _HEADING.match(line)
        if match and len(match.group(1)) == 1:
            return match.group(2)
    return default


def notebook_title(nb: nbformat.NotebookNode, default: str = "") -> str:
    """The text of the notebook's first level-1 Markdown heading, or ``default``."""
    return markdown_title(_markdown_lines(nb), default)


def markdown_section(nb: nbformat.NotebookNode, heading: str) -> str:
    """The Markdown under a heading, up to the next heading of the same or a higher level.

    Parameters
    ----------
    nb : NotebookNode
        The notebook.
    heading : str
        The heading's text, compared without case (``"Learning objectives"``).

    Returns
    -------
    str
        The section's body, stripped; ``""`` when the notebook has no such heading.
    """
    body: list[str] = []
    level = 0
    for line in _markdown_lines(nb):
        match = _HEADING.match(line)
        if level and match and len(match.group(1)) <= level:
            break
        if level:
            body.append(line)
        elif match and match.group(2).strip().lower() == heading.strip().lower():
            level = len(match.group(1))
    return "\n".join(body).strip()


class Edition:
    """The files of an edition in one flat output folder, and the links between them.

    Pages (the notebooks, then every local document they link to) are registered with their
    output name; :meth:`link` turns a link written in a source file into the link that works
    in the output folder, registers linked documents (``.md``) for the caller to write later,
    copies every other linked file into ``files/``, and records links to missing files.

    Parameters
    ----------
    out_dir : Path
        The output folder.
    document_name : callable
        Output name of a linked Markdown document, e.g. ``GLOSSARY.md`` -> ``glossary.html``.
    """

    def __init__(self, out_dir: Path | str, document_name: Callable[[Path], str]) -> None:
        self.out_dir = Path(out_dir)
        self.document_name = document_name
        self.pages: dict[Path, str] = {}
        self.pending_documents: list[Path] = []
        self.broken: list[tuple[str, str]] = []
        self._taken: set[str] = set()

    def reserve(self, name: str) -> None:
        """Keep ``name`` (e.g. ``index.html``) free for a file that has no source."""
        self._taken.add(name)

    def add_page(self, source: Path, name: str) -> None:
        """Register that ``source`` is written to ``out_dir / name``."""
        if name in self._taken:
            raise ValueError(f"two sources would be written to {name}")
        self.pages[Path(source).resolve()] = name
        self._taken.add(name)

    def _unique(self, name: str) -> str:
        stem, dot, suffix = name.rpartition(".")
        candidate, k = name, 1
        while candidate in self._taken:
            k += 1
            candidate = f"{stem}_{k}{dot}{suffix}" if dot else f"{name}_{k}"
        return candidate

    def link(self, target: str, base_dir: Path, where: str) -> str:
        """The link to use in the output for ``target`` written in a file of ``base_dir``.

        Parameters
        ----------
        target : str
            The link as written in the source (``"../GLOSSARY.md"``).
        base_dir : Path
            The folder of the source file the link is written in.
        where : str
            The source file's name, for the list of broken links.

        Returns
        -------
        str
            The rewritten link; non-local links and links to missing files are unchanged (the
            latter are recorded in :attr:`broken`).
        """
        if not is_local(target):
            return target
        path, rest = split_fragment(target)
        name = self.place(Path(base_dir) / unquote(path))
        if name is None:
            self.broken.append((where, target))
            return target
        return name + rest

    def place(self, source: Path | str) -> str | None:
        """The output name of a file, registering (and copying) it on first use.

        Parameters
        ----------
        source : Path or str
            A file anywhere on disk.

        Returns
        -------
        str or None
            Its name in the output folder; None when ``source`` is not a file.
        """
        resolved = Path(source).resolve()
        if resolved in self.pages:
            return self.pages[resolved]
        if not resolved.is_file():
            return None
        if resolved.suffix.lower() == ".md":
            name = self._unique(self.document_name(resolved))
            self.pending_documents.append(resolved)
        else:
            name = self._unique(f"files/{resolved.name}")
            (self.out_dir / "files").mkdir(parents=True, exist_ok=True)
            shutil.copy2(resolved, self.out_dir / name)
        self.pages[resolved] = name
        self._taken.add(name)
        return name

    def next_document(self) -> Path | None:
        """The next linked document that is registered but not written yet, or None."""
        return self.pending_documents.pop(0) if self.pending_documents else None


def command_line(description: str, default_out: str) -> argparse.ArgumentParser:
    """The arguments both edition builders take: source folder, output folder, ``--strict``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("src_dir", nargs="?", default="notebooks", type=Path)
    parser.add_argument("out_dir", nargs="?", default=default_out, type=Path)
    parser.add_argument("--strict", action="store_true", help="fail on a broken link")
    return parser


def report(edition: Edition, summary: str, strict: bool) -> int:
    """Print ``summary`` and every broken link (on stderr); the exit status for ``strict``."""
    print(summary)
    for where, target in edition.broken:
        print(f"warning: broken link in {where}: {target}", file=sys.stderr)
    return 1 if strict and edition.broken else 0
