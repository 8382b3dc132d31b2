"""The course website (`make html`): built from the committed book/, complete, and offline.

One build of book/ (Jupyter Book, about a minute) serves every test of the real site; a second,
tiny book (one made-up chapter with a claim-check cell) makes sure the claim-check toggle is
checked in a browser even while no chapter has such a cell. The chapters are read from
book/_toc.yml, never listed here. The browser tests open the pages in headless Chromium with no
network at all (every host name fails to resolve, every connection goes to a dead proxy): the
formulas are typeset by the site's own MathJax, the search finds chapter 01 for "Ledoit", a
collapsed claim check opens, and no request leaves the machine. They are skipped only where
Debian's `chromium` and `chromium-driver` are not installed, and leave screenshots in `build/`.
"""

from __future__ import annotations

import html
import json
import pkgutil
import posixpath
import re
import shutil
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import unquote, urlsplit

import nbformat
import pytest
import yaml

import corrlib
from tests._browser import chrome_options, chromium
from tools.make_html import MATHJAX, build, stage, toc_files

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
TOC = yaml.safe_load((BOOK / "_toc.yml").read_text(encoding="utf-8"))
# the chapters: the pages of the part captioned "Chapters", in order (notebooks/00_x, ...)
CHAPTERS = [
    c["file"] for part in TOC["parts"] if part["caption"] == "Chapters" for c in part["chapters"]
]
PAGES = toc_files(TOC)  # every page, in reading order
SCREENSHOT = ROOT / "build" / "site.png"
SEARCH_SCREENSHOT = ROOT / "build" / "site-search.png"
CLAIM_SCREENSHOT = ROOT / "build" / "site-claim-check.png"
CLAIM_TAG = "claim-check"
CODE_LINK = "sphinx-codeautolink-a"  # the class of sphinx-codeautolink's links
WAIT_S = 60.0
_ATTR = re.compile(r"""\b(href|src)\s*=\s*(["'])(.*?)\2""", re.IGNORECASE | re.DOTALL)
# What no network carries: the site's files, inline data, and the browser's own pages
# (chrome://, e.g. the new-tab page it opens first).
LOCAL_SCHEMES = {"file", "data", "blob", "about", "chrome", "devtools"}
DEAD_PROXY = "http://127.0.0.1:9"  # the discard port: nothing listens there


def _offline_build(book: Path, out: Path, repo: Path = ROOT) -> SimpleNamespace:
    with pytest.MonkeyPatch.context() as mp:
        for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
            mp.setenv(var, DEAD_PROXY)  # the build (a subprocess) cannot download anything
        for var in ("no_proxy", "NO_PROXY"):
            mp.delenv(var, raising=False)
        warnings = build(book, out, repo)
    return SimpleNamespace(out_dir=out, warnings=warnings)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return _offline_build(BOOK, tmp_path_factory.mktemp("site") / "html")


def _claim_notebook() -> nbformat.NotebookNode:
    new_code, new_md = nbformat.v4.new_code_cell, nbformat.v4.new_markdown_cell
    result = new_code("gap = 0.25\nprint(f'gap = {gap:.2f}')", execution_count=1)
    result.outputs = [nbformat.v4.new_output("stream", text="gap = 0.25\n")]
    check = new_code(
        "assert gap > 0, 'the claim: the gap is positive'",
        execution_count=2,
        metadata={"tags": [CLAIM_TAG], "jupyter": {"source_hidden": True}},
    )
    cells = [new_md("# A claim\n\nThe gap is positive."), result, check, new_md("## After")]
    metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python", "pygments_lexer": "ipython3"},
    }
    return nbformat.v4.new_notebook(cells=cells, metadata=metadata)


@pytest.fixture(scope="module")
def claim_book(tmp_path_factory):
    """A book with the course's configuration and one chapter that has a claim-check cell."""
    repo = tmp_path_factory.mktemp("claims")
    (repo / "book").mkdir()
    shutil.copy2(BOOK / "_config.yml", repo / "book" / "_config.yml")
    toc = {"format": "jb-book", "root": "index", "chapters": [{"file": "notebooks/claims"}]}
    (repo / "book" / "_toc.yml").write_text(yaml.safe_dump(toc), encoding="utf-8")
    (repo / "book" / "index.md").write_text("# Claims\n\nOne chapter.\n", encoding="utf-8")
    (repo / "notebooks").mkdir()
    nbformat.write(_claim_notebook(), repo / "notebooks" / "claims.ipynb")
    return _offline_build(repo / "book", repo / "out" / "html", repo)


def _page(site, name: str) -> str:
    return (site.out_dir / name).read_text(encoding="utf-8")


def _notebook(chapter: str) -> Path:
    return ROOT / f"{chapter}.ipynb"


def _plain(html_text: str) -> str:
    """Visible text of HTML without any whitespace (so markup cannot split a phrase)."""
    text = html.unescape(re.sub(r"<[^>]+>", " ", html_text))
    text = text.translate(str.maketrans("‘’“”", "''\"\""))  # Sphinx's smart quotes
    return "".join(text.split())


def _article(page: str) -> str:
    """The page's main content (without sidebars, header and footer)."""
    start = page.index('<article class="bd-article"')
    return page[start : page.index("</article>", start)]


def _ids(page: str) -> set[str]:
    return set(re.findall(r'\bid="([^"]+)"', page))


def _claim_cells(path: Path) -> list[int]:
    cells = nbformat.read(path, as_version=4).cells
    return [i for i, c in enumerate(cells) if CLAIM_TAG in c.metadata.get("tags", [])]


def public_modules() -> list[str]:
    """corrlib and its public modules (no name part starting with ``_``), sorted."""
    found = pkgutil.walk_packages(corrlib.__path__, prefix="corrlib.")
    names = [m.name for m in found if not any(p.startswith("_") for p in m.name.split("."))]
    return sorted(["corrlib", *names])


# --- the committed book -------------------------------------------------------------------


def test_toc_lists_every_chapter_notebook_in_file_name_order() -> None:
    notebooks = sorted(
        p.relative_to(ROOT).with_suffix("").as_posix() for p in ROOT.glob("notebooks/*.ipynb")
    )
    assert CHAPTERS == notebooks, "book/_toc.yml must list notebooks/*.ipynb, in order"


def test_every_public_module_has_an_api_page_in_the_toc() -> None:
    api = [name for name in PAGES if name.startswith("api/") and name != "api/index"]
    assert sorted(api) == [f"api/{m}" for m in public_modules()], "add the page and its toc line"
    for module in public_modules():
        page = (BOOK / "api" / f"{module}.md").read_text(encoding="utf-8")
        assert page.startswith(f"# `{module}`") and f"automodule:: {module}" in page


def test_stage_takes_the_toc_pages_from_the_repository(tmp_path) -> None:
    taken = stage(BOOK, tmp_path / "src")
    assert sorted(taken) == sorted(
        [tmp_path / "src" / f"{c}.ipynb" for c in CHAPTERS] + [tmp_path / "src" / "GLOSSARY.md"]
    )
    assert (tmp_path / "src" / "_vendor" / "mathjax" / MATHJAX).is_file()
    bad = tmp_path / "bad"
    shutil.copytree(BOOK, bad)
    (bad / "_toc.yml").write_text("format: jb-book\nroot: index\nchapters:\n- file: nowhere\n")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        stage(bad, tmp_path / "src2")


def test_build_is_clean_and_writes_every_toc_page(site) -> None:
    assert site.warnings == [], "\n".join(site.warnings)
    for name in ["search.html", *(f"{p}.html" for p in PAGES)]:
        assert (site.out_dir / name).is_file(), name


def test_sidebar_lists_every_page_in_toc_order_with_previous_and_next(site) -> None:
    index = _page(site, "index.html")
    nav = index[re.search(r'<nav class="[^"]*bd-docs-nav', index).start() :]
    nav = nav[: nav.index("</nav>")]
    positions = [nav.index(f'href="{name}.html"') for name in PAGES[1:]]
    assert positions == sorted(positions), "the sidebar must list the pages in toc order"
    for k, name in enumerate(CHAPTERS, start=PAGES.index(CHAPTERS[0])):
        page = _page(site, f"{name}.html")
        for rel, expected in (("left-prev", PAGES[k - 1]), ("right-next", PAGES[k + 1])):
            found = re.search(rf'<a class="{rel}"\s+href="([^"]+)"', page)
            assert found, f"{name}: no {rel} link"
            target = posixpath.normpath(posixpath.join(posixpath.dirname(name), found[1]))
            assert target == f"{expected}.html", f"{name}: {rel} goes to {target}"


def test_landing_page_lists_every_chapter_and_says_which_licence_covers_what(site) -> None:
    index = _article(_page(site, "index.html"))
    positions = []
    for chapter in CHAPTERS:
        nb = nbformat.read(_notebook(chapter), as_version=4)
        title = re.search(r"^# (.+)$", nb.cells[0].source, re.MULTILINE).group(1)
        assert _plain(title.replace("`", "")) in _plain(index), f"{chapter}: title missing"
        positions.append(index.index(f'href="{chapter}.html"'))
    assert positions == sorted(positions), "chapters must be listed in toc order"
    plain = _plain(index)
    assert "MIT" in plain and "CCBY4.0" in plain and "LICENSE-CONTENT" in plain
    assert 'href="https://creativecommons.org/licenses/by/4.0/"' in index


def test_glossary_is_a_page_with_its_table(site) -> None:
    page = _article(_page(site, "GLOSSARY.html"))
    assert "<table" in page and page.count("<tr") > 30
    assert "相关" in page
    assert 'href="notebooks/01_concepts.html"' in page  # its links lead to the chapters


def test_chapters_show_the_stored_outputs(site) -> None:
    """Every stored output is on the page, timings included: nothing was run again."""
    for chapter in CHAPTERS:
        page = html.unescape(_page(site, f"{chapter}.html"))
        cells = nbformat.read(_notebook(chapter), as_version=4).cells
        outputs = [o for c in cells if c.cell_type == "code" for o in c.get("outputs", [])]
        for output in outputs:
            if output.get("output_type") == "stream" and output.get("text", "").strip():
                for line in output["text"].strip().splitlines()[:3]:
                    assert line.strip() in page, f"{chapter}: stored output {line!r} missing"
        pngs = sum("image/png" in o.get("data", {}) for o in outputs)
        assert _article(page).count("<img ") >= pngs, f"{chapter}: figures missing"


def test_each_chapter_offers_its_notebook_for_download(site) -> None:
    for chapter in CHAPTERS:
        page = _page(site, f"{chapter}.html")
        found = re.search(r'<a href="([^"]*_sources/[^"]+\.ipynb)"', page)
        assert found, f"{chapter}: no download button for the notebook"
        target = site.out_dir / Path(chapter).parent / found.group(1)
        assert target.read_bytes() == _notebook(chapter).read_bytes(), f"{chapter}: differs"


def test_every_local_link_and_anchor_resolves(site) -> None:
    pages = {
        p: p.read_text(encoding="utf-8")
        for p in site.out_dir.rglob("*.html")
        if "_static" not in p.relative_to(site.out_dir).parts  # the theme's templates
    }
    ids = {p.resolve(): _ids(text) for p, text in pages.items()}
    for page, text in pages.items():
        for _, _, target in _ATTR.findall(text):
            parts = urlsplit(html.unescape(target))
            if parts.scheme or parts.netloc or not parts.path:
                continue
            resolved = (page.parent / unquote(parts.path)).resolve()
            where = f"{page.relative_to(site.out_dir)}: {target}"
            assert resolved.is_relative_to(site.out_dir.resolve()), f"{where} leaves the site"
            assert resolved.exists(), f"{where} is broken"
            if parts.fragment and resolved in ids and "api/" in resolved.as_posix():
                assert unquote(parts.fragment) in ids[resolved], f"{where}: no such anchor"


def test_no_page_loads_anything_from_elsewhere(site) -> None:
    """Scripts, styles, fonts and images are files of the site (links to read on are fine)."""
    tags = re.compile(r"<(script|img|link|iframe|source)\b[^>]*>", re.IGNORECASE)
    for page in site.out_dir.rglob("*.html"):
        for tag in tags.finditer(page.read_text(encoding="utf-8")):
            for _, _, target in _ATTR.findall(tag.group(0)):
                assert not urlsplit(target).netloc, f"{page.name} loads {target}"
    for css in site.out_dir.rglob("*.css"):
        urls = re.findall(r"url\(\s*['\"]?([^'\")]+)", css.read_text(encoding="utf-8"))
        assert not [u for u in urls if urlsplit(u).netloc], f"{css.name} loads {urls}"
    mathjax = site.out_dir / "_static" / "mathjax" / MATHJAX
    assert mathjax.stat().st_size > 1_000_000
    assert f"_static/mathjax/{MATHJAX}" in _page(site, f"{CHAPTERS[1]}.html")


def test_api_reference_has_a_page_per_module(site) -> None:
    index = _article(_page(site, "api/index.html"))
    for module in public_modules():
        assert f'href="{module}.html"' in index
        assert f'id="module-{module}"' in _page(site, f"api/{module}.html")
    correlation = _page(site, "api/corrlib.correlation.html")
    assert 'id="corrlib.correlation.pearson"' in correlation
    assert "Pearson" in _plain(correlation)


def test_code_cells_link_corrlib_names_to_api_anchors_that_exist(site) -> None:
    link = re.compile(rf'<a class="{CODE_LINK}" href="([^"]+)"')
    for chapter in CHAPTERS:
        hrefs = link.findall(_article(_page(site, f"{chapter}.html")))
        api = [h for h in hrefs if "/api/" in h]
        assert api, f"{chapter}: no code name links to the API reference"
        for href in set(api):
            path, _, anchor = href.partition("#")
            target = (site.out_dir / Path(chapter).parent / path).resolve()
            assert anchor and anchor in _ids(target.read_text("utf-8")), f"{chapter}: {href}"
    concepts = link.findall(_page(site, "notebooks/01_concepts.html"))
    assert "../api/corrlib.correlation.html#corrlib.correlation.pearson" in concepts
    assert "../api/corrlib.sparse.html#corrlib.sparse.ledoit_wolf" in concepts


def _collapsed_claim_checks(page: str) -> list[str]:
    """The source of each cell tagged claim-check on a page (myst-nb: class tag_claim-check)."""
    cells = re.findall(
        r'<div class="cell [^"]*\btag_claim-check\b[^"]*"[^>]*>(.*?)</pre>', page, re.S
    )
    return [_plain(c) for c in cells]


def test_claim_check_cells_are_on_the_page_marked_for_the_toggle(site, claim_book) -> None:
    assert claim_book.warnings == [], "\n".join(claim_book.warnings)
    books = [(claim_book, "notebooks/claims", claim_book.out_dir.parents[1])]
    books += [(site, c, ROOT) for c in CHAPTERS if _claim_cells(_notebook(c))]
    for book, chapter, repo in books:
        cells = nbformat.read(repo / f"{chapter}.ipynb", as_version=4).cells
        found = _collapsed_claim_checks(_page(book, f"{chapter}.html"))
        wanted = ["".join(cells[i].source.split()) for i in _claim_cells(repo / f"{chapter}.ipynb")]
        assert len(found) == len(wanted) and all(w in f for w, f in zip(wanted, found, strict=True))


# --- in a browser, without a network ---------------------------------------------------------


def _wait(condition, what: str, timeout: float = WAIT_S):
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = condition()
        except Exception:  # the page is still loading
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


_MATHS_STATE = """
const article = document.querySelector('article.bd-article');
const maths = article.querySelectorAll('.math');
const clone = article.cloneNode(true);
clone.querySelectorAll('pre, code, mjx-container').forEach(e => e.remove());
return {
  maths: maths.length,
  typeset: [...maths].filter(m => m.querySelector('mjx-container svg')).length,
  errors: article.querySelectorAll('mjx-merror, [data-mjx-error]').length,
  raw: (clone.textContent.match(/\\$\\$|\\\\\\(|\\\\\\[/g) || []).length,
};
"""
# Whether each claim check's code is shown: [false, ...] while collapsed.
_CLAIMS_SHOWN = """
return [...document.querySelectorAll('.tag_claim-check .cell_input')].map(
  e => e.checkVisibility() && e.getBoundingClientRect().height > 0);
"""


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the base's name)
        pass


class _OfflineChromium:
    """Headless Chromium with no network, recording every request it makes (DevTools log)."""

    def __init__(self, profile: Path) -> None:
        browser, driver_path = chromium()
        webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed")
        from selenium.webdriver.chrome.service import Service

        options = chrome_options(
            browser,
            "--window-size=1280,900",
            f"--proxy-server={DEAD_PROXY}",  # every connection but loopback goes nowhere
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",  # no host name resolves
            f"--user-data-dir={profile}",
        )
        options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
        self.driver = webdriver.Chrome(service=Service(driver_path), options=options)
        self.requests: dict[str, str] = {}  # request id -> URL
        self.failed: list[str] = []
        self.driver.get("about:blank")
        self.driver.get_log("performance")  # forget the browser's own start-up (new-tab page)

    def record(self) -> None:
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            params = message.get("params", {})
            if message["method"] == "Network.requestWillBeSent":
                self.requests[params["requestId"]] = params["request"]["url"]
            elif message["method"] == "Network.loadingFailed":
                url = self.requests.get(params["requestId"], "?")
                self.failed.append(f"{url}: {params.get('errorText')}")

    def check_nothing_left_the_machine(self) -> None:
        self.record()
        elsewhere = [
            u
            for u in self.requests.values()
            if urlsplit(u).scheme not in LOCAL_SCHEMES and urlsplit(u).hostname != "127.0.0.1"
        ]
        assert elsewhere == [], f"requests left the machine: {elsewhere}"
        assert self.failed == [], f"failed loads: {self.failed}"


def _open_claim_checks(browser: _OfflineChromium, url: str, screenshot: Path | None) -> list[str]:
    """Open a page, check that its claim checks are collapsed, open each one; their code."""
    from selenium.webdriver.common.by import By

    driver = browser.driver
    driver.get(url)
    shown = _wait(lambda: (s := driver.execute_script(_CLAIMS_SHOWN)) and [s], "claim checks")[0]
    assert shown and not any(shown), f"{url}: a claim check is not collapsed: {shown}"
    toggles = driver.find_elements(By.CSS_SELECTOR, ".tag_claim-check summary")
    assert len(toggles) == len(shown), f"{url}: {len(toggles)} toggles for {len(shown)} checks"
    for toggle in toggles:
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", toggle)
        toggle.click()
    _wait(lambda: all(driver.execute_script(_CLAIMS_SHOWN)), f"the claim checks of {url} to open")
    codes = driver.find_elements(By.CSS_SELECTOR, ".tag_claim-check .cell_input")
    # the text as a reader sees it (empty while the toggle's fade-in keeps it transparent)
    texts = _wait(lambda: all(t := [c.text for c in codes]) and t, f"the code of {url}'s checks")
    if screenshot is not None:
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", codes[0])
        time.sleep(0.5)
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        assert driver.save_screenshot(str(screenshot))
    return texts


def test_a_collapsed_claim_check_opens_in_chromium(site, claim_book, tmp_path) -> None:
    browser = _OfflineChromium(tmp_path / "chromium")
    try:
        page = (claim_book.out_dir / "notebooks" / "claims.html").as_uri()
        real = [c for c in CHAPTERS if _claim_cells(_notebook(c))]
        texts = _open_claim_checks(browser, page, None if real else CLAIM_SCREENSHOT)
        assert len(texts) == 1 and "the claim: the gap is positive" in texts[0], texts
        for k, chapter in enumerate(real):  # the chapters' own claim checks, once there are any
            url = (site.out_dir / f"{chapter}.html").as_uri()
            texts = _open_claim_checks(browser, url, CLAIM_SCREENSHOT if k == 0 else None)
            cells = nbformat.read(_notebook(chapter), as_version=4).cells
            wanted = [cells[i].source for i in _claim_cells(_notebook(chapter))]
            assert ["".join(t.split()) for t in texts] == ["".join(w.split()) for w in wanted]
        browser.check_nothing_left_the_machine()
    finally:
        browser.driver.quit()


def test_site_works_offline_in_chromium(site, tmp_path) -> None:
    from selenium.webdriver.common.by import By

    browser = _OfflineChromium(tmp_path / "chromium")
    driver = browser.driver
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=site.out_dir))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    served = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        # Every chapter opened from disk, as the README says, chapter 01 last ...
        counts = {}
        concepts = "notebooks/01_concepts"
        for name in [*(c for c in CHAPTERS if c != concepts), concepts]:
            driver.get((site.out_dir / f"{name}.html").as_uri())
            state = _wait(
                lambda: (s := driver.execute_script(_MATHS_STATE))["typeset"] == s["maths"] and s,
                f"MathJax to typeset every formula of {name}",
            )
            assert state["errors"] == 0 and state["raw"] == 0, f"{name}: {state}"
            counts[name] = state["maths"]
        assert counts[concepts] > 20, counts
        assert sum(counts.values()) > 100, counts
        display = driver.find_elements(By.CSS_SELECTOR, "article div.math mjx-container svg")
        assert display, "no display formula typeset"
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", display[0])
        time.sleep(0.5)
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        assert driver.save_screenshot(str(SCREENSHOT))
        browser.record()

        # ... and the search served over loopback (from disk it finds the same pages but
        # cannot show their text: the browser refuses to fetch file:// from a page).
        driver.get(f"{served}/search.html?q=Ledoit")
        hits = _wait(
            lambda: driver.find_elements(By.CSS_SELECTOR, "#search-results ul.search li a"),
            "search results for 'Ledoit'",
        )
        targets = [urlsplit(a.get_attribute("href")).path for a in hits]
        assert "/notebooks/01_concepts.html" in targets, targets
        _wait(
            lambda: "Ledoit" in driver.find_element(By.CSS_SELECTOR, "p.context").text,
            "the text around 'Ledoit' under a search result",
        )
        assert driver.save_screenshot(str(SEARCH_SCREENSHOT))
        browser.check_nothing_left_the_machine()
    finally:
        driver.quit()
        server.shutdown()
        server.server_close()
    site_files = [u for u in browser.requests.values() if u.startswith(site.out_dir.as_uri())]
    assert len(site_files) > 20, "the performance log did not record the page's files"
    assert [u for u in browser.requests.values() if u.startswith(served)], "nothing was served"
    assert SCREENSHOT.stat().st_size > 10_000
