"""``show_versions()``: the environment report to paste into a bug report or a notebook."""

from __future__ import annotations

import importlib
import platform
import sys
from importlib import metadata

import torch

__all__ = ["show_versions", "versions"]

_PACKAGES = (
    "corrlib",
    "torch",
    "torchvision",
    "numpy",
    "scipy",
    "scikit-learn",
    "pandas",
    "statsmodels",
    "matplotlib",
    "seaborn",
    "tqdm",
    "jupyterlab",
    "nbval",
)


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _device_info() -> dict[str, str]:
    info = {"CUDA available": str(torch.cuda.is_available())}
    if torch.cuda.is_available():
        info["CUDA version"] = str(torch.version.cuda)
        info["GPU"] = torch.cuda.get_device_name(0)
    info["MPS available"] = str(torch.backends.mps.is_available())
    info["torch threads"] = str(torch.get_num_threads())
    return info


def versions() -> dict[str, dict[str, str | None]]:
    """The system, package and device information that :func:`show_versions` prints."""
    importlib.invalidate_caches()
    return {
        "System": {
            "python": sys.version.split()[0],
            "in a virtual environment": str(sys.prefix != sys.base_prefix),
            "machine": platform.platform(),
        },
        "Packages": {name: _version(name) for name in _PACKAGES},
        "Device": dict(_device_info()),
    }


def show_versions() -> None:
    """Print the Python, package and device versions this code runs with.

    Modelled on ``sklearn.show_versions()``. Packages that are not installed print as
    ``None``.
    """
    for section, entries in versions().items():
        print(f"\n{section}:")
        width = max(len(k) for k in entries)
        for key, value in entries.items():
            print(f"{key:>{width}}: {value}")
