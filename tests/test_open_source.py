"""What a teacher needs before reusing the course: the licences and which covers what, a valid
citation file, the contributing guide, and the pre-commit hooks the README points to.

CITATION.cff is validated against the Citation File Format 1.2.0 JSON schema, kept offline in
tests/data/cff-1.2.0.schema.json (the schema published by the citation-file-format project, as
the cffconvert 2.0.0 package ships it; CC BY 4.0).
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

import corrlib

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((ROOT / "tests" / "data" / "cff-1.2.0.schema.json").read_text("utf-8"))
CC_BY = "https://creativecommons.org/licenses/by/4.0/"


def _cff_errors(data: dict) -> list[str]:
    validator = jsonschema.Draft7Validator(
        SCHEMA, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER
    )
    return [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(data)]


def _citation() -> dict:
    return yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))


def _section(markdown: str, heading: str) -> str:
    """The text under a ``## heading`` up to the next ``## ``."""
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", markdown, re.S | re.M)
    assert match, f"no '## {heading}' section"
    return match.group(1)


def test_citation_file_is_valid_cff_1_2() -> None:
    data = _citation()
    assert SCHEMA["$id"] == "https://citation-file-format.github.io/1.2.0/schema.json"
    assert data["cff-version"] == "1.2.0"
    assert _cff_errors(data) == []
    assert data["version"] == corrlib.__version__ and data["license"] == "MIT"


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (lambda d: d.pop("authors"), "authors"),
        (lambda d: d.update({"date-released": "3 December 2026"}), "date-released"),
        (lambda d: d.update({"license": "MIT-ish"}), "license"),
    ],
)
def test_the_schema_rejects_a_broken_citation(change, where: str) -> None:
    broken = copy.deepcopy(_citation())
    change(broken)
    errors = _cff_errors(broken)
    assert errors and any(where in e for e in errors), errors


def test_licence_files_cover_code_and_content() -> None:
    mit = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert mit.startswith("MIT License") and "The above copyright notice" in mit
    content = (ROOT / "LICENSE-CONTENT").read_text(encoding="utf-8")
    assert CC_BY in content and "Creative Commons Attribution 4.0 International" in content


def test_readme_and_landing_page_say_which_licence_covers_what() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    landing = (ROOT / "book" / "index.md").read_text(encoding="utf-8")
    for text in (_section(readme, "Licence"), _section(landing, "Licence")):
        assert "MIT" in text and "`LICENSE`" in text and "corrlib" in text
        assert "CC BY 4.0" in text and "`LICENSE-CONTENT`" in text and CC_BY in text
        assert "code" in text and "prose" in text and "figures" in text


def test_contributing_guide_covers_chapters_pages_and_the_lock() -> None:
    guide = (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")
    for needed in (
        "Restart & Run All",
        "pytest --nbval",
        "../shared/tools/check_notebooks.py",
        "../shared/REVIEW.md",
        "book/_toc.yml",
        "make lock",
        "pre-commit install",
    ):
        assert needed in guide, needed


def test_pre_commit_runs_ruff_and_the_notebook_hygiene_check() -> None:
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    hooks = {h["id"]: h for repo in config["repos"] for h in repo["hooks"]}
    assert {"ruff-check", "ruff-format", "check-notebooks"} <= set(hooks)
    assert hooks["ruff-check"]["entry"].split()[:2] == [".venv/bin/ruff", "check"]
    assert hooks["ruff-format"]["entry"].split()[:3] == [".venv/bin/ruff", "format", "--check"]
    assert "jupyter" in hooks["ruff-check"]["types_or"]
    assert "../shared/tools/check_notebooks.py notebooks" in hooks["check-notebooks"]["entry"]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert ".pre-commit-config.yaml" in readme and "CONTRIBUTING.md" in readme


def test_readme_for_teachers_says_how_to_add_a_chapter_page() -> None:
    teachers = _section((ROOT / "README.md").read_text(encoding="utf-8"), "For teachers")
    assert "book/_toc.yml" in teachers and "- file: notebooks/" in teachers
