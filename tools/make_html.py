"""Write the course website with Jupyter Book 1.x (Sphinx, MyST-NB and sphinx-book-theme).

Nothing is executed: every notebook is rendered from its stored outputs
(``execute_notebooks: off``). The build stages its sources in a work folder (``build/site``
by default): the chapter notebooks, the documents they link to (the glossary) and the files
those link to, keeping their places relative to the repository; a landing page with each
chapter's learning objectives (read from the notebooks now) and a link to the ledger of the
article's claims when a notebook has a heading with "Ledger" in it; one API page per public
corrlib module (found with :mod:`pkgutil`, documented by autodoc from the docstrings); the
table of contents (the chapters in order, then the documents and the API reference); and the
book's configuration. Jupyter Book then writes the site into the output folder.

The site works without a network, opened from disk or served: formulas are typeset by the
MathJax 3 copy that the ``django-static-mathjax`` package ships (copied into the site), the
search index, theme, fonts and scripts are files of the site, and widget scripts from a CDN
are switched off. :mod:`tools.site_links` links each chapter's first use of a corrlib name
to its API entry and puts a download link for the notebook at the top of the chapter.

Usage: ``python -m tools.make_html [NOTEBOOK_DIR] [OUT_DIR] [--document GLOSSARY.md]``
(defaults ``notebooks`` and ``build/html``).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import inspect
import json
import os
import pkgutil
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tools.edition import (
    _markdown_lines,
    markdown_section,
    notebook_paths,
    notebook_title,
    read_notebook,
)
from tools.links import is_local, markdown_links, rewrite_markdown_links, split_fragment

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TITLE = "Correlation in Deep Learning"
PACKAGE = "corrlib"
API_DIR = "api"
MATHJAX_DIR = "mathjax"  # under _static/ in the site
# Jupyter Book adds every script in the book's _static/ to every page: MathJax's modules
# come from a static folder of their own instead (copied into the site's _static/ too).
MATHJAX_STATIC = "_vendor"
MATHJAX_SCRIPT = "tex-svg-full.js"  # every TeX extension in one file: no loading on demand
INSTALL_HINT = "install the site extra: pip install -c requirements/constraints.txt -e '.[site]'"
OBJECTIVES = "Learning objectives"
LEDGER = re.compile(r"\bledger\b", re.IGNORECASE)
LEDGER_TEXT = "The ledger of the article's claims"  # the landing page's link to it
# Jupyter Book's extensions less sphinx-thebe (it would put the address of a
# script on a CDN into every page), plus autodoc for the API reference.
EXTENSIONS = [
    "sphinx_togglebutton",
    "sphinx_copybutton",
    "myst_nb",
    "jupyter_book",
    "sphinx_comments",  # inert with comments off; Jupyter Book passes its settings
    "sphinx_external_toc",
    "sphinx_design",
    "sphinx_book_theme",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "tools.site_links",
]
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


@dataclass
class Site:
    """What a build wrote.

    Attributes
    ----------
    out_dir : Path
        The site (open ``index.html``).
    chapters : list of str
        The chapters' page paths relative to ``out_dir``, in order (``notebooks/00_x.html``).
    api_modules : list of str
        The modules that have an API page (``api/<module>.html``), in order.
    ledger : str or None
        The landing page's link to the ledger of the article's claims
        (``notebooks/05_x.html#ledger-...``), or None when no chapter has one.
    warnings : list of str
        Sphinx's warnings (broken links, unknown references, ...).
    seconds : float
        The build's wall-clock time.
    """

    out_dir: Path
    chapters: list[str] = field(default_factory=list)
    api_modules: list[str] = field(default_factory=list)
    ledger: str | None = None
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0


# --- sources ---------------------------------------------------------------------------------


def public_modules(package: str = PACKAGE) -> list[str]:
    """The importable public modules of ``package`` (itself first), sorted by name.

    Modules are found with :func:`pkgutil.walk_packages`, so new and split modules appear
    without a list to keep; a module with a name part starting with ``_`` is private.
    """
    pkg = importlib.import_module(package)
    names = [package]
    for info in pkgutil.walk_packages(pkg.__path__, prefix=f"{package}."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return sorted(names)


def _heading_slug(text: str) -> str:
    """The anchor MyST gives a heading (``myst_heading_anchors``)."""
    from myst_parser.mdit_to_docutils.base import default_slugify

    return default_slugify(text)


def find_ledger(paths: Sequence[Path]) -> tuple[Path, str] | None:
    """The first notebook with a Markdown heading that contains "Ledger", and its anchor."""
    for path in paths:
        for line in _markdown_lines(read_notebook(path)):
            match = _HEADING.match(line)
            if match and LEDGER.search(match.group(2)):
                return path, _heading_slug(match.group(2))
    return None


def _relative_link(target: str, base: Path, new_base: Path, root: Path) -> str:
    """``target`` written in a file of ``base``, rewritten for a file of ``new_base``."""
    if not is_local(target):
        return target
    path, rest = split_fragment(target)
    resolved = (base / path).resolve()
    if not resolved.is_relative_to(root):
        return target
    return Path(os.path.relpath(resolved, new_base)).as_posix() + rest


def landing_page(
    title: str,
    notebooks: Sequence[Path],
    root: Path,
    documents: Sequence[Path],
    ledger: tuple[Path, str] | None,
) -> str:
    """The landing page (MyST Markdown): each chapter with its learning objectives.

    Parameters
    ----------
    title : str
        The course's title.
    notebooks : sequence of Path
        The chapters, in order.
    root : Path
        The site's source root (the landing page's folder).
    documents : sequence of Path
        Further pages (the glossary), linked under "Also on this site".
    ledger : (Path, str) or None
        The notebook with the ledger of the article's claims and the heading's anchor.
    """
    lines = [
        f"# {title}",
        "",
        "One page per chapter notebook, rendered from its stored outputs; the download link at "
        "the top of each chapter gives the notebook itself. The sidebar lists the chapters in "
        "order, the search box searches every page, and names from `corrlib` link to the "
        "[API reference](api/index.md).",
        "",
        "## Chapters",
        "",
    ]
    for path in notebooks:
        nb = read_notebook(path)
        href = Path(os.path.relpath(path, root)).as_posix()
        lines += [f"### [{notebook_title(nb, default=path.stem)}]({href})", ""]
        objectives = markdown_section(nb, OBJECTIVES)
        if objectives:
            objectives = rewrite_markdown_links(
                objectives, lambda t, p=path: _relative_link(t, p.parent, root, root)
            )
            lines += [objectives, ""]
    lines += ["## Also on this site", ""]
    for doc in documents:
        text = doc.read_text(encoding="utf-8")
        name = next((m.group(2) for m in map(_HEADING.match, text.splitlines()) if m), doc.stem)
        lines.append(f"- [{name}]({Path(os.path.relpath(doc, root)).as_posix()})")
    if ledger is not None:
        path, slug = ledger
        href = Path(os.path.relpath(path, root)).as_posix()
        lines.append(f"- [{LEDGER_TEXT}]({href}#{slug}), in {path.stem}")
    lines.append("- [API reference](api/index.md): the corrlib library, one page per module")
    return "\n".join(lines) + "\n"


def _directive(obj: object) -> str:
    if inspect.isclass(obj):
        return "autoclass"
    if callable(obj):
        return "autofunction"
    return "autodata"


def api_page(module_name: str, modules: Sequence[str]) -> str:
    """The API page of one module (MyST Markdown with autodoc directives).

    The module's docstring and the members it defines come from ``automodule``. A package's
    names defined elsewhere (``corrlib.pearson`` is ``corrlib.correlation.pearson``) are listed
    with a link to the page that documents them; names from private modules are documented
    here, under the package's name.
    """
    module = importlib.import_module(module_name)
    lines = [
        f"# `{module_name}`",
        "",
        "```{eval-rst}",  # autodoc writes reStructuredText
        f".. automodule:: {module_name}",
        "   :members:",
        "   :ignore-module-all:",
        "```",
        "",
    ]
    exported = [n for n in getattr(module, "__all__", []) if not n.startswith("_")]
    listed, here = [], []
    for name in exported:
        obj = getattr(module, name)
        if inspect.ismodule(obj):
            if obj.__name__ in modules:
                listed.append(f"| `{name}` | {{doc}}`{obj.__name__} <{obj.__name__}>` |")
            continue
        home = getattr(obj, "__module__", None)
        if home == module_name:
            continue  # documented by automodule above
        if home in modules:
            target = f"{home}.{obj.__qualname__}"
            listed.append(f"| `{name}` | {{py:obj}}`{target}` |")
        elif home and home.startswith(f"{PACKAGE}."):
            here.append(f"```{{eval-rst}}\n.. {_directive(obj)}:: {module_name}.{name}\n```\n")
    if listed:
        lines += [
            f"## Names in `{module_name}`",
            "",
            f"Available as `{module_name}.<name>`, documented where they are defined:",
            "",
            "| name | defined in |",
            "|---|---|",
            *listed,
            "",
        ]
    if here:
        lines += [f"## Further names in `{module_name}`", "", *here]
    return "\n".join(lines)


def api_index(modules: Sequence[str]) -> str:
    """The API reference's first page: every module with the first line of its docstring."""
    lines = [
        "# API reference",
        "",
        "The `corrlib` library, one page per module, from its docstrings. In the chapters, the "
        "first use of each corrlib name links here.",
        "",
        "| module | what it holds |",
        "|---|---|",
    ]
    for name in modules:
        doc = inspect.getdoc(importlib.import_module(name)) or ""
        summary = doc.strip().splitlines()[0] if doc.strip() else ""
        summary = summary.replace("|", r"\|")
        lines.append(f"| {{doc}}`{name} <{name}>` | {summary} |")
    return "\n".join(lines) + "\n"


def table_of_contents(chapters: Sequence[str], documents: Sequence[str], api: Sequence[str]):
    """``_toc.yml`` (as a dict, JSON is YAML): the chapters, the documents, the API pages."""
    return {
        "format": "jb-book",
        "root": "index",
        "parts": [
            {"caption": "Chapters", "chapters": [{"file": c} for c in chapters]},
            {
                "caption": "Reference",
                "chapters": [
                    *({"file": d} for d in documents),
                    {
                        "file": f"{API_DIR}/index",
                        "sections": [{"file": f"{API_DIR}/{m}"} for m in api],
                    },
                ],
            },
        ],
    }


def book_config(title: str, chapters: Sequence[str]) -> dict:
    """``_config.yml`` (as a dict): no execution, local MathJax, no external services."""
    return {
        "title": title,
        "author": "the course authors",
        "copyright": "",
        "only_build_toc_files": True,
        "execute": {"execute_notebooks": "off"},
        "parse": {
            "myst_enable_extensions": ["dollarmath", "amsmath", "colon_fence", "deflist"],
        },
        "html": {
            "use_repository_button": False,
            "use_issues_button": False,
            "use_edit_page_button": False,
            "use_multitoc_numbering": False,
            "extra_footer": "",
            "home_page_in_navbar": True,
        },
        "launch_buttons": {"notebook_interface": "", "binderhub_url": "", "thebe": False},
        "sphinx": {
            "config": {
                "extensions": EXTENSIONS,
                "mathjax_path": f"{MATHJAX_DIR}/{MATHJAX_SCRIPT}",
                "html_static_path": [MATHJAX_STATIC],
                "nb_ipywidgets_js": {},
                "myst_heading_anchors": 6,
                "autodoc_member_order": "bysource",
                "autodoc_typehints": "description",
                "napoleon_google_docstring": False,
                "napoleon_use_ivar": True,  # "Attributes" as fields, not duplicate entries
                "html_show_sourcelink": False,
                "html_theme_options": {
                    "search_bar_text": "Search the course…",
                    "use_download_button": True,
                    "use_fullscreen_button": False,
                    "show_navbar_depth": 1,
                },
                "course_chapters": list(chapters),
                "suppress_warnings": ["myst.header"],
            },
        },
    }


def mathjax_dir() -> Path:
    """The MathJax 3 build (``es5/``) that the ``django-static-mathjax`` package installs."""
    spec = importlib.util.find_spec("mathjax")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(f"MathJax is missing: {INSTALL_HINT}")
    found = Path(spec.origin).parent / "static" / "mathjax" / "es5"
    if not (found / MATHJAX_SCRIPT).is_file():
        raise FileNotFoundError(f"no {MATHJAX_SCRIPT} in {found}")
    return found


def vendor_mathjax(static: Path) -> Path:
    """Copy MathJax's one-file TeX-to-SVG build and the modules it can load into ``static``.

    ``tex-svg-full.js`` holds TeX input with every extension and SVG output (no web fonts).
    What MathJax's context menu can switch on later (the other renderer with its fonts, the
    accessibility and speech modules) is copied too, so that it is never fetched elsewhere.
    """
    src = mathjax_dir()
    dest = static / MATHJAX_DIR
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src / MATHJAX_SCRIPT, dest / MATHJAX_SCRIPT)
    for sub in ("a11y", "adaptors", "input", "output", "sre", "ui"):
        if (src / sub).is_dir():
            shutil.copytree(src / sub, dest / sub, dirs_exist_ok=True)
    license_file = src.parent / "LICENSE"
    if license_file.is_file():
        shutil.copy2(license_file, dest / "LICENSE")
    return dest


def _linked_files(text: str, base: Path, root: Path) -> list[Path]:
    """Existing files under ``root`` that Markdown ``text`` (written in ``base``) links to."""
    found = []
    for target in markdown_links(text):
        if is_local(target):
            path = (base / split_fragment(target)[0]).resolve()
            if path.is_file() and path.is_relative_to(root):
                found.append(path)
    return found


def stage(
    notebooks: Sequence[Path], documents: Sequence[Path], root: Path, src: Path
) -> list[Path]:
    """Copy the notebooks, the documents and every file they link to into ``src``.

    Files keep their place relative to ``root`` (the repository), so that every relative
    link between them still works. Returns the staged documents (links to further Markdown
    files add pages).
    """
    queue = [p.resolve() for p in (*notebooks, *documents)]
    seen: set[Path] = set()
    pages = []
    while queue:
        path = queue.pop(0)
        if path in seen:
            continue
        seen.add(path)
        if not path.is_relative_to(root):
            raise ValueError(f"{path} is outside {root}: the site only holds files under it")
        dest = src / path.relative_to(root)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, dest)
        if path.suffix == ".ipynb":
            nb = read_notebook(path)
            text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
        elif path.suffix == ".md":
            text = path.read_text(encoding="utf-8")
            if path not in {p.resolve() for p in notebooks}:
                pages.append(dest)
        else:
            continue
        queue.extend(_linked_files(text, path.parent, root))
    return pages


# --- build -----------------------------------------------------------------------------------


def _docname(path: Path, src: Path) -> str:
    return path.relative_to(src).with_suffix("").as_posix()


def prepare(
    src_dir: Path,
    work_dir: Path,
    *,
    documents: Sequence[Path] = (),
    title: str = DEFAULT_TITLE,
    root: Path = ROOT,
) -> tuple[Path, Site]:
    """Write the book's sources into ``work_dir / "src"``; return that folder and a Site."""
    root = root.resolve()
    paths = notebook_paths(src_dir)
    src = work_dir / "src"
    if src.exists():
        shutil.rmtree(src)
    src.mkdir(parents=True)
    doc_pages = stage(paths, documents, root, src)
    notebooks = [src / p.resolve().relative_to(root) for p in paths]
    ledger = find_ledger(notebooks)
    (src / "index.md").write_text(
        landing_page(title, notebooks, src, doc_pages, ledger), encoding="utf-8"
    )
    modules = public_modules()
    (src / API_DIR).mkdir()
    (src / API_DIR / "index.md").write_text(api_index(modules), encoding="utf-8")
    for name in modules:
        (src / API_DIR / f"{name}.md").write_text(api_page(name, modules), encoding="utf-8")
    chapters = [_docname(p, src) for p in notebooks]
    docs = [_docname(p, src) for p in doc_pages]
    (src / "_toc.yml").write_text(
        json.dumps(table_of_contents(chapters, docs, modules), indent=1), encoding="utf-8"
    )
    (src / "_config.yml").write_text(
        json.dumps(book_config(title, chapters), indent=1), encoding="utf-8"
    )
    vendor_mathjax(src / MATHJAX_STATIC)
    site = Site(
        out_dir=Path(),
        chapters=[f"{c}.html" for c in chapters],
        api_modules=modules,
    )
    return src, site


def build_html(
    src_dir: Path | str,
    out_dir: Path | str,
    *,
    documents: Sequence[Path | str] = (),
    title: str = DEFAULT_TITLE,
    work_dir: Path | str | None = None,
    root: Path | str = ROOT,
) -> Site:
    """Build the course website of the notebooks in ``src_dir`` into ``out_dir``.

    Parameters
    ----------
    src_dir : Path or str
        The folder of the chapter notebooks (rendered with their stored outputs, never run).
    out_dir : Path or str
        The site's folder; it is replaced.
    documents : sequence of Path, optional
        Markdown documents to add as pages (the glossary).
    title : str, optional
        The course's title.
    work_dir : Path or str, optional
        Where the staged sources and Sphinx's caches go; default ``out_dir``'s sibling
        ``site``.
    root : Path or str, optional
        The folder that holds the notebooks, the documents and what they link to (the
        repository).

    Returns
    -------
    Site
        The pages written, the modules documented, the ledger's link and Sphinx's warnings.
    """
    start = time.perf_counter()
    if importlib.util.find_spec("jupyter_book") is None:
        raise ModuleNotFoundError(f"Jupyter Book is missing: {INSTALL_HINT}")
    out_dir = Path(out_dir).resolve()
    work_dir = Path(work_dir).resolve() if work_dir else out_dir.parent / "site"
    if Path(src_dir).resolve().is_relative_to(out_dir):
        raise ValueError(f"output folder {out_dir} holds the notebooks of {src_dir}")
    documents = [Path(d) for d in documents]
    for doc in documents:
        if not doc.is_file():
            raise FileNotFoundError(f"document {doc} does not exist")
    src, site = prepare(Path(src_dir), work_dir, documents=documents, title=title, root=Path(root))
    build = work_dir / "_build"
    if build.exists():
        shutil.rmtree(build)
    log = work_dir / "warnings.log"
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    env.setdefault("MPLBACKEND", "Agg")
    command = [
        sys.executable,
        "-c",
        "import sys; from jupyter_book.cli.main import main; sys.exit(main())",
        "build",
        str(src),
        "--path-output",
        str(work_dir),
        "--builder",
        "html",
    ]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    log.write_text(result.stdout + result.stderr, encoding="utf-8")
    html = build / "html"
    if result.returncode != 0 or not (html / "index.html").is_file():
        raise RuntimeError(f"jupyter-book build failed ({result.returncode}); see {log}")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(html, out_dir)
    site.out_dir = out_dir
    site.ledger = _ledger_link(out_dir / "index.html")
    site.warnings = [
        line for line in (result.stdout + result.stderr).splitlines() if "WARNING" in line
    ]
    site.seconds = time.perf_counter() - start
    return site


def _ledger_link(index: Path) -> str | None:
    """The href of the landing page's link to the ledger (MyST resolves the anchor)."""
    text = re.escape(LEDGER_TEXT.split("'")[0])
    found = re.search(rf'<a [^>]*href="([^"]+)"[^>]*>(?:<[^>]+>)*{text}', index.read_text("utf-8"))
    return found.group(1) if found else None


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (1 on a warning with ``--strict``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src_dir", nargs="?", default="notebooks", type=Path)
    parser.add_argument("out_dir", nargs="?", default="build/html", type=Path)
    parser.add_argument("--document", action="append", default=[], type=Path)
    parser.add_argument("--title", default=DEFAULT_TITLE)
    parser.add_argument("--strict", action="store_true", help="fail on a Sphinx warning")
    args = parser.parse_args(argv)
    site = build_html(args.src_dir, args.out_dir, documents=args.document, title=args.title)
    print(
        f"Course website: {len(site.chapters)} chapters, {len(site.api_modules)} API pages, "
        f"ledger {'linked' if site.ledger else 'not found'}, in {site.seconds:.0f} s: "
        f"open {site.out_dir / 'index.html'}"
    )
    for line in site.warnings:
        print(line, file=sys.stderr)
    return 1 if args.strict and site.warnings else 0


if __name__ == "__main__":
    sys.exit(main())
