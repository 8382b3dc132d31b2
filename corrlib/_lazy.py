"""Modules imported on first use, so that ``import corrlib`` does not pay for them.

``scipy.stats`` alone takes longer to import than the rest of corrlib; it is needed only by
the functions that compute p-values and intervals. ``stats = lazy_import("scipy.stats")`` at
module level gives a stand-in whose first attribute access imports the real module.
"""

from __future__ import annotations

import importlib
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
