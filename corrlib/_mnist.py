"""MNIST and Fashion-MNIST through torchvision's own classes, offline when the files are there.

:func:`load_mnist` is re-exported by :mod:`corrlib.data`, where learners find it.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path
from typing import Any, Literal

from torch.utils.data import Dataset

from corrlib._lazy import lazy_import

datasets = lazy_import("torchvision.datasets")  # imported on first use, not with corrlib

# The four IDX files torchvision's MNIST and FashionMNIST read from ``<root>/<Class>/raw``.
MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
_MNIST_CLASSES = {"mnist": "MNIST", "fashion": "FashionMNIST"}


def load_mnist(
    root: str | Path,
    *,
    kind: Literal["mnist", "fashion"] = "mnist",
    train: bool = True,
    download: bool = False,
    transform: Any = None,
) -> Dataset:
    """MNIST or Fashion-MNIST through torchvision's own dataset classes.

    Parameters
    ----------
    root : str or Path
        Data folder; the files live in ``root/MNIST/raw`` (``root/FashionMNIST/raw`` for
        Fashion-MNIST), as torchvision lays them out. Gzipped files (``*.gz``) found there
        are unpacked first.
    kind : {"mnist", "fashion"}
        Which data set.
    train : bool
        The 60,000 training images, or the 10,000 test images.
    download : bool
        Let torchvision download the files (needs a network connection). Never done unless
        asked for.
    transform : callable, optional
        Applied to each PIL image, e.g. ``transforms.ToTensor()``.

    Returns
    -------
    torchvision.datasets.MNIST or torchvision.datasets.FashionMNIST

    Raises
    ------
    FileNotFoundError
        ``download=False`` and the files are not there; the message says how to get them.
    ValueError
        Unknown ``kind``.
    """
    if kind not in _MNIST_CLASSES:
        raise ValueError(f"kind must be one of {tuple(_MNIST_CLASSES)}, got {kind!r}")
    class_name = _MNIST_CLASSES[kind]
    raw = Path(root) / class_name / "raw"
    if not download:
        _gunzip_missing(raw)
        missing = [name for name in MNIST_FILES if not (raw / name).is_file()]
        if missing:
            raise FileNotFoundError(
                f"{class_name} not found: {', '.join(missing)} missing in {str(raw)!r}. "
                f"When online, call load_mnist(root, kind={kind!r}, download=True) to let "
                "torchvision download it; offline, copy the four IDX files (or their .gz "
                "archives) into that folder."
            )
    dataset_cls = getattr(datasets, class_name)
    return dataset_cls(str(root), train=train, download=download, transform=transform)


def _gunzip_missing(raw: Path) -> None:
    """Unpack ``name.gz`` into ``name`` for each MNIST file that exists only gzipped."""
    for name in MNIST_FILES:
        target, archive = raw / name, raw / f"{name}.gz"
        if not target.is_file() and archive.is_file():
            with gzip.open(archive, "rb") as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
