"""Build the course website: the committed book (``book/``) with ``jupyter-book build``.

Jupyter Book reads only its source folder, so this stages one (``build/book``): ``book/``, each
page ``_toc.yml`` names from the repository at the same path (``notebooks/01_concepts`` is
``notebooks/01_concepts.ipynb``, ``GLOSSARY`` is ``GLOSSARY.md``), and MathJax 3 from the
``django-static-mathjax`` package (the ``site`` extra). The site is moved to ``build/html``.

Usage: ``python -m tools.make_html [BOOK_DIR] [OUT_DIR]`` (defaults ``book``, ``build/html``).
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
JUPYTER_BOOK = "from jupyter_book.cli.main import main; main()"
MATHJAX = "tex-svg-full.js"  # TeX with every extension and SVG output, in one file


def toc_files(toc: dict) -> list[str]:
    """Every ``file:`` of a ``_toc.yml`` (read as a dict), the root first, in reading order.

    >>> toc_files({"root": "i", "parts": [{"chapters": [{"file": "a"}, {"file": "b"}]}]})
    ['i', 'a', 'b']
    """
    found = [toc["root"]] if "root" in toc else []
    for entry in [e for key in ("parts", "chapters", "sections") for e in toc.get(key, [])]:
        found += ([entry["file"]] if "file" in entry else []) + toc_files(entry)
    return found


def _find(folder: Path, name: str) -> Path | None:
    return next((p for s in (".ipynb", ".md") if (p := folder / f"{name}{s}").is_file()), None)


def stage(book: Path, src: Path, repo: Path = ROOT) -> list[Path]:
    """Copy ``book``, the repository pages its ``_toc.yml`` names and MathJax into ``src``;
    return the pages taken from the repository (FileNotFoundError for one in neither)."""
    shutil.rmtree(src, ignore_errors=True)
    shutil.copytree(book, src)
    taken = []
    for name in toc_files(yaml.safe_load((book / "_toc.yml").read_text(encoding="utf-8"))):
        if _find(book, name) is None:
            if (page := _find(repo, name)) is None:
                raise FileNotFoundError(f"_toc.yml names {name}: not in {book} nor in {repo}")
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            taken.append(Path(shutil.copy2(page, src / page.relative_to(repo))))
    es5 = Path(importlib.import_module("mathjax").__file__).parent / "static" / "mathjax" / "es5"
    # tex-svg-full.js and all it may load later (its menu's options): nothing from a CDN
    skip = lambda d, names: [n for n in names if d == str(es5) and n.endswith(".js")]  # noqa: E731
    shutil.copytree(es5, src / "_vendor" / "mathjax", ignore=skip)
    shutil.copy2(es5 / MATHJAX, src / "_vendor" / "mathjax")
    shutil.copy2(es5.parent / "LICENSE", src / "_vendor" / "mathjax")
    return taken


def build(book: Path = ROOT / "book", out: Path = ROOT / "build" / "html", repo: Path = ROOT):
    """Stage ``book`` in ``out/../book``, build it there, move the site to ``out``; return
    Sphinx's warnings (RuntimeError when the build fails: see ``out/../book/build.log``)."""
    out = Path(out).resolve()
    src = out.parent / "book"
    stage(Path(book), src, Path(repo))
    command = [sys.executable, "-c", JUPYTER_BOOK, "build", str(src), "--builder", "html"]
    env = {"MPLBACKEND": "Agg", **os.environ}
    run = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    (src / "build.log").write_text(run.stdout + run.stderr, encoding="utf-8")
    if run.returncode != 0 or not (src / "_build" / "html" / "index.html").is_file():
        raise RuntimeError(f"jupyter-book build failed ({run.returncode}): see {src}/build.log")
    shutil.rmtree(out, ignore_errors=True)
    shutil.move(src / "_build" / "html", out)
    return [line for line in (run.stdout + run.stderr).splitlines() if "WARNING" in line]


def main(argv: list[str] | None = None) -> int:
    """Command line: build, print the warnings and the time; exit status 1 on a warning."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("book", nargs="?", default=ROOT / "book", type=Path)
    parser.add_argument("out", nargs="?", default=ROOT / "build" / "html", type=Path)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    warnings = build(args.book, args.out)
    print(*warnings, sep="\n", file=sys.stderr)
    print(f"course website in {time.perf_counter() - start:.0f} s: {args.out / 'index.html'}")
    return 1 if warnings else 0


if __name__ == "__main__":
    sys.exit(main())
