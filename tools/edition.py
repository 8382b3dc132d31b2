"""What the student edition and the nbgrader course share, in one place: the notebooks and
their exercises (solutions, self-checks, stubs); links in Markdown and an :class:`Edition` that
places every linked file in one flat output folder; the files a chapter's code reaches as
``Path("..") / "examples" / "x.py"``, copied into an edition and reached as ``Path(".") / ...``.
"""

from __future__ import annotations

import ast
import builtins
import re
import shutil
import textwrap
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat

SOLUTION_TAG = "solution"
# Markdown links [text](target), reference definitions [label]: target, HTML href/src="target"
_MD_INLINE = re.compile(r"(\]\(\s*<?)([^)\s>]+)()")
_MD_REFERENCE = re.compile(r"^(\s{0,3}\[[^\]]+\]:\s*<?)([^\s>]+)()", re.MULTILINE)
_HTML_ATTR = re.compile(r"""(\b(?:href|src)\s*=\s*(["']))(.*?)(\2)""", re.IGNORECASE | re.DOTALL)
_REPO_PATH = re.compile(r"""Path\(\s*(["'])\.\.\1\s*\)((?:\s*/\s*(["'])[^"'\n]+\3)+)""")
_EXERCISE = re.compile(r"\*\*(Exercise[^*]*)\*\*\s*(.*)", re.DOTALL)
_SENTENCE_END = re.compile(r"(?<=[.?!])\s+(?=[A-Z(`*])")


# --- notebooks and exercises -------------------------------------------------------------------


def notebook_paths(folder: Path | str) -> list[Path]:
    """Every ``*.ipynb`` directly in ``folder``, sorted; FileNotFoundError if there is none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"notebook folder {folder} does not exist")
    paths = sorted(p for p in folder.glob("*.ipynb") if p.is_file())
    if not paths:
        raise FileNotFoundError(f"no *.ipynb notebook in {folder}")
    return paths


def fresh_output_dir(src_dir: Path | str, out_dir: Path | str) -> Path:
    """Empty (or create) ``out_dir``; ValueError when it holds ``src_dir`` (its notebooks)."""
    src, out = Path(src_dir).resolve(), Path(out_dir).resolve()
    if src.is_relative_to(out):
        raise ValueError(f"output folder {out_dir} holds the notebooks of {src_dir}")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    return Path(out_dir)


def read_notebook(path: Path | str) -> nbformat.NotebookNode:
    """Read a notebook as nbformat version 4."""
    return nbformat.read(Path(path), as_version=4)


def is_solution(cell: nbformat.NotebookNode) -> bool:
    """Whether a cell is a code cell tagged ``solution``."""
    return cell.cell_type == "code" and SOLUTION_TAG in cell.get("metadata", {}).get("tags", [])


def clear_outputs(cell: nbformat.NotebookNode) -> None:
    """Remove a code cell's outputs, execution count and timing."""
    cell.outputs = []
    cell.execution_count = None
    cell.metadata.pop("execution", None)


def add_note(nb: nbformat.NotebookNode, note: str, tag: str) -> None:
    """Append ``note`` to the title cell and tag it (so that every cell keeps its position)."""
    if nb.cells and nb.cells[0].cell_type == "markdown":
        nb.cells[0].source = f"{nb.cells[0].source.rstrip()}\n\n{note}"
        nb.cells[0].metadata["tags"] = [*nb.cells[0].metadata.get("tags", []), tag]


def self_check_indices(cells: list[nbformat.NotebookNode], solution_index: int) -> list[int]:
    """The self-checks of a solution: the code cells after it, up to a Markdown or solution."""
    found: list[int] = []
    for k in range(solution_index + 1, len(cells)):
        if cells[k].cell_type != "code" or is_solution(cells[k]):
            break
        found.append(k)
    return found


def previous_markdown(cells: list[nbformat.NotebookNode], index: int) -> str:
    """The source of the last Markdown cell before ``cells[index]`` (``""`` if none)."""
    return next((c.source for c in cells[:index][::-1] if c.cell_type == "markdown"), "")


def exercise_summary(markdown: str) -> str:
    """A short summary of the exercise a Markdown cell states (its last ``**Exercise`` paragraph).

    The bold title when a description follows it (``"Exercise 1: Spearman by hand."``), else the
    title and the first sentence after it; without a bold title, the first sentence.
    """
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", markdown) if p.strip()]
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
    """Names a code cell binds (``ast.Store``: also defs and imports) or reads (``ast.Load``)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:  # IPython magics and the like: no names, no failure
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
    """The names ``solution`` defines that the self-check sources ``checks`` read, sorted."""
    read = set().union(*(_names(check, ast.Load) for check in checks))
    return sorted(_names(solution, ast.Store) & read)


def stub_source(summary: str, names: list[str], width: int = 96) -> str:
    """A stub cell's source, comments only: the exercise, then what to define and how to check."""
    if len(names) > 1:
        listed = ", ".join(f"`{n}`" for n in names[:-1]) + f" and `{names[-1]}`"
        define = f"Define {listed}: the self-check below uses them and passes"
    elif names:
        define = f"Define `{names[0]}`: the self-check below uses it and passes"
    else:
        define = "Then run the self-check below: it passes"
    lines = [summary] * bool(summary) + [f"Your solution here. {define} when your answer is right."]
    wrap = textwrap.TextWrapper(
        width, initial_indent="# ", subsequent_indent="# ", break_on_hyphens=False
    )
    wrap.break_long_words = False
    return "\n".join(wrap.fill(line) for line in lines)


# --- links and the files of an edition ---------------------------------------------------------


def is_local(target: str) -> bool:
    """Whether a link target is a relative path to a file (not a URL, absolute path, anchor)."""
    if not target or target.startswith(("#", "/", "\\")):
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc and bool(parts.path)


def split_fragment(target: str) -> tuple[str, str]:
    """Split ``"path?query#frag"`` into ``("path", "?query#frag")``."""
    cut = min((i for i in (target.find("#"), target.find("?")) if i >= 0), default=len(target))
    return target[:cut], target[cut:]


def rewrite_markdown_links(text: str, rewrite: Callable[[str], str]) -> str:
    """Markdown ``text`` with ``rewrite`` applied to every link target (inline, reference, HTML)."""
    for pattern, group in ((_MD_INLINE, 2), (_MD_REFERENCE, 2), (_HTML_ATTR, 3)):
        text = pattern.sub(
            lambda m, g=group: m.group(1) + rewrite(m.group(g)) + m.group(g + 1), text
        )
    return text


def markdown_links(text: str) -> list[str]:
    """All link targets of a Markdown text, in the order :func:`rewrite_markdown_links` sees."""
    found: list[str] = []
    rewrite_markdown_links(text, lambda t: found.append(t) or t)
    return found


class Edition:
    """An edition's files in one flat output folder, and the links between them.

    ``pages`` maps each source (resolved) to its output name; :meth:`link` rewrites a link for
    the output folder, registering a linked Markdown document under ``document_name(path)``
    for the caller to write (``pending_documents``), copying any other linked file into
    ``files/``, and recording links to missing files in ``broken`` as ``(where, target)``.
    """

    def __init__(self, out_dir: Path | str, document_name: Callable[[Path], str]) -> None:
        self.out_dir, self.document_name = Path(out_dir), document_name
        self.pages: dict[Path, str] = {}
        self.pending_documents: list[Path] = []
        self.broken: list[tuple[str, str]] = []

    def add_page(self, source: Path, name: str) -> None:
        """Register that ``source`` is written to ``out_dir / name``."""
        if name in self.pages.values():
            raise ValueError(f"two sources would be written to {name}")
        self.pages[Path(source).resolve()] = name

    def link(self, target: str, base_dir: Path, where: str) -> str:
        """The output's link for ``target`` written in a file of ``base_dir`` (named ``where``)."""
        if not is_local(target):
            return target
        path, rest = split_fragment(target)
        name = self.place(Path(base_dir) / unquote(path))
        if name is None:
            self.broken.append((where, target))
            return target
        return name + rest

    def place(self, source: Path | str) -> str | None:
        """The output name of a file, registered (and copied) on first use; None if no file."""
        resolved = Path(source).resolve()
        if resolved in self.pages or not resolved.is_file():
            return self.pages.get(resolved)
        is_doc = resolved.suffix.lower() == ".md"
        name = self.document_name(resolved) if is_doc else f"files/{resolved.name}"
        stem, dot, suffix = name.rpartition(".")
        k = 1
        while name in self.pages.values():
            k += 1
            name = f"{stem}_{k}{dot}{suffix}"
        if is_doc:
            self.pending_documents.append(resolved)
        else:
            (self.out_dir / "files").mkdir(parents=True, exist_ok=True)
            shutil.copy2(resolved, self.out_dir / name)
        self.pages[resolved] = name
        return name


def repository_files(source: str) -> list[tuple[str, ...]]:
    """The repository files a code cell names as ``Path("..") / "dir" / "file"``.

    >>> repository_files('SCRIPT = Path("..") / "examples" / "ddp.py"')
    [('examples', 'ddp.py')]
    """
    parts = re.compile(r"""(["'])([^"'\n]+)\1""")
    return [tuple(m[1] for m in parts.findall(x.group(2))) for x in _REPO_PATH.finditer(source)]


RECORD_SUFFIX = ".json"
"""Appended to the name of a notebook that a chapter's code reads (the ledger of 07 reads the
other chapters' key results): nbgrader copies no ``.ipynb`` file but the assignment's own."""


def edition_parts(parts: tuple[str, ...]) -> tuple[str, ...]:
    """Where a repository file named by ``parts`` lies inside an edition.

    >>> edition_parts(("notebooks", "03_integration.ipynb"))
    ('notebooks', '03_integration.ipynb.json')
    >>> edition_parts(("examples", "ddp.py"))
    ('examples', 'ddp.py')
    """
    if parts and parts[-1].endswith(".ipynb"):
        return (*parts[:-1], parts[-1] + RECORD_SUFFIX)
    return tuple(parts)


def localise(source: str) -> str:
    """``source`` with each ``Path("..") / ...`` made relative to the edition's folder (a
    notebook it names gets :data:`RECORD_SUFFIX`, see :func:`edition_parts`).

    >>> localise('SCRIPT = Path("..") / "examples" / "ddp.py"')
    'SCRIPT = Path(".") / "examples" / "ddp.py"'
    >>> localise('NB = Path("..") / "notebooks" / "03_integration.ipynb"')
    'NB = Path(".") / "notebooks" / "03_integration.ipynb.json"'
    """

    def local(match: re.Match) -> str:
        tail = re.sub(r"""\.ipynb(["'])$""", rf".ipynb{RECORD_SUFFIX}\1", match.group(2))
        return f'Path("."){tail}'

    return _REPO_PATH.sub(local, source)


def key_results_notebook(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``nb`` with only its cells tagged ``key-results`` (outputs kept): what the
    ledger reads, and no exercise's solution."""
    out = nbformat.from_dict(nb)
    out.cells = [
        c
        for c in out.cells
        if c.cell_type == "code" and "key-results" in c.metadata.get("tags", [])
    ]
    return out


def copy_local_files(nb: nbformat.NotebookNode, notebook_dir: Path, out_dir: Path) -> list[Path]:
    """Copy the repository files ``nb``'s code names (from ``notebook_dir/..``) into ``out_dir``.

    A notebook (the ledger of 07 reads the other chapters' stored key results) is copied as
    its :func:`key_results_notebook`, named as :func:`edition_parts` says, so that an edition
    carries no other chapter's answers and nbgrader keeps the file.
    """
    written = []
    for cell in (c for c in nb.cells if c.cell_type == "code"):
        for parts in repository_files(cell.source):
            source, target = (
                Path(notebook_dir).parent.joinpath(*parts),
                Path(out_dir).joinpath(*edition_parts(parts)),
            )
            if source.is_file():
                target.parent.mkdir(parents=True, exist_ok=True)
                if source.suffix == ".ipynb":
                    nbformat.write(key_results_notebook(read_notebook(source)), target)
                    written.append(target)
                else:
                    written.append(Path(shutil.copy2(source, target)))
    return written


def localise_notebook(nb: nbformat.NotebookNode) -> None:
    """Apply :func:`localise` to every code cell of ``nb``, in place."""
    for cell in (c for c in nb.cells if c.cell_type == "code"):
        cell.source = localise(cell.source)
