"""Tests of corrlib.data (digits images, ImageFolder export, splits, statistics, MNIST)."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, Subset, TensorDataset
from torchvision import datasets, transforms

from corrlib.data import (
    MNIST_FILES,
    channel_stats,
    export_image_folder,
    load_digits_images,
    load_mnist,
    train_val_split,
)


def test_load_digits_images() -> None:
    images, labels = load_digits_images()
    ref = load_digits()
    assert images.shape == (1797, 1, 8, 8) and images.dtype == torch.float32
    assert labels.dtype == torch.int64
    assert float(images.min()) == 0.0 and float(images.max()) == 1.0
    np.testing.assert_allclose(images[:, 0].numpy() * 16.0, ref.images, atol=1e-5)
    np.testing.assert_array_equal(labels.numpy(), ref.target)


def test_export_image_folder_round_trip(tmp_path: Path) -> None:
    images, labels = load_digits_images()
    idx = torch.arange(0, 1797, 37)  # 49 images, every class present
    root = export_image_folder(images[idx], labels[idx], tmp_path / "digits")
    assert sorted(p.name for p in root.iterdir()) == [str(k) for k in range(10)]
    ds = datasets.ImageFolder(
        root, transform=transforms.Compose([transforms.Grayscale(1), transforms.ToTensor()])
    )
    assert len(ds) == len(idx)
    assert ds.class_to_idx == {str(k): k for k in range(10)}
    loaded = torch.stack([ds[i][0] for i in range(len(ds))])
    targets = torch.tensor(ds.targets)
    # ImageFolder orders by class, then file name (the original index): undo that order.
    order = sorted(range(len(idx)), key=lambda i: (int(labels[idx][i]), i))
    torch.testing.assert_close(targets, labels[idx][order])
    assert loaded.shape == (len(idx), 1, 8, 8)
    # 8-bit storage: within half a grey level of the original.
    assert float((loaded - images[idx][order]).abs().max()) <= 0.5 / 255 + 1e-6


def test_export_uint8_and_class_names(tmp_path: Path) -> None:
    pixels = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4) * 10
    root = export_image_folder(pixels, [1, 0], tmp_path / "a", class_names=["cat", "dog"])
    ds = datasets.ImageFolder(root, transform=transforms.PILToTensor())
    assert ds.classes == ["cat", "dog"]
    first, label = ds[0]  # class "cat" = label 0 = the second image
    assert label == 0
    np.testing.assert_array_equal(first[0].numpy(), pixels[1])


def test_export_errors(tmp_path: Path) -> None:
    x = torch.rand(3, 1, 4, 4)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        export_image_folder(x * 2.0, [0, 1, 0], tmp_path / "r1")
    with pytest.raises(ValueError, match="one \\(grey\\) channel"):
        export_image_folder(torch.rand(3, 3, 4, 4), [0, 1, 0], tmp_path / "r2")
    with pytest.raises(ValueError, match="same number of samples"):
        export_image_folder(x, [0, 1], tmp_path / "r3")
    with pytest.raises(ValueError, match="sorted order"):
        export_image_folder(x, [0, 1, 0], tmp_path / "r4", class_names=["zero", "one"])
    with pytest.raises(ValueError, match="names"):
        export_image_folder(x, [0, 1, 2], tmp_path / "r5", class_names=["a", "b"])
    with pytest.raises(ValueError, match="non-negative"):
        export_image_folder(x, [0, -1, 0], tmp_path / "r6")
    with pytest.raises(ValueError, match="integer"):
        export_image_folder(x, [0.0, 1.0, 0.0], tmp_path / "r7")
    export_image_folder(x, [0, 1, 0], tmp_path / "r8")
    with pytest.raises(FileExistsError):
        export_image_folder(x, [0, 1, 0], tmp_path / "r8")


def test_train_val_split_seeded_and_complete() -> None:
    a_train, a_val = train_val_split(100, 0.2, seed=0)
    b_train, b_val = train_val_split(100, 0.2, seed=0)
    c_train, _ = train_val_split(100, 0.2, seed=1)
    assert torch.equal(a_train, b_train) and torch.equal(a_val, b_val)
    assert not torch.equal(a_train, c_train)
    assert len(a_val) == 20 and len(a_train) == 80
    assert torch.equal(torch.sort(torch.cat([a_train, a_val])).values, torch.arange(100))
    assert a_train.dtype == torch.int64


def test_train_val_split_stratified_and_dataset() -> None:
    _, labels = load_digits_images()
    train, val = train_val_split(len(labels), 0.25, seed=0, stratify=labels)
    assert len(set(train.tolist()) & set(val.tolist())) == 0
    assert len(train) + len(val) == len(labels)
    counts_all = torch.bincount(labels).double()
    counts_val = torch.bincount(labels[val], minlength=10).double()
    assert torch.allclose(
        counts_val / counts_all, torch.full((10,), 0.25, dtype=torch.float64), atol=0.01
    )
    ds = TensorDataset(torch.arange(30.0))
    tr, va = train_val_split(ds, 0.3, seed=2)
    assert isinstance(tr, Subset) and len(va) == 9
    assert tr.indices == train_val_split(30, 0.3, seed=2)[0].tolist()


def test_train_val_split_errors() -> None:
    for bad in (0.0, 1.0, -0.5, 2):
        with pytest.raises(ValueError, match="val_fraction"):
            train_val_split(10, bad, seed=0)
    with pytest.raises(ValueError, match="empty part"):
        train_val_split(10, 0.01, seed=0)
    with pytest.raises(ValueError, match="at least 2"):
        train_val_split(1, 0.5, seed=0)
    with pytest.raises(ValueError, match="stratify"):
        train_val_split(10, 0.5, seed=0, stratify=[0, 1])
    with pytest.raises(TypeError):
        train_val_split(3.5, 0.5, seed=0)


def test_channel_stats_matches_torch() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(50, 3, 6, 5, generator=g) * torch.tensor([1.0, 5.0, 0.1])[None, :, None, None]
    x = x + torch.tensor([0.0, 100.0, -3.0])[None, :, None, None]
    per_channel = x.transpose(0, 1).reshape(3, -1).double()
    mean, std = channel_stats(x)
    torch.testing.assert_close(mean, per_channel.mean(dim=1).float())
    torch.testing.assert_close(std, per_channel.std(dim=1).float())
    _, std0 = channel_stats(x, correction=0)
    torch.testing.assert_close(std0, per_channel.std(dim=1, correction=0).float())
    # The same numbers from a DataLoader of (image, label) batches and from a Dataset.
    ds = TensorDataset(x, torch.zeros(50, dtype=torch.int64))
    loader = DataLoader(ds, batch_size=7, shuffle=False, num_workers=0)
    for source in (loader, ds, [x[:13], x[13:]]):
        m, s = channel_stats(source)
        torch.testing.assert_close(m, mean)
        torch.testing.assert_close(s, std)


def test_channel_stats_from_training_split_only() -> None:
    images, labels = load_digits_images()
    train, val = train_val_split(len(labels), 0.2, seed=0)
    m_train, s_train = channel_stats(images[train])
    m_all, _ = channel_stats(images)
    assert float(m_train) == pytest.approx(float(images[train].mean()), rel=1e-5)
    assert float(s_train) == pytest.approx(float(images[train].std()), rel=1e-5)
    assert float(m_train) != float(m_all)


def test_channel_stats_errors() -> None:
    with pytest.raises(ValueError, match="no data"):
        channel_stats([])
    with pytest.raises(ValueError, match="channels"):
        channel_stats([torch.rand(2, 3, 2, 2), torch.rand(2, 1, 2, 2)])
    with pytest.raises(ValueError, match=r"\(n, C, \.\.\.\)"):
        channel_stats(torch.rand(5))


def _write_idx(path: Path, array: np.ndarray, compress: bool) -> None:
    """Write ``array`` (uint8) in the IDX format of LeCun's MNIST files."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if compress:
        with gzip.open(path.with_name(path.name + ".gz"), "wb") as fh:
            fh.write(payload)
    else:
        path.write_bytes(payload)


def _fake_mnist(root: Path, folder: str, compress: bool) -> dict[str, np.ndarray]:
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, size=(5, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": np.array([3, 1, 4, 1, 5], dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, size=(3, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": np.array([9, 2, 6], dtype=np.uint8),
    }
    assert set(arrays) == set(MNIST_FILES)
    for name, array in arrays.items():
        _write_idx(raw / name, array, compress)
    return arrays


@pytest.mark.parametrize(
    ("kind", "folder", "compress"),
    [
        ("mnist", "MNIST", False),
        ("fashion", "FashionMNIST", True),
    ],
)
def test_load_mnist_reads_idx_files(tmp_path: Path, kind: str, folder: str, compress: bool) -> None:
    arrays = _fake_mnist(tmp_path, folder, compress)
    ds = load_mnist(tmp_path, kind=kind, transform=transforms.PILToTensor())
    assert type(ds).__name__ == folder
    assert len(ds) == 5
    image, label = ds[2]
    assert label == 4
    np.testing.assert_array_equal(image[0].numpy(), arrays["train-images-idx3-ubyte"][2])
    test = load_mnist(tmp_path, kind=kind, train=False)
    assert len(test) == 3 and test.targets.tolist() == [9, 2, 6]


def test_load_mnist_missing_says_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="download=True"):
        load_mnist(tmp_path)
    with pytest.raises(FileNotFoundError, match="FashionMNIST"):
        load_mnist(tmp_path, kind="fashion")
    with pytest.raises(ValueError, match="kind"):
        load_mnist(tmp_path, kind="kmnist")  # type: ignore[arg-type]


def test_load_mnist_moved_to_its_own_module_and_is_re_exported() -> None:
    import corrlib
    from corrlib import _mnist

    assert corrlib.data.load_mnist is _mnist.load_mnist
    assert corrlib.data.MNIST_FILES is _mnist.MNIST_FILES
