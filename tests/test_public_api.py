"""Every public module says what it exports (``__all__``), and the API pages document only that."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

import corrlib

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "corrlib"


def _public_modules() -> list[str]:
    names = ["corrlib"]
    for info in pkgutil.walk_packages(corrlib.__path__, "corrlib."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return sorted(names)


@pytest.mark.parametrize("name", _public_modules())
def test_every_public_module_has_an_all_whose_names_exist(name):
    module = importlib.import_module(name)
    assert "__all__" in vars(module), f"{name} has no __all__"
    exported = module.__all__
    assert len(set(exported)) == len(exported)
    assert [n for n in exported if not hasattr(module, n)] == []
    assert [n for n in exported if n.startswith("_")] == []


def test_private_plumbing_is_not_exported():
    from corrlib import correlation

    assert "spearman_ranks" not in correlation.__all__
    assert "correlate" not in correlation.__all__


def test_the_old_internal_correlate_is_a_deprecated_alias():
    from corrlib import correlation

    x = [[1.0, 2.0], [2.0, 1.0], [3.0, 5.0]]
    with pytest.warns(DeprecationWarning, match="corr_matrix"):
        old = correlation.correlate(x, notes=[])
    assert old.equal(corrlib.corr_matrix(x))


@pytest.mark.parametrize("page", sorted((ROOT / "book" / "api").glob("corrlib*.md")), ids=str)
def test_api_pages_document_only_the_names_in_all(page):
    assert ":ignore-module-all:" not in page.read_text()


def _function_level_imports(path: Path) -> list[str]:
    """Third-party modules imported inside a function of ``path`` (``torch`` excepted)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for inner in ast.walk(node):
                if isinstance(inner, ast.Import):
                    found += [alias.name for alias in inner.names]
                elif isinstance(inner, ast.ImportFrom) and inner.level == 0:
                    found.append(inner.module or "")
    return [m for m in found if m.split(".")[0] not in ("corrlib", "torch")]


def test_third_party_modules_are_imported_lazily_in_one_way():
    # corrlib._lazy.lazy_import, never an import statement inside a function (monitor.py's
    # pandas import is left to the branch that reworks the monitor)
    offenders = {
        str(path.relative_to(PACKAGE)): _function_level_imports(path)
        for path in PACKAGE.rglob("*.py")
        if path.name != "monitor.py"
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_inference_has_no_dead_lazy_stand_in():
    from corrlib import inference

    source = (PACKAGE / "inference.py").read_text()
    assert source.count('lazy_import("scipy.stats")') == 1
    assert "stats." in source.split('lazy_import("scipy.stats")', 1)[1]
    assert repr(inference.stats).startswith("<lazy module 'scipy.stats'")


def test_hypothesis_tests_use_assume_not_an_early_return():
    """An early ``return`` counts a rejected example as a pass; ``assume`` tells Hypothesis."""
    early = []
    for path in sorted((ROOT / "tests").glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef):
                continue
            decorators = [ast.unparse(d) for d in node.decorator_list]
            if not any(d.startswith("given") for d in decorators):
                continue
            if any(isinstance(inner, ast.Return) for inner in ast.walk(node)):
                early.append(f"{path.name}::{node.name}")
    assert early == []
