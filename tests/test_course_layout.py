"""The commands the README gives run what they promise: `pytest --nbval` checks every chapter
with the configured sanitize file, `make test` is the linter plus that command, CI runs
`make test`, and JupyterLab's folder holds the chapters only.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTEST = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
README = (ROOT / "README.md").read_text()


def _recipe(target: str) -> list[str]:
    """The command lines of a Makefile target."""
    lines = (ROOT / "Makefile").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{target}:"))
    recipe = []
    for line in lines[start + 1 :]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip())
    return recipe


def test_pytest_configuration_checks_every_notebook_strictly() -> None:
    options = shlex.split(PYTEST["addopts"])
    assert {"tests", "corrlib", "notebooks"} <= set(PYTEST["testpaths"])
    assert "--doctest-modules" in options and "--nbval-current-env" in options
    assert "--nbval-lax" not in options and "--nbval" not in options  # plain pytest: no notebooks
    sanitize = options[options.index("--nbval-sanitize-with") + 1]
    assert (ROOT / sanitize).is_file() and not sanitize.startswith("notebooks/")
    assert "regex:" in (ROOT / sanitize).read_text()


def test_make_test_is_lint_plus_the_readme_command() -> None:
    assert re.search(r"^test: setup lint$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert _recipe("test") == ["$(BIN)/pytest --nbval"]
    assert ".venv/bin/pytest --nbval" in README
    assert "make test" in README and "make lab" in README


def test_ci_runs_make_test() -> None:
    commands = [
        line.strip()
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert commands[-1] == "make test"


def test_notebook_folder_holds_only_the_chapters() -> None:
    """Chapter notebooks, and other files only where a chapter names them (what it needs)."""
    folder = ROOT / "notebooks"
    names = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
    chapters = [n for n in names if re.fullmatch(r"\d\d_\w+\.ipynb", n)]
    assert chapters, "no chapter notebook"
    text = "\n".join((folder / n).read_text(encoding="utf-8") for n in chapters)
    unused = [n for n in names if n not in chapters and n not in text]
    assert not unused, f"notebooks/ holds files no chapter uses: {unused}"
