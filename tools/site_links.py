"""Sphinx extension of the course website: API links and a download link in every chapter.

In each chapter page (the documents named by the ``course_chapters`` setting), the first
occurrence of every corrlib name is linked to its API entry: in the prose (inline code such as
``corrlib.pearson`` or ``corrlib.ledoit_wolf(x)``) and in the code cells (``corrlib.pearson(``,
``import corrlib.plot``, the names of ``from corrlib.hooks import ActivationRecorder``),
whichever comes first. A name resolves to the object it denotes (``corrlib.pearson`` is
``corrlib.correlation.pearson``) and links to the entry autodoc wrote for that object; names
without an entry stay as they are. The notebooks are not touched: the links are added to the
rendered HTML of each page, while it is written.

Each chapter page also starts with a link that downloads its notebook (the stored copy in
``_sources/``).
"""

from __future__ import annotations

import html
import importlib
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass

from sphinx.application import Sphinx

PACKAGE = "corrlib"
LINK_CLASS = "reference internal course-api-link"

_INLINE = r'<code class="docutils literal notranslate">(?:(?!</code>).)*</code>'
_CHAIN = (
    rf'<span class="n">{PACKAGE}</span>'
    r'(?:<span class="o">\.</span><span class="n\w*">\w+</span>)+'
)
_SPACE = r'(?:<span class="w">\s+</span>|\s+)'
_IMPORT = (
    rf'<span class="kn">(?P<kw>from|import)</span>{_SPACE}'
    rf'(?P<nn><span class="nn">(?P<module>{PACKAGE}(?:\.\w+)*)</span>)'
)
_CANDIDATE = re.compile(
    f"(?P<inline>{_INLINE})|(?P<chain>{_CHAIN})|(?P<import>{_IMPORT})", re.DOTALL
)
_ANCHOR = re.compile(r"<a\b[^>]*>.*?</a>", re.DOTALL)
_TAG = re.compile(r"<[^>]+>")
_TOKEN = re.compile(r'<span class="(?P<cls>\w+)">(?P<text>[^<]*)</span>')
_DOTTED = re.compile(rf"{PACKAGE}(?:\.\w+)+")


@dataclass(frozen=True)
class Entry:
    """An API entry: the page that documents an object and the anchor on that page."""

    docname: str
    anchor: str
    fullname: str


def resolve(dotted: str) -> object:
    """The object a dotted name denotes (``corrlib.plot.corr_heatmap``).

    Raises
    ------
    ImportError, AttributeError
        When no such module or attribute exists.
    """
    parts = dotted.split(".")
    obj = importlib.import_module(parts[0])
    for k, part in enumerate(parts[1:], start=1):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            obj = importlib.import_module(".".join(parts[: k + 1]))
    return obj


def _canonical(obj: object) -> str | None:
    if inspect.ismodule(obj):
        return obj.__name__
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    return f"{module}.{qualname}" if module and qualname else None


class ApiIndex:
    """Which API entry documents which object.

    Parameters
    ----------
    objects : dict
        The Python domain's objects: full name -> (docname, node id, object type, ...).
    """

    _BY_IDENTITY = {"module", "class", "exception", "function", "method", "property"}

    def __init__(self, objects: dict) -> None:
        self.by_name: dict[str, Entry] = {}
        self.by_object: dict[int, Entry] = {}
        self._keep: list[object] = []  # keeps the ids of by_object valid
        for fullname, info in objects.items():
            entry = Entry(info[0], info[1], fullname)
            self.by_name[fullname] = entry
            if info[3]:  # an alias (autodoc's canonical name of an object documented elsewhere)
                continue
            if info[2] not in self._BY_IDENTITY:
                continue
            try:
                obj = resolve(fullname)
            except (ImportError, AttributeError):
                continue
            known = self.by_object.get(id(obj))
            if known is None or _canonical(obj) == fullname:
                self.by_object[id(obj)] = entry
                self._keep.append(obj)

    def lookup(self, dotted: str) -> Entry | None:
        """The entry of the longest prefix of ``dotted`` that has one (None if none has)."""
        parts = dotted.split(".")
        for k in range(len(parts), 1, -1):
            name = ".".join(parts[:k])
            try:
                obj = resolve(name)
            except (ImportError, AttributeError):
                obj = None
            if obj is not None and id(obj) in self.by_object:
                return self.by_object[id(obj)]
            if name in self.by_name:
                return self.by_name[name]
        return None


def _inside(spans: list[tuple[int, int]], pos: int) -> bool:
    return any(start <= pos < end for start, end in spans)


def link_first_uses(
    body: str, lookup: Callable[[str], Entry | None], href: Callable[[Entry], str]
) -> tuple[str, list[str]]:
    """Link the first occurrence of each corrlib name in a page's HTML body.

    Parameters
    ----------
    body : str
        The page's body HTML as Sphinx renders it.
    lookup : callable
        Dotted name -> its API entry, or None.
    href : callable
        API entry -> the link to it from this page.

    Returns
    -------
    (str, list of str)
        The body with the links, and the full names linked, in order.
    """
    anchors = [m.span() for m in _ANCHOR.finditer(body)]
    linked: list[str] = []
    out: list[str] = []
    last = 0

    def link(fragment: str, entry: Entry) -> str:
        linked.append(entry.fullname)
        return (
            f'<a class="{LINK_CLASS}" href="{html.escape(href(entry))}" '
            f'title="API: {html.escape(entry.fullname)}">{fragment}</a>'
        )

    def fresh(dotted: str) -> Entry | None:
        entry = lookup(dotted)
        return entry if entry is not None and entry.fullname not in linked else None

    for match in _CANDIDATE.finditer(body):
        if _inside(anchors, match.start()):
            continue
        out.append(body[last : match.start()])
        last = match.end()
        text = match.group(0)
        if match.group("inline"):
            found = _DOTTED.match(html.unescape(_TAG.sub("", text)))
            entry = fresh(found.group(0)) if found else None
            out.append(link(text, entry) if entry else text)
        elif match.group("chain"):
            out.append(_link_chain(text, fresh, link))
        else:
            module = match.group("module")
            head = text[: match.start("nn") - match.start()]
            entry = fresh(module)
            out.append(head + (link(match.group("nn"), entry) if entry else match.group("nn")))
            if match.group("kw") == "from":
                tail, used = _link_imported(body, last, module, fresh, link)
                out.append(tail)
                last += used
    out.append(body[last:])
    return "".join(out), linked


def _link_chain(text: str, fresh, link) -> str:
    """Link ``corrlib.a.b`` (highlighted code) up to the longest part that has an entry."""
    tokens = list(_TOKEN.finditer(text))
    names = [t.group("text") for t in tokens if t.group("cls") != "o"]
    for k in range(len(names), 1, -1):
        entry = fresh(".".join(names[:k]))
        if entry is not None:
            cut = tokens[2 * k - 2].end()
            return link(text[:cut], entry) + text[cut:]
    return text


def _link_imported(body: str, start: int, module: str, fresh, link) -> tuple[str, int]:
    """Link the names of ``from MODULE import a, b as c`` in highlighted code after ``start``.

    Returns the rewritten statement tail and how many characters of ``body`` it replaces.
    """
    end = body.find("\n", start)
    end = len(body) if end < 0 else end
    if '<span class="p">(</span>' in body[start:end]:
        close = body.find('<span class="p">)</span>', start)
        end = close if close >= 0 else end
    tail = body[start:end]
    out, last, after_as = [], 0, False
    for token in _TOKEN.finditer(tail):
        if token.group("cls") == "k" and token.group("text") == "as":
            after_as = True
            continue
        if token.group("cls") != "n":
            continue
        if after_as:
            after_as = False
            continue
        entry = fresh(f"{module}.{token.group('text')}")
        if entry is not None:
            out.append(tail[last : token.start()])
            out.append(link(token.group(0), entry))
            last = token.end()
    out.append(tail[last:])
    return "".join(out), len(tail)


def _download_link(pagename: str, context: dict) -> str:
    source = f"_sources/{pagename}.ipynb"
    href = context["pathto"](source, 1)
    name = pagename.rsplit("/", 1)[-1] + ".ipynb"
    return (
        '<p class="course-download"><a class="reference download" '
        f'href="{html.escape(href)}" download="{html.escape(name)}">'
        f"Download this notebook ({html.escape(name)})</a></p>\n"
    )


def _on_page(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    if pagename not in app.config.course_chapters or "body" not in context:
        return
    index = getattr(app, "_course_api_index", None)
    if index is None:  # once per build, after every page has been read
        index = ApiIndex(app.env.get_domain("py").objects)
        app._course_api_index = index

    def href(entry: Entry) -> str:
        return f"{app.builder.get_relative_uri(pagename, entry.docname)}#{entry.anchor}"

    body, _ = link_first_uses(context["body"], index.lookup, href)
    context["body"] = _download_link(pagename, context) + body


def setup(app: Sphinx) -> dict:
    app.add_config_value("course_chapters", [], "html")
    app.connect("html-page-context", _on_page)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
