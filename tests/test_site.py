"""The course website (`make html`): complete, built from the stored outputs, and offline.

One build (Jupyter Book, about a minute) serves every test. The static tests read the pages;
the last one opens them from disk in headless Chromium with no network at all (every host
name fails to resolve, every connection goes to a dead proxy) and checks that the formulas are
typeset by the site's own MathJax, that the search finds chapter 01 for "Ledoit", and that no
request left the machine. It is skipped only where Debian's `chromium` and `chromium-driver`
are not installed, and leaves screenshots in `build/`.
"""

from __future__ import annotations

import html
import json
import posixpath
import re
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat
import pytest

from tests._browser import chrome_options, chromium
from tools.edition import markdown_section, notebook_title
from tools.make_html import (
    MATHJAX_DIR,
    MATHJAX_SCRIPT,
    build_html,
    find_ledger,
    landing_page,
    public_modules,
)
from tools.site_links import Entry, link_first_uses

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
GLOSSARY = ROOT / "GLOSSARY.md"
SCREENSHOT = ROOT / "build" / "site.png"
SEARCH_SCREENSHOT = ROOT / "build" / "site-search.png"
WAIT_S = 60.0
_ATTR = re.compile(r"""\b(href|src)\s*=\s*(["'])(.*?)\2""", re.IGNORECASE | re.DOTALL)
# What no network carries: the site's files, inline data, and the browser's own pages
# (chrome://, e.g. the new-tab page it opens first).
LOCAL_SCHEMES = {"file", "data", "blob", "about", "chrome", "devtools"}
DEAD_PROXY = "http://127.0.0.1:9"  # the discard port: nothing listens there


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site") / "html"
    with pytest.MonkeyPatch.context() as mp:
        for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
            mp.setenv(var, DEAD_PROXY)  # the build (a subprocess) cannot download anything
        for var in ("no_proxy", "NO_PROXY"):
            mp.delenv(var, raising=False)
        return build_html(NOTEBOOK_DIR, out, documents=[GLOSSARY])


def _page(site, name: str) -> str:
    return (site.out_dir / name).read_text(encoding="utf-8")


def _chapter(path: Path) -> str:
    return f"notebooks/{path.stem}.html"


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


def test_build_is_clean_and_lists_the_pages(site) -> None:
    assert site.warnings == [], "\n".join(site.warnings)
    assert site.chapters == [_chapter(p) for p in NOTEBOOKS]
    api_pages = {p.name for p in (site.out_dir / "api").glob("*.html")}
    assert api_pages == {"index.html", *(f"{m}.html" for m in public_modules())}
    for name in ["index.html", "search.html", "GLOSSARY.html", *site.chapters]:
        assert (site.out_dir / name).is_file(), name


def test_sidebar_lists_the_chapters_in_order_with_previous_and_next(site) -> None:
    index = _page(site, "index.html")
    nav = index[re.search(r'<nav class="[^"]*bd-docs-nav', index).start() :]
    nav = nav[: nav.index("</nav>")]
    positions = [nav.index(f'href="{name}"') for name in site.chapters]
    assert positions == sorted(positions), "the sidebar must list the chapters in order"
    assert 'href="GLOSSARY.html"' in nav and 'href="api/index.html"' in nav
    pages = ["index.html", *site.chapters, "GLOSSARY.html"]
    for k, name in enumerate(site.chapters, start=1):
        page = _page(site, name)
        for rel, expected in (("left-prev", pages[k - 1]), ("right-next", pages[k + 1])):
            found = re.search(rf'<a class="{rel}"\s+href="([^"]+)"', page)
            assert found, f"{name}: no {rel} link"
            target = posixpath.normpath(posixpath.join(posixpath.dirname(name), found[1]))
            assert target == expected, f"{name}: {rel} goes to {target}"


def test_landing_page_lists_every_chapter_with_its_objectives(site) -> None:
    index = _article(_page(site, "index.html"))
    plain = _plain(index)
    positions = []
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        objectives = markdown_section(nb, "Learning objectives")
        assert objectives, f"{path.name} has no 'Learning objectives' section"
        assert "".join(notebook_title(nb).split()) in plain
        for line in objectives.splitlines()[:3]:
            line = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", line)  # [text](link) -> text
            words = "".join(re.sub(r"[*`]|^\s*[-+]\s+", "", line).split())
            assert words in plain, f"{path.name}: objective {words!r} not on the landing page"
        positions.append(index.index(f'href="{_chapter(path)}"'))
    assert positions == sorted(positions), "chapters must be listed in file-name order"
    assert 'href="GLOSSARY.html"' in index and 'href="api/index.html"' in index


def test_landing_page_links_the_ledger_when_a_chapter_has_one(site) -> None:
    index = _article(_page(site, "index.html"))
    found = find_ledger(NOTEBOOKS)
    if found is None:
        assert site.ledger is None and "ledger" not in index.lower()
        return
    chapter = _chapter(found[0])
    assert site.ledger and site.ledger.startswith(f"{chapter}#"), site.ledger
    anchor = site.ledger.split("#", 1)[1]
    heading = re.search(rf'<section id="{anchor}">\s*<h\d>(.*?)</h\d>', _page(site, chapter), re.S)
    assert heading and "ledger" in heading.group(1).lower(), f"{site.ledger}: not the ledger"


def test_ledger_link_follows_the_heading(tmp_path) -> None:
    def notebook(name: str, heading: str) -> Path:
        cells = [nbformat.v4.new_markdown_cell(f"# {name}\n\n## Learning objectives\n\n- x")]
        cells.append(nbformat.v4.new_markdown_cell(f"## {heading}\n\n| claim | verdict |"))
        path = tmp_path / "notebooks" / f"{name}.ipynb"
        path.parent.mkdir(exist_ok=True)
        nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
        return path

    plain = notebook("a", "Summary")
    assert find_ledger([plain]) is None
    assert "ledger" not in landing_page("T", [plain], tmp_path, [], None).lower()
    ledger = notebook("b", "The ledger of the article's claims")
    found = find_ledger([plain, ledger])
    assert found == (ledger, "the-ledger-of-the-articles-claims")
    page = landing_page("T", [plain, ledger], tmp_path, [], found)
    assert "(notebooks/b.ipynb#the-ledger-of-the-articles-claims)" in page


def test_glossary_is_a_page_with_its_table(site) -> None:
    page = _article(_page(site, "GLOSSARY.html"))
    assert "<table" in page and page.count("<tr") > 30
    assert "相关" in page
    assert 'href="notebooks/01_concepts.html"' in page  # its links lead to the chapters


def test_chapters_show_the_stored_outputs(site) -> None:
    """Every stored output is on the page, timings included: nothing was run again."""
    for path in NOTEBOOKS:
        page = html.unescape(_page(site, _chapter(path)))
        cells = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
        outputs = [o for c in cells for o in c.get("outputs", [])]
        for output in outputs:
            if output.get("output_type") == "stream" and output.get("text", "").strip():
                for line in output["text"].strip().splitlines()[:3]:
                    assert line.strip() in page, f"{path.name}: stored output {line!r} missing"
        pngs = sum("image/png" in o.get("data", {}) for o in outputs)
        assert _article(page).count("<img ") >= pngs, f"{path.name}: figures missing"


def test_each_chapter_offers_its_notebook_for_download(site) -> None:
    for path in NOTEBOOKS:
        name = _chapter(path)
        found = re.search(r'<p class="course-download"><a [^>]*href="([^"]+)"', _page(site, name))
        assert found, f"{name}: no download link"
        target = site.out_dir / Path(name).parent / found.group(1)
        assert target.read_bytes() == path.read_bytes(), f"{name}: download differs"


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
    mathjax = site.out_dir / "_static" / MATHJAX_DIR / MATHJAX_SCRIPT
    assert mathjax.stat().st_size > 1_000_000
    assert f"_static/{MATHJAX_DIR}/{MATHJAX_SCRIPT}" in _page(site, site.chapters[1])


def test_api_reference_has_a_page_per_module(site) -> None:
    index = _article(_page(site, "api/index.html"))
    for module in public_modules():
        page = _page(site, f"api/{module}.html")
        assert f'href="{module}.html"' in index
        assert f'id="module-{module}"' in page
    correlation = _page(site, "api/corrlib.correlation.html")
    assert 'id="corrlib.correlation.pearson"' in correlation
    assert "Pearson" in _plain(correlation)
    top = _page(site, "api/corrlib.html")  # names re-exported at the top level link home
    assert 'href="corrlib.correlation.html#corrlib.correlation.pearson"' in top


def test_chapters_link_their_first_use_of_each_function_to_the_api(site) -> None:
    concepts = _article(_page(site, "notebooks/01_concepts.html"))
    links = re.findall(r'<a class="[^"]*course-api-link" href="([^"]+)"', concepts)
    assert "../api/corrlib.correlation.html#corrlib.correlation.pearson" in links
    assert "../api/corrlib.sparse.html#corrlib.sparse.ledoit_wolf" in links
    for name in site.chapters:
        links = re.findall(r'<a class="[^"]*course-api-link" href="([^"]+)"', _page(site, name))
        assert links, f"{name} links nothing to the API reference"
        assert len(links) == len(set(links)), f"{name} links a function twice"


def test_link_first_uses_in_prose_and_code() -> None:
    entries = {
        "corrlib.pearson": Entry("api/c", "c.pearson", "corrlib.c.pearson"),
        "corrlib.hooks": Entry("api/h", "module-corrlib.hooks", "corrlib.hooks"),
        "corrlib.hooks.Rec": Entry("api/h", "corrlib.hooks.Rec", "corrlib.hooks.Rec"),
    }
    body = (
        '<p><code class="docutils literal notranslate"><span class="pre">corrlib.pearson(x,'
        '</span> <span class="pre">y)</span></code> and <code class="docutils literal '
        'notranslate"><span class="pre">corrlib.nothing</span></code></p>\n<pre>'
        '<span class="n">r</span> <span class="o">=</span> <span class="n">corrlib</span>'
        '<span class="o">.</span><span class="n">pearson</span><span class="p">(</span>\n'
        '<span class="kn">from</span><span class="w"> </span><span class="nn">corrlib.hooks'
        '</span><span class="w"> </span><span class="kn">import</span> <span class="n">Rec'
        '</span><span class="p">,</span> <span class="n">Other</span>\n'
        '<span class="n">Rec</span></pre>'
    )
    out, linked = link_first_uses(body, entries.get, lambda e: f"{e.docname}.html#{e.anchor}")
    assert linked == ["corrlib.c.pearson", "corrlib.hooks", "corrlib.hooks.Rec"]
    assert out.count("<a ") == 3 and out.count("api/c.html#c.pearson") == 1
    assert re.sub(r"</?a\b[^>]*>", "", out) == body  # only links were added


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


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the base's name)
        pass


def test_site_works_offline_in_chromium(site, tmp_path) -> None:
    browser, driver_path = chromium()
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed")
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    options = chrome_options(
        browser,
        "--window-size=1280,900",
        f"--proxy-server={DEAD_PROXY}",  # every connection but loopback goes nowhere
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",  # no host name resolves
        f"--user-data-dir={tmp_path / 'chromium'}",
    )
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    requests: dict[str, str] = {}  # request id -> URL, from the DevTools protocol's log
    failed: list[str] = []

    def record() -> None:
        for entry in driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            params = message.get("params", {})
            if message["method"] == "Network.requestWillBeSent":
                requests[params["requestId"]] = params["request"]["url"]
            elif message["method"] == "Network.loadingFailed":
                url = requests.get(params["requestId"], "?")
                failed.append(f"{url}: {params.get('errorText')}")

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=site.out_dir))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    served = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        driver.get("about:blank")
        driver.get_log("performance")  # forget the browser's own start-up (its new-tab page)
        # Every chapter opened from disk, as the README says, chapter 01 last ...
        counts = {}
        concepts = "notebooks/01_concepts.html"
        for name in [*(c for c in site.chapters if c != concepts), concepts]:
            driver.get((site.out_dir / name).as_uri())
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
        record()

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
        record()
    finally:
        driver.quit()
        server.shutdown()
        server.server_close()
    site_files = [u for u in requests.values() if u.startswith(site.out_dir.as_uri())]
    assert len(site_files) > 20, "the performance log did not record the page's files"
    assert [u for u in requests.values() if u.startswith(served)], "nothing was served"
    elsewhere = [
        u
        for u in requests.values()
        if urlsplit(u).scheme not in LOCAL_SCHEMES and urlsplit(u).hostname != "127.0.0.1"
    ]
    assert elsewhere == [], f"requests left the machine: {elsewhere}"
    assert failed == [], f"failed loads: {failed}"
    assert SCREENSHOT.stat().st_size > 10_000
