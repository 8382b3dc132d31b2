"""The dependency lists cannot drift apart: environment.yml names what pyproject.toml names."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# conda-forge names that differ from the PyPI names
CONDA_NAMES = {"torch": "pytorch"}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].strip().lower()


def _pyproject_names() -> set[str]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(meta["dependencies"])
    for extra in meta.get("optional-dependencies", {}).values():
        reqs.extend(extra)
    return {CONDA_NAMES.get(_name(r), _name(r)) for r in reqs}


def _conda_names() -> set[str]:
    names = set()
    for line in (ROOT / "environment.yml").read_text().splitlines():
        m = re.match(r"^\s*-\s+([A-Za-z0-9_.\-]+)\s*(?:[<>=!].*)?$", line)
        if m:
            names.add(m.group(1).lower())
    return names


def test_environment_yml_names_every_dependency():
    missing = _pyproject_names() - _conda_names()
    assert not missing, f"environment.yml lacks {sorted(missing)}"


def test_environment_yml_installs_the_package_with_dev_extra():
    assert '-e ".[dev]"' in (ROOT / "environment.yml").read_text()


def test_lock_file_pins_the_dependencies():
    lock = (ROOT / "requirements" / "constraints.txt").read_text().lower()
    pinned = {_name(line) for line in lock.splitlines() if "==" in line}
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {
        _name(r).replace("_", "-")
        for r in meta["dependencies"] + meta["optional-dependencies"]["dev"]
    }
    assert wanted <= {p.replace("_", "-") for p in pinned}
    assert "torch==2.14.1" in lock and "torchvision==0.29.1" in lock
