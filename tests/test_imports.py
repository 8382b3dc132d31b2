"""The package's import surface: what ``import corrlib`` loads, and every submodule reachable
as an attribute through one consistent lazy-import table."""

from __future__ import annotations

import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import corrlib

ROOT = Path(__file__).resolve().parents[1]

# Slow imports that only some functions need: never loaded by ``import corrlib``.
HEAVY = ("scipy.stats", "scipy.fft", "matplotlib", "pandas", "sklearn", "statsmodels")


def _fresh(code: str) -> dict:
    """Run ``code`` in a fresh interpreter that imports this checkout's corrlib; its JSON."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,  # "python -c" puts the working directory first on sys.path
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _public_modules() -> set[str]:
    return {m.name for m in pkgutil.iter_modules(corrlib.__path__) if not m.name.startswith("_")}


def test_import_corrlib_loads_no_heavy_module_until_used():
    heavy = json.dumps(HEAVY)
    result = _fresh(
        "import json, sys\n"
        "import corrlib\n"
        f"heavy = {heavy}\n"
        "def loaded():\n"
        "    return sorted(m for m in heavy if m in sys.modules)\n"
        "at_import = loaded()\n"
        "r = corrlib.pearson_test([1.0, 2.0, 3.0, 4.5], [2.0, 1.0, 4.0, 3.0])\n"
        "acf = corrlib.autocorr([1.0, 3.0, 2.0, 5.0, 4.0], max_lag=2)\n"
        "print(json.dumps({'at_import': at_import, 'after_use': loaded(), 'file': corrlib.__file__,\n"
        "                  'p': float(r.pvalue), 'acf1': float(acf[1])}))\n"
    )
    assert Path(result["file"]).parent == ROOT / "corrlib"  # this checkout's corrlib
    assert result["at_import"] == []
    # the functions that need them import them, and give the right numbers
    assert result["after_use"] == ["scipy.fft", "scipy.stats"]
    from scipy import stats

    x, y = [1.0, 2.0, 3.0, 4.5], [2.0, 1.0, 4.0, 3.0]
    assert result["p"] == pytest.approx(stats.pearsonr(x, y).pvalue, rel=1e-10)
    assert result["acf1"] == pytest.approx(float(corrlib.autocorr([1.0, 3.0, 2.0, 5.0, 4.0])[1]))


@pytest.mark.parametrize("first", ["channels", "bootstrap", "summaries", "sparse"])
def test_a_lazy_submodule_works_as_the_first_attribute(first):
    result = _fresh(
        "import json, corrlib\n"
        f"m = corrlib.{first}\n"
        "print(json.dumps({'name': m.__name__, 'public': [n for n in getattr(m, '__all__', [])\n"
        "                  if not hasattr(m, n)]}))\n"
    )
    assert result == {"name": f"corrlib.{first}", "public": []}


def test_the_submodule_table_lists_every_public_module():
    assert set(corrlib._SUBMODULES) == _public_modules()
    assert len(set(corrlib._SUBMODULES)) == len(corrlib._SUBMODULES)


@pytest.mark.parametrize("name", sorted(_public_modules()))
def test_every_submodule_resolves_through_the_table(name):
    # corrlib.__getattr__ itself, whether or not the submodule happens to be imported yet
    module = corrlib.__getattr__(name)
    assert module.__name__ == f"corrlib.{name}"
    assert getattr(corrlib, name) is module
    assert name in dir(corrlib) and name in corrlib.__all__


def test_lazy_names_and_all_are_consistent():
    for name, module in corrlib._LAZY_NAMES.items():
        assert module in corrlib._SUBMODULES
        assert getattr(corrlib, name) is getattr(corrlib.__getattr__(module), name)
    for name in corrlib.__all__:
        assert getattr(corrlib, name) is not None
    assert len(set(corrlib.__all__)) == len(corrlib.__all__)
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        _ = corrlib.nonexistent


def test_lazy_module_stand_in():
    from corrlib._lazy import lazy_import

    proxy = lazy_import("json")
    assert "not yet imported" in repr(proxy)
    assert proxy.dumps([1]) == "[1]"
    assert "imported" in repr(proxy) and "not yet" not in repr(proxy)
    with pytest.raises(AttributeError):
        _ = proxy.__wrapped__  # dunder lookups do not trigger (or fake) an import
    with pytest.raises(ModuleNotFoundError):
        _ = lazy_import("corrlib_no_such_module").anything
