"""corrlib's one way to import on first use, so that ``import corrlib`` does not pay for it.

``scipy.stats`` alone takes longer to import than the rest of corrlib; it is needed only by
the functions that compute p-values and intervals. Two forms, one idea:

* ``stats = lazy_import("scipy.stats")`` at module level gives a stand-in whose first
  attribute access imports the real module (for the third-party modules some functions use);
* ``__getattr__ = lazy_attributes(__name__, submodules, names)`` in a package makes its
  submodules, and names defined in them, attributes imported on first access (PEP 562).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from types import ModuleType
from typing import Any


class LazyModule:
    """Stand-in for the module ``name``: imported on the first attribute access."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def _load(self) -> ModuleType:
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return self._module

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__") and attr.endswith("__"):
            raise AttributeError(attr)  # keep copy, pickle and doctest from importing it
        return getattr(self._load(), attr)

    def __repr__(self) -> str:
        state = "imported" if self._module is not None else "not yet imported"
        return f"<lazy module {self._name!r} ({state})>"


def lazy_import(name: str) -> Any:
    """A stand-in for ``importlib.import_module(name)`` that imports it on first use."""
    return LazyModule(name)


def lazy_attributes(
    package: str, submodules: Iterable[str], names: Mapping[str, str]
) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: each of its ``submodules``, and each name in
    ``names`` (mapped to the submodule that defines it), imported on first access."""
    submodules = frozenset(submodules)

    def __getattr__(name: str) -> Any:
        if name in submodules:
            return importlib.import_module(f"{package}.{name}")
        if name in names:
            return getattr(importlib.import_module(f"{package}.{names[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
