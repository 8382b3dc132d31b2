"""The HTML edition: every page exists, every local link resolves, chapters link in order."""

from __future__ import annotations

import html
import re
import socket
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `pytest` (not `python -m pytest`) does not add the root
    sys.path.insert(0, str(ROOT))

from tools.edition import markdown_section, notebook_title  # noqa: E402
from tools.links import html_links, is_local, split_fragment  # noqa: E402
from tools.make_html import INDEX, build_html, main, page_name  # noqa: E402

NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
GLOSSARY = ROOT / "GLOSSARY.md"


def _no_network(*args, **kwargs):
    raise OSError("the HTML build must not use the network")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("html")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", _no_network)
        mp.setattr(socket, "create_connection", _no_network)
        result = build_html(NOTEBOOK_DIR, out, documents=[GLOSSARY])
    return out, result


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _local_links(page: Path) -> list[str]:
    return [t for t in html_links(_text(page)) if is_local(t)]


def _nav_link(page: str, rel: str) -> str | None:
    found = re.findall(rf'<a rel="{rel}" href="([^"]+)"', page)
    return found[0] if found else None


def test_every_page_exists(site) -> None:
    out, result = site
    expected = {page_name(p) for p in NOTEBOOKS} | {INDEX, "glossary.html"}
    assert {p.name for p in out.glob("*.html")} == expected
    assert result.broken == [], f"links to missing files: {result.broken}"


def test_every_local_link_resolves(site) -> None:
    out, _ = site
    for page in out.rglob("*.html"):
        for target in _local_links(page):
            resolved = (page.parent / split_fragment(target)[0]).resolve()
            assert resolved.is_file(), f"{page.name}: broken link {target}"
            assert resolved.is_relative_to(out.resolve()), f"{page.name}: {target} leaves"


def test_chapters_link_to_index_previous_and_next(site) -> None:
    out, _ = site
    names = [page_name(p) for p in NOTEBOOKS]
    for k, name in enumerate(names):
        page = _text(out / name)
        assert f'href="{INDEX}"' in page
        assert _nav_link(page, "prev") == (names[k - 1] if k > 0 else None)
        assert _nav_link(page, "next") == (names[k + 1] if k + 1 < len(names) else None)
        assert page.count('class="course-nav"') == 2  # top and bottom


def _plain(html_text: str) -> str:
    """Visible text of HTML without any whitespace (so markup cannot split a phrase)."""
    return "".join(html.unescape(re.sub(r"<[^>]+>", " ", html_text)).split())


def test_index_lists_every_chapter_with_its_objectives(site) -> None:
    out, _ = site
    index = _text(out / INDEX)
    plain = _plain(index)
    positions = []
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        objectives = markdown_section(nb, "Learning objectives")
        assert objectives, f"{path.name} has no 'Learning objectives' section"
        assert f'href="{page_name(path)}"' in index
        assert "".join(notebook_title(nb).split()) in plain
        for line in objectives.splitlines()[:3]:
            line = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", line)  # [text](link) -> text
            words = "".join(re.sub(r"[*`]|^\s*[-+]\s+", "", line).split())
            assert words in plain, f"{path.name}: objective {words!r} not on the index"
        positions.append(index.index(f'href="{page_name(path)}"'))
    assert positions == sorted(positions), "chapters must be listed in file-name order"
    assert 'href="glossary.html"' in index


def test_pages_show_the_stored_outputs(site) -> None:
    out, _ = site
    for path in NOTEBOOKS:
        page = _text(out / page_name(path))
        plain = html.unescape(page)
        outputs = [
            o
            for c in nbformat.read(path, as_version=4).cells
            if c.cell_type == "code"
            for o in c.get("outputs", [])
        ]
        for output in outputs:
            if output.get("output_type") == "stream" and output.get("text", "").strip():
                first = output["text"].strip().splitlines()[0].strip()
                assert first in plain, f"{path.name}: stored output {first!r} missing"
        pngs = sum("image/png" in o.get("data", {}) for o in outputs)
        assert page.count("data:image/png;base64,") >= pngs


def test_glossary_page_is_a_table(site) -> None:
    out, _ = site
    page = _text(out / "glossary.html")
    assert "<table>" in page and page.count("<tr>") > 30
    assert "相关" in page


# --- the builder on made-up notebooks -------------------------------------------------------


def test_build_html_never_executes_and_copies_linked_files(tmp_path) -> None:
    src = tmp_path / "nbs"
    src.mkdir()
    (src / "figure.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    cell = nbformat.v4.new_code_cell("raise SystemExit('executed!')", execution_count=1)
    cell.outputs = [nbformat.v4.new_output("stream", text="stored output 42\n")]
    md = nbformat.v4.new_markdown_cell(
        "# Only\n\n## Learning objectives\n\n- learn\n\n## Next\n\n"
        "![f](figure.png) [missing](nothing.ipynb) [web](https://example.org) [top](#Only)"
    )
    nbformat.write(nbformat.v4.new_notebook(cells=[md, cell]), src / "a.ipynb")
    out = tmp_path / "out"
    result = build_html(src, out)
    page = _text(out / "a.html")
    assert "stored output 42" in page and "executed!" in page  # source shown, not run
    assert result.broken == [("a.ipynb", "nothing.ipynb")]
    assert (out / "files" / "figure.png").is_file() and 'src="files/figure.png"' in page
    assert 'href="https://example.org"' in page and 'href="#Only"' in page
    assert _nav_link(page, "prev") is None and _nav_link(page, "next") is None
    assert "<li>learn</li>" in _text(out / INDEX)
    assert main([str(src), str(out)]) == 0
    assert main([str(src), str(out), "--strict"]) == 1
    with pytest.raises(FileNotFoundError, match="document"):
        build_html(src, out, documents=[tmp_path / "NOPE.md"])
