"""Find and rewrite the local links of Markdown text (raw HTML in it included).

A *local* link is a relative path to a file (``01_concepts.ipynb``, ``../GLOSSARY.md#top``);
URLs with a scheme (``https:``, ``data:``, ``mailto:``), absolute paths and in-page anchors
(``#summary``) are not local and are never rewritten.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import urlsplit

# [text](target "title") and ![alt](target): the target is the first run without spaces
_MD_INLINE = re.compile(r"(\]\(\s*<?)([^)\s>]+)")
# [label]: target   (reference definitions, one per line)
_MD_REFERENCE = re.compile(r"^(\s{0,3}\[[^\]]+\]:\s*<?)([^\s>]+)", re.MULTILINE)
# href="..." / src="..." in HTML (also raw HTML inside Markdown)
_HTML_ATTR = re.compile(r"""(\b(?:href|src)\s*=\s*)(["'])(.*?)\2""", re.IGNORECASE | re.DOTALL)


def is_local(target: str) -> bool:
    """Whether ``target`` is a relative link to a file.

    Parameters
    ----------
    target : str
        A link target as written in a page, e.g. ``"01_concepts.ipynb#Summary"``.

    Returns
    -------
    bool
        False for URLs with a scheme or host, absolute paths, empty targets and pure anchors.
    """
    if not target or target.startswith(("#", "/", "\\")):
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc and bool(parts.path)


def split_fragment(target: str) -> tuple[str, str]:
    """Split ``"path?query#frag"`` into ``("path", "?query#frag")``."""
    cut = min((i for i in (target.find("#"), target.find("?")) if i >= 0), default=len(target))
    return target[:cut], target[cut:]


def rewrite_markdown_links(text: str, rewrite: Callable[[str], str]) -> str:
    """Apply ``rewrite`` to every link target of a Markdown text (inline, reference, HTML).

    Parameters
    ----------
    text : str
        Markdown source.
    rewrite : callable
        Maps a link target to its replacement; it is called for every target, local or not.

    Returns
    -------
    str
        The text with the targets replaced; everything else is unchanged.
    """
    text = _MD_INLINE.sub(lambda m: m.group(1) + rewrite(m.group(2)), text)
    text = _MD_REFERENCE.sub(lambda m: m.group(1) + rewrite(m.group(2)), text)
    return rewrite_html_links(text, rewrite)


def rewrite_html_links(html: str, rewrite: Callable[[str], str]) -> str:
    """Apply ``rewrite`` to the value of every ``href`` and ``src`` attribute of an HTML text."""
    return _HTML_ATTR.sub(
        lambda m: m.group(1) + m.group(2) + rewrite(m.group(3)) + m.group(2), html
    )


def markdown_links(text: str) -> list[str]:
    """All link targets of a Markdown text (inline, reference and HTML links), in order."""
    found: list[str] = []

    def record(target: str) -> str:
        found.append(target)
        return target

    rewrite_markdown_links(text, record)
    return found
