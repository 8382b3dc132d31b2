"""Packaging: corrlib depends on what it imports, the extras hold the rest, environment.yml and the
lock file name the same packages, the version is written once, the code's licence (MIT) is
declared and shipped, and the wheel ships py.typed.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

import corrlib

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
EXTRAS = PROJECT["optional-dependencies"]
# conda-forge names that differ from the PyPI names
CONDA_NAMES = {"torch": "pytorch"}


def _name(requirement: str) -> str:
    name = re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].strip().lower()
    return re.sub(r"[-_.]+", "-", name)


def _requirements(names: list[str]) -> list[str]:
    """The requirements of the dependencies and the named extras, self-references expanded."""
    reqs: list[str] = []
    for extra in names:
        for req in PROJECT["dependencies"] if extra == "" else EXTRAS[extra]:
            if _name(req) == "corrlib":
                inner = re.search(r"\[(.*)\]", req).group(1).split(",")
                reqs.extend(_requirements([e.strip() for e in inner]))
            else:
                reqs.append(req)
    return reqs


def _pyproject_names() -> set[str]:
    reqs = _requirements(["", *EXTRAS])
    return {CONDA_NAMES.get(_name(r), _name(r)) for r in reqs}


def _conda_names() -> set[str]:
    names = set()
    text = (ROOT / "environment.yml").read_text()
    for line in text.split("\ndependencies:", 1)[1].splitlines():
        m = re.match(r"^\s*-\s+([A-Za-z0-9_.\-]+)\s*(?:[<>=!].*)?$", line)
        if m:
            names.add(_name(m.group(1)))
    return names


def test_environment_yml_names_every_dependency() -> None:
    missing = _pyproject_names() - _conda_names()
    assert not missing, f"environment.yml lacks {sorted(missing)}"
    extra = _conda_names() - _pyproject_names() - {"python", "pip"}
    assert not extra, f"environment.yml names {sorted(extra)}, which pyproject.toml does not"


def test_environment_yml_installs_the_package_with_dev_extra() -> None:
    assert '-e ".[dev]"' in (ROOT / "environment.yml").read_text()


def test_lock_file_pins_the_dependencies() -> None:
    lock = (ROOT / "requirements" / "constraints.txt").read_text().lower()
    pinned = {_name(line) for line in lock.splitlines() if "==" in line}
    wanted = {_name(r) for r in _requirements(["", "dev"])}
    assert wanted <= pinned, f"not pinned: {sorted(wanted - pinned)}"
    assert "torch==2.14.1" in lock and "torchvision==0.29.1" in lock


def test_dev_extra_holds_the_course_and_grading() -> None:
    dev = {_name(r) for r in _requirements(["dev"])}
    assert {_name(r) for r in _requirements(["course", "grading"])} <= dev
    assert {"jupyterlab", "ipykernel", "nbformat", "nbconvert"} <= {
        _name(r) for r in EXTRAS["course"]
    }
    assert "nbgrader" in {_name(r) for r in EXTRAS["grading"]}


def _third_party_imports(package: Path) -> set[str]:
    """Top-level names of the modules a package's code imports (with an import statement or
    ``lazy_import``), its own and stdlib excluded."""
    found: set[str] = set()
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
            elif (  # corrlib._lazy's stand-ins: lazy_import("scipy.stats")
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "lazy_import"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                found.add(node.args[0].value.split(".")[0])
    return found - set(sys.stdlib_module_names) - {package.name}


def test_runtime_dependencies_are_what_corrlib_imports() -> None:
    distributions = importlib.metadata.packages_distributions()
    imported = {
        _name(dist)
        for module in _third_party_imports(ROOT / "corrlib")
        for dist in distributions[module]
    }
    declared = {_name(r) for r in PROJECT["dependencies"]}
    assert imported == declared


def test_version_is_written_once() -> None:
    assert "version" in PROJECT["dynamic"] and "version" not in PROJECT
    assert importlib.metadata.version("corrlib") == corrlib.__version__
    assert re.fullmatch(r"\d+\.\d+\.\d+", corrlib.__version__)


def test_pyproject_declares_the_code_licence() -> None:
    assert PROJECT["license"] == "MIT"  # an SPDX expression (PEP 639)
    assert PROJECT["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License\n\nCopyright (c) ")
    assert "Permission is hereby granted, free of charge, to any person" in text
    assert 'THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND' in text
    assert importlib.metadata.metadata("corrlib")["License-Expression"] == "MIT"


def test_content_licence_is_cc_by_4() -> None:
    text = (ROOT / "LICENSE-CONTENT").read_text(encoding="utf-8")
    assert "https://creativecommons.org/licenses/by/4.0/" in text
    assert "Creative Commons Attribution 4.0 International Public License" in text
    assert "Section 8 -- Interpretation." in text  # the full legal text, to its last section


def test_wheel_ships_py_typed(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation"]
        + ["--quiet", "--disable-pip-version-check", "--wheel-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode != 0 and "No module named" in proc.stderr:
        pytest.skip(f"cannot build a wheel here: {proc.stderr.strip()[-200:]}")
    assert proc.returncode == 0, proc.stderr
    (wheel,) = tmp_path.glob("corrlib-*.whl")
    assert wheel.name.startswith(f"corrlib-{corrlib.__version__}-")
    names = zipfile.ZipFile(wheel).namelist()
    assert "corrlib/py.typed" in names
    licence = f"corrlib-{corrlib.__version__}.dist-info/licenses/LICENSE"
    assert zipfile.ZipFile(wheel).read(licence) == (ROOT / "LICENSE").read_bytes()
    assert not any(n.startswith(("tests/", "tools/", "notebooks/")) for n in names)
