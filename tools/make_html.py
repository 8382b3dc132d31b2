"""Write the HTML edition: an index page and one page per notebook, from the stored outputs.

Nothing is executed: each notebook is rendered as it is stored, with nbconvert's
``HTMLExporter`` and its ``lab`` template (the JupyterLab look). The index lists the chapters
with their learning objectives; every chapter page links to the index and to the previous and
next chapter (in the order of the file names). Local links are rewritten to the pages
(``01_concepts.ipynb`` -> ``01_concepts.html``); linked Markdown documents (the glossary) are
rendered as pages too, and other linked files are copied into ``files/``.

The build needs no network. The pages load MathJax and require.js from a CDN when viewed;
offline they still show everything, with formulas as TeX source.

Usage: ``python -m tools.make_html [NOTEBOOK_DIR] [OUT_DIR] [--document GLOSSARY.md]``
(defaults ``notebooks`` and ``build/html``).
"""

from __future__ import annotations

import html
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from nbconvert import HTMLExporter
from nbconvert.filters.markdown_mistune import markdown2html_mistune

from tools.edition import (
    Edition,
    command_line,
    fresh_output_dir,
    markdown_section,
    markdown_title,
    notebook_paths,
    notebook_title,
    read_notebook,
    report,
)
from tools.links import rewrite_html_links

INDEX = "index.html"
DEFAULT_TITLE = "Correlation in Deep Learning"
_STYLE = """
body.course-page { font-family: system-ui, sans-serif; max-width: 52rem; margin: 2rem auto;
  padding: 0 1rem; line-height: 1.5; color: #222; }
.course-page table { border-collapse: collapse; }
.course-page th, .course-page td { border: 1px solid #ccc; padding: 0.25rem 0.5rem;
  vertical-align: top; }
nav.course-nav { font-family: system-ui, sans-serif; display: flex; gap: 1.5rem;
  justify-content: space-between; padding: 0.5rem 1rem; margin: 0.5rem 0;
  border-top: 1px solid #ddd; border-bottom: 1px solid #ddd; }
nav.course-nav a { color: #1565c0; text-decoration: none; }
"""


def page_name(path: Path) -> str:
    """The HTML page of a source file: ``01_concepts.ipynb`` -> ``01_concepts.html``."""
    return f"{path.stem}.html"


def document_page_name(path: Path) -> str:
    """The HTML page of a linked Markdown document: ``GLOSSARY.md`` -> ``glossary.html``."""
    return f"{path.stem.lower()}.html"


def nav_bar(prev: tuple[str, str] | None, next_: tuple[str, str] | None) -> str:
    """The navigation bar of a chapter page.

    Parameters
    ----------
    prev, next_ : (href, title) or None
        The previous and the next chapter; None at either end of the course.

    Returns
    -------
    str
        A ``<nav class="course-nav">`` element with links to ``prev``, the index and ``next_``.
    """
    left = (
        f'<a rel="prev" href="{html.escape(prev[0])}">&larr; {html.escape(prev[1])}</a>'
        if prev
        else "<span></span>"
    )
    right = (
        f'<a rel="next" href="{html.escape(next_[0])}">{html.escape(next_[1])} &rarr;</a>'
        if next_
        else "<span></span>"
    )
    return f'<nav class="course-nav">{left}<a href="{INDEX}">Index</a>{right}</nav>'


def _with_nav(page: str, nav: str) -> str:
    """Put ``nav`` at the top and at the bottom of a page exported by nbconvert."""
    style = f"<style>{_STYLE}</style>"
    page = page.replace("</head>", style + "</head>", 1)
    opening = re.search(r"<main[^>]*>", page) or re.search(r"<body[^>]*>", page)
    if opening is None:
        raise ValueError("the exported page has no <body> element")
    page = page[: opening.end()] + nav + page[opening.end() :]
    closing = "</main>" if "</main>" in page else "</body>"
    cut = page.rindex(closing)
    return page[:cut] + nav + page[cut:]


def _simple_page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n"
        f'<body class="course-page">\n<main>\n{body}\n</main>\n</body>\n</html>\n'
    )


def index_page(title: str, chapters: Sequence[tuple[str, str, str]], documents: str) -> str:
    """The index page.

    Parameters
    ----------
    title : str
        The course's title.
    chapters : sequence of (href, chapter title, objectives HTML)
        One entry per chapter, in order.
    documents : str
        HTML with links to further documents (the glossary); may be empty.

    Returns
    -------
    str
        A complete HTML document.
    """
    items = "\n".join(
        f'<li><h2><a href="{html.escape(href)}">{html.escape(name)}</a></h2>\n'
        f'<div class="objectives">{objectives}</div></li>'
        for href, name, objectives in chapters
    )
    body = (
        f"<h1>{html.escape(title)}</h1>\n"
        "<p>One page per notebook, rendered from its stored outputs. Under each chapter: its "
        "learning objectives.</p>\n"
        f'{documents}\n<ol class="chapters">\n{items}\n</ol>'
    )
    return _simple_page(title, body)


def build_html(
    src_dir: Path | str,
    out_dir: Path | str,
    *,
    documents: Sequence[Path | str] = (),
    title: str = DEFAULT_TITLE,
) -> Edition:
    """Write the HTML edition of every notebook in ``src_dir`` into ``out_dir``.

    Parameters
    ----------
    src_dir : Path or str
        The folder of the notebooks (rendered with their stored outputs, never executed).
    out_dir : Path or str
        The output folder; it is emptied first.
    documents : sequence of Path, optional
        Markdown documents to render and link from the index (e.g. the glossary).
    title : str, optional
        The course's title on the index page.

    Returns
    -------
    Edition
        The written pages (``pages``: source path -> page name) and the links to missing files
        (``broken``: (source name, link) pairs).
    """
    src_dir, out_dir = Path(src_dir), Path(out_dir)
    paths = notebook_paths(src_dir)
    fresh_output_dir(src_dir, out_dir)
    edition = Edition(out_dir, document_name=document_page_name)
    edition.reserve(INDEX)
    for path in paths:
        edition.add_page(path, page_name(path))

    notebooks = [read_notebook(p) for p in paths]
    titles = [notebook_title(nb, default=p.stem) for nb, p in zip(notebooks, paths, strict=True)]
    exporter = HTMLExporter(template_name="lab")
    for k, (path, nb) in enumerate(zip(paths, notebooks, strict=True)):
        page, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": titles[k]}})
        page = rewrite_html_links(page, lambda t, p=path: edition.link(t, p.parent, p.name))
        prev = (page_name(paths[k - 1]), titles[k - 1]) if k > 0 else None
        next_ = (page_name(paths[k + 1]), titles[k + 1]) if k + 1 < len(paths) else None
        (out_dir / page_name(path)).write_text(_with_nav(page, nav_bar(prev, next_)), "utf-8")

    chapters = []
    for path, nb, name in zip(paths, notebooks, titles, strict=True):
        objectives = markdown2html_mistune(markdown_section(nb, "Learning objectives"))
        objectives = rewrite_html_links(objectives, lambda t: edition.link(t, src_dir, INDEX))
        chapters.append((page_name(path), name, objectives))
    links = []
    for document in documents:
        href = edition.place(document)
        if href is None:
            raise FileNotFoundError(f"document {document} does not exist")
        links.append(
            f'<a href="{html.escape(href)}">{html.escape(Path(document).stem.title())}</a>'
        )
    extra = f"<p>See also: {' · '.join(links)}</p>" if links else ""
    (out_dir / INDEX).write_text(index_page(title, chapters, extra), "utf-8")

    while (doc := edition.next_document()) is not None:
        text = doc.read_text(encoding="utf-8")
        body = markdown2html_mistune(text)
        body = rewrite_html_links(body, lambda t, d=doc: edition.link(t, d.parent, d.name))
        nav = f'<nav class="course-nav"><a href="{INDEX}">Index</a></nav>'
        name = markdown_title(text.splitlines(), default=doc.stem)
        page = _simple_page(name, nav + body + nav)
        (out_dir / edition.pages[doc.resolve()]).write_text(page, "utf-8")
    return edition


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status.

    A link to a missing file is reported on stderr; with ``--strict`` it also makes the
    exit status 1.
    """
    parser = command_line(__doc__.splitlines()[0], "build/html")
    parser.add_argument(
        "--document",
        action="append",
        default=[],
        type=Path,
        help="a Markdown document to render and link from the index",
    )
    parser.add_argument("--title", default=DEFAULT_TITLE)
    args = parser.parse_args(argv)
    edition = build_html(args.src_dir, args.out_dir, documents=args.document, title=args.title)
    summary = f"HTML edition: {len(edition.pages) + 1} pages and files in {args.out_dir}"
    return report(edition, summary, args.strict)


if __name__ == "__main__":
    sys.exit(main())
