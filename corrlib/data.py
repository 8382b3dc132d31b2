"""Image data for the course: the bundled digits, an ImageFolder export, splits and statistics.

Everything here works offline. The 8 x 8 handwritten digits that ship with scikit-learn are
the default data set; :func:`export_image_folder` writes them (or any grayscale images) as PNG
files in the folder layout that :class:`torchvision.datasets.ImageFolder` reads, so that the
usual torchvision pipeline (``ImageFolder`` + ``transforms``) can be practised on real files.
:func:`load_mnist` opens MNIST or Fashion-MNIST through torchvision's own classes for learners
who are online (or who copied the files by hand).

Normalisation statistics belong to the training split: compute them with
:func:`channel_stats` on the training part of a :func:`train_val_split` and reuse them, unchanged,
for validation and test data. Statistics taken over all the data leak information about the
held-out images into the preprocessing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from corrlib._lazy import lazy_import
from corrlib._mnist import MNIST_FILES as MNIST_FILES  # re-exported
from corrlib._mnist import load_mnist
from corrlib._validation import as_data, as_integer

# Imported on first use, not with corrlib.
sklearn_datasets = lazy_import("sklearn.datasets")
Image = lazy_import("PIL.Image")

__all__ = [
    "channel_stats",
    "export_image_folder",
    "load_digits_images",
    "load_mnist",
    "train_val_split",
]


def load_digits_images() -> tuple[torch.Tensor, torch.Tensor]:
    """The 1,797 handwritten digits bundled with scikit-learn, as image tensors.

    Returns
    -------
    images : Tensor, float32, shape ``(1797, 1, 8, 8)``
        Grey levels scaled from scikit-learn's 0..16 to [0, 1] (one channel, 8 x 8 pixels).
    labels : Tensor, int64, shape ``(1797,)``
        The digit, 0 to 9.

    Examples
    --------
    >>> from corrlib.data import load_digits_images
    >>> images, labels = load_digits_images()
    >>> tuple(images.shape), images.dtype, labels.dtype
    ((1797, 1, 8, 8), torch.float32, torch.int64)
    """
    bunch = sklearn_datasets.load_digits()
    images = torch.as_tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    labels = torch.as_tensor(bunch.target, dtype=torch.int64)
    return images, labels


def export_image_folder(
    images: Any,
    labels: Any,
    root: str | Path,
    *,
    class_names: Sequence[str] | None = None,
) -> Path:
    """Write grayscale images as PNG files in torchvision's ImageFolder layout.

    The files are ``root/<class name>/<index>.png``, where ``<index>`` is the image's position
    in ``images`` (zero-padded, so that the files sort in their original order).

    Parameters
    ----------
    images : tensor or array, shape ``(n, 1, H, W)`` or ``(n, H, W)``
        Floating-point grey levels in [0, 1] (stored as ``round(255 * value)``), or ``uint8``
        grey levels stored as they are.
    labels : tensor or array of int, shape ``(n,)``
        Class indices, ``0 <= label < n_classes``.
    root : str or Path
        Folder to write to; it is created, and must be empty or absent.
    class_names : sequence of str, optional
        Folder name of each class index. ImageFolder numbers classes by sorting the folder
        names, so the names must be in sorted order for the indices to survive the round
        trip. Default: the label as a zero-padded number (``"0"`` ... ``"9"``; ``"00"`` ...
        when there are more than ten classes).

    Returns
    -------
    Path
        ``root``, ready for ``torchvision.datasets.ImageFolder(root)``.

    Raises
    ------
    ValueError
        Wrong shapes, negative labels, values outside [0, 1], unsorted, duplicate or too few
        class names.
    FileExistsError
        ``root`` exists and is not empty.
    """
    pixels = _as_uint8_images(images)
    lab = (
        labels.detach().cpu()
        if isinstance(labels, torch.Tensor)
        else torch.as_tensor(np.asarray(labels))
    )
    if lab.ndim != 1 or lab.is_floating_point() or lab.is_complex() or lab.dtype == torch.bool:
        raise ValueError(
            f"labels must be a 1-D integer array, got shape {tuple(lab.shape)} and dtype {lab.dtype}"
        )
    if lab.shape[0] != pixels.shape[0]:
        raise ValueError(
            "images and labels must have the same number of samples, "
            f"got shapes {tuple(np.shape(images))} and {tuple(lab.shape)}"
        )
    if lab.numel() and int(lab.min()) < 0:
        raise ValueError(f"labels must be non-negative, got minimum {int(lab.min())}")
    n_classes = int(lab.max()) + 1 if lab.numel() else 0
    names = _class_folder_names(n_classes, class_names)

    root = Path(root)
    if root.exists() and any(root.iterdir()):
        raise FileExistsError(f"root {str(root)!r} exists and is not empty")
    root.mkdir(parents=True, exist_ok=True)
    for name in names:
        (root / name).mkdir()
    width = max(5, len(str(max(len(pixels) - 1, 0))))
    for index, (image, label) in enumerate(zip(pixels, lab.tolist(), strict=True)):
        path = root / names[label] / f"{index:0{width}d}.png"
        Image.fromarray(image).save(path)  # 2-D uint8 -> mode "L"
    return root


def _as_uint8_images(images: Any) -> np.ndarray:
    """``(n, 1, H, W)`` or ``(n, H, W)`` grey levels as a ``uint8`` array ``(n, H, W)``."""
    if isinstance(images, torch.Tensor):
        arr = images.detach().cpu().numpy()
    else:
        arr = np.asarray(images)
    if arr.ndim == 4:
        if arr.shape[1] != 1:
            raise ValueError(
                f"images must have one (grey) channel, got shape {tuple(arr.shape)}; "
                "expected (n, 1, H, W) or (n, H, W)"
            )
        arr = arr[:, 0]
    if arr.ndim != 3:
        raise ValueError(f"images must be (n, 1, H, W) or (n, H, W), got shape {tuple(arr.shape)}")
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)
    if arr.dtype.kind not in "fiu" or arr.dtype == bool:
        raise ValueError(f"images must be floats in [0, 1] or uint8, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if arr.size and not (np.isfinite(arr).all() and arr.min() >= 0.0 and arr.max() <= 1.0):
        raise ValueError(
            "floating-point images must hold values in [0, 1] "
            f"(got min {np.nanmin(arr):.3g}, max {np.nanmax(arr):.3g}, or non-finite values)"
        )
    return np.rint(arr * 255.0).astype(np.uint8)


def _class_folder_names(n_classes: int, class_names: Sequence[str] | None) -> list[str]:
    if class_names is None:
        width = len(str(max(n_classes - 1, 0)))
        return [f"{k:0{width}d}" for k in range(n_classes)]
    names = [str(name) for name in class_names]
    if len(names) < n_classes:
        raise ValueError(f"class_names has {len(names)} names, but labels go up to {n_classes - 1}")
    if len(set(names)) != len(names):
        raise ValueError("class_names must be unique")
    if names != sorted(names):
        raise ValueError(
            "class_names must be in sorted order: ImageFolder numbers classes by sorted folder "
            f"name, so {names} would change the labels (prefix them, e.g. '0_zero', '1_one')"
        )
    if any(not name or "/" in name or "\\" in name or name in {".", ".."} for name in names):
        raise ValueError("class_names must be plain, non-empty folder names")
    return names


def train_val_split(
    n_or_dataset: int | Dataset,
    val_fraction: float,
    *,
    seed: int,
    stratify: Any = None,
) -> tuple[torch.Tensor, torch.Tensor] | tuple[Subset, Subset]:
    """Split ``n`` samples (or a dataset) at random into a training and a validation part.

    Parameters
    ----------
    n_or_dataset : int or Dataset
        The number of samples, or a map-style dataset (anything with ``len`` and indexing).
    val_fraction : float
        Share of the samples that go to validation, in (0, 1).
    seed : int
        Seed of the ``torch.Generator`` that draws the split: the same seed gives the same
        split, on every machine.
    stratify : tensor or array of labels, shape ``(n,)``, optional
        When given, each class is split separately, so both parts keep the class proportions
        (each class contributes ``round(n_class * val_fraction)`` validation samples).

    Returns
    -------
    (train, val)
        For an ``int``: two sorted ``int64`` index tensors that together hold ``0 .. n - 1``
        once each. For a dataset: two :class:`torch.utils.data.Subset` objects over those
        indices.

    Raises
    ------
    ValueError
        ``val_fraction`` outside (0, 1), fewer than 2 samples, a part that would be empty, or
        labels of the wrong length.

    Examples
    --------
    >>> from corrlib.data import train_val_split
    >>> train, val = train_val_split(10, 0.2, seed=0)
    >>> len(train), len(val)
    (8, 2)
    """
    count = as_integer(n_or_dataset)
    if count is None and not hasattr(n_or_dataset, "__len__"):
        raise TypeError(
            f"n_or_dataset must be an int or a dataset, got {type(n_or_dataset).__name__}"
        )
    n = len(n_or_dataset) if count is None else count
    if not isinstance(val_fraction, float | int) or not 0.0 < float(val_fraction) < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction!r}")
    if n < 2:
        raise ValueError(f"need at least 2 samples to split, got {n}")
    gen = torch.Generator().manual_seed(int(seed))
    if stratify is None:
        perm = torch.randperm(n, generator=gen)
        n_val = round(n * float(val_fraction))
        val, train = perm[:n_val], perm[n_val:]
    else:
        groups = (
            stratify.detach().cpu()
            if isinstance(stratify, torch.Tensor)
            else torch.as_tensor(np.asarray(stratify))
        )
        if groups.ndim != 1 or groups.shape[0] != n:
            raise ValueError(f"stratify must have shape ({n},), got shape {tuple(groups.shape)}")
        val_parts, train_parts = [], []
        for value in torch.unique(groups):
            members = torch.nonzero(groups == value).flatten()
            members = members[torch.randperm(members.numel(), generator=gen)]
            n_val = round(members.numel() * float(val_fraction))
            val_parts.append(members[:n_val])
            train_parts.append(members[n_val:])
        val, train = torch.cat(val_parts), torch.cat(train_parts)
    if val.numel() == 0 or train.numel() == 0:
        raise ValueError(
            f"val_fraction={val_fraction} of {n} samples leaves an empty part "
            f"({train.numel()} train, {val.numel()} validation)"
        )
    train, val = torch.sort(train).values, torch.sort(val).values
    if count is not None:
        return train, val
    return Subset(n_or_dataset, train.tolist()), Subset(n_or_dataset, val.tolist())


def channel_stats(
    data: Any, *, correction: int = 1, batch_size: int = 256
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and standard deviation of images, for ``transforms.Normalize``.

    Every pixel of every image counts as one observation of its channel. Pass the training
    split only; the validation and test data are then normalised with these same numbers.

    Parameters
    ----------
    data : tensor, array, Dataset or iterable of batches
        A tensor ``(n, C, H, W)`` (or ``(n, C, ...)``, or ``(n, C)``); a dataset whose items are
        ``(image, label)`` or images of shape ``(C, H, W)`` (read through a ``DataLoader``
        with ``batch_size``); or an iterable of batches, such as a ``DataLoader``, each a
        tensor ``(b, C, ...)`` or a tuple whose first element is one.
    correction : int
        Subtracted from the count in the variance's denominator (1: as ``torch.std``; 0: the
        population value).
    batch_size : int
        Batch size used when ``data`` is a dataset.

    Returns
    -------
    mean, std : Tensor, shape ``(C,)``
        In the data's floating dtype (float32 for integer data). The moments are accumulated
        in float64 with Chan's pairwise update, so the batch order does not matter.

    Raises
    ------
    ValueError
        Batches with fewer than 2 dimensions or different channel counts, or no data.
    """
    if isinstance(data, Dataset):
        data = DataLoader(data, batch_size=batch_size, shuffle=False, num_workers=0)
    if isinstance(data, torch.Tensor | np.ndarray):
        batches: Iterable[Any] = [data]
    else:
        batches = data
    count = 0
    mean: torch.Tensor | None = None
    m2: torch.Tensor | None = None
    out_dtype = torch.float32
    for batch in batches:
        x = batch[0] if isinstance(batch, tuple | list) else batch
        x, x_dtype = as_data(x, "images")
        if x.ndim < 2:
            raise ValueError(f"image batches must be (n, C, ...), got shape {tuple(x.shape)}")
        out_dtype = x_dtype
        flat = x.detach().transpose(0, 1).reshape(x.shape[1], -1).to(torch.float64)
        if mean is not None and flat.shape[0] != mean.shape[0]:
            raise ValueError(
                f"every batch must have {mean.shape[0]} channels, got shape {tuple(x.shape)}"
            )
        k = flat.shape[1]
        if k == 0:
            continue
        b_mean = flat.mean(dim=1)
        b_m2 = ((flat - b_mean[:, None]) ** 2).sum(dim=1)
        if mean is None or m2 is None:
            count, mean, m2 = k, b_mean, b_m2
            continue
        delta = b_mean - mean
        total = count + k
        mean = mean + delta * (k / total)
        m2 = m2 + b_m2 + delta**2 * (count * k / total)
        count = total
    if mean is None or m2 is None:
        raise ValueError("channel_stats got no data")
    if count - correction <= 0:
        raise ValueError(
            f"{count} observations per channel are too few for correction={correction}"
        )
    std = torch.sqrt(m2 / (count - correction))
    return mean.to(out_dtype), std.to(out_dtype)
