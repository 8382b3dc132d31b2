"""Tests of corrlib.similarity (linear CKA, CKA matrices, minibatch CKA)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import corrlib
from corrlib.similarity import MinibatchCKA, cka_matrix, linear_cka, unbiased_hsic


def _hsic_gram(x: np.ndarray, y: np.ndarray, debiased: bool) -> float:
    """HSIC straight from the n x n Gram matrices (Gretton et al.; Song et al. 2012)."""
    x = x.reshape(len(x), -1)
    y = y.reshape(len(y), -1)
    n = len(x)
    k, lk = x @ x.T, y @ y.T
    if not debiased:
        h = np.eye(n) - np.ones((n, n)) / n
        return float(np.trace(k @ h @ lk @ h))
    kt, lt = k.copy(), lk.copy()
    np.fill_diagonal(kt, 0.0)
    np.fill_diagonal(lt, 0.0)
    one = np.ones(n)
    value = (
        np.trace(kt @ lt)
        + (one @ kt @ one) * (one @ lt @ one) / ((n - 1) * (n - 2))
        - 2.0 / (n - 2) * (one @ kt @ lt @ one)
    )
    return float(value / (n * (n - 3)))


def _cka_gram(x: np.ndarray, y: np.ndarray, debiased: bool = False) -> float:
    xy = _hsic_gram(x, y, debiased)
    return xy / np.sqrt(_hsic_gram(x, x, debiased) * _hsic_gram(y, y, debiased))


def _related(rng: np.random.Generator, n: int, dx: int, dy: int) -> tuple[np.ndarray, np.ndarray]:
    x = rng.normal(size=(n, dx)) + 3.0
    y = x[:, :2] @ rng.normal(size=(2, dy)) + rng.normal(size=(n, dy))
    return x, y


@pytest.mark.parametrize("debiased", [False, True])
@pytest.mark.parametrize(("n", "dx", "dy"), [(60, 5, 7), (20, 30, 4), (12, 40, 50), (30, 30, 30)])
def test_matches_gram_hsic_formula(n: int, dx: int, dy: int, debiased: bool) -> None:
    rng = np.random.default_rng(n + dx + dy)
    x, y = _related(rng, n, dx, dy)
    got = float(linear_cka(x, y, debiased=debiased))
    assert got == pytest.approx(_cka_gram(x, y, debiased), rel=1e-10, abs=1e-12)


def test_unbiased_hsic_matches_formula() -> None:
    rng = np.random.default_rng(3)
    for n, dx, dy in [(40, 3, 6), (8, 20, 2)]:
        x, y = _related(rng, n, dx, dy)
        assert float(unbiased_hsic(x, y)) == pytest.approx(_hsic_gram(x, y, True), rel=1e-10)


def test_known_value_for_independent_wide_data_is_biased_then_debiased() -> None:
    # Independent random representations with d >> n: plain CKA is far from 0, debiased ~ 0.
    g = torch.Generator().manual_seed(0)
    x = torch.randn(30, 500, generator=g, dtype=torch.float64)
    y = torch.randn(30, 500, generator=g, dtype=torch.float64)
    assert float(linear_cka(x, y)) > 0.5
    assert abs(float(linear_cka(x, y, debiased=True))) < 0.1


def test_self_similarity_is_one() -> None:
    g = torch.Generator().manual_seed(1)
    for shape in [(50, 4), (10, 3, 4, 4), (5, 40)]:
        x = torch.randn(*shape, generator=g)
        assert float(linear_cka(x, x)) == pytest.approx(1.0, abs=1e-5)
        assert float(linear_cka(x, x, debiased=True)) == pytest.approx(1.0, abs=1e-5)


def test_invariance_to_orthogonal_maps_and_isotropic_scaling() -> None:
    g = torch.Generator().manual_seed(2)
    x = torch.randn(80, 6, generator=g, dtype=torch.float64)
    y = x @ torch.randn(6, 9, generator=g, dtype=torch.float64) + torch.randn(
        80, 9, generator=g, dtype=torch.float64
    )
    q, _ = torch.linalg.qr(torch.randn(9, 9, generator=g, dtype=torch.float64))
    base = float(linear_cka(x, y))
    assert float(linear_cka(x, y @ q)) == pytest.approx(base, rel=1e-10)
    assert float(linear_cka(7.5 * x, y)) == pytest.approx(base, rel=1e-10)
    assert float(linear_cka(x + 100.0, y)) == pytest.approx(base, rel=1e-10)
    for debiased in (False, True):
        ref = float(linear_cka(x, y, debiased=debiased))
        got = float(linear_cka(0.1 * x, y @ q, debiased=debiased))
        assert got == pytest.approx(ref, rel=1e-10)


def test_not_invariant_to_anisotropic_scaling() -> None:
    g = torch.Generator().manual_seed(3)
    x = torch.randn(200, 3, generator=g, dtype=torch.float64)
    y = x.clone()
    y[:, 0] *= 10.0
    assert float(linear_cka(x, y)) < 0.9


def test_symmetric_and_in_unit_interval() -> None:
    g = torch.Generator().manual_seed(4)
    x = torch.randn(40, 5, generator=g)
    y = torch.randn(40, 8, generator=g)
    a, b = float(linear_cka(x, y)), float(linear_cka(y, x))
    assert a == pytest.approx(b, rel=1e-5)
    assert 0.0 <= a <= 1.0


def test_conv_activations_are_flattened_per_sample() -> None:
    g = torch.Generator().manual_seed(5)
    maps = torch.randn(20, 3, 4, 4, generator=g, dtype=torch.float64)
    other = torch.randn(20, 10, generator=g, dtype=torch.float64)
    assert float(linear_cka(maps, other)) == pytest.approx(
        float(linear_cka(maps.reshape(20, -1), other)), rel=1e-12
    )
    assert float(linear_cka(maps, other)) == pytest.approx(
        _cka_gram(maps.numpy(), other.numpy()), rel=1e-10
    )


def test_sample_count_mismatch_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"\(10, 3\).*\(11, 3\)"):
        linear_cka(torch.zeros(10, 3), torch.zeros(11, 3))
    with pytest.raises(ValueError, match="same number of samples"):
        cka_matrix([torch.randn(10, 3), torch.randn(9, 3)])


def test_hostile_inputs() -> None:
    with pytest.raises(ValueError, match="at least 2 samples"):
        linear_cka(torch.randn(1, 3), torch.randn(1, 3))
    with pytest.raises(ValueError, match="at least 4 samples"):
        linear_cka(torch.randn(3, 3), torch.randn(3, 3), debiased=True)
    with pytest.raises(ValueError, match="n_samples"):
        linear_cka(torch.randn(5), torch.randn(5))
    with pytest.raises(TypeError, match="complex"):
        linear_cka(np.ones((4, 2), dtype=complex), np.ones((4, 2)))
    with pytest.raises(TypeError, match="list or dict"):
        cka_matrix(torch.randn(5, 2))


def test_constant_representation_gives_nan_with_warning() -> None:
    with pytest.warns(corrlib.ConstantInputWarning):
        value = linear_cka(torch.ones(10, 3), torch.randn(10, 2))
    assert torch.isnan(value)


def test_dtype_device_and_gradient() -> None:
    x = torch.randn(30, 4, dtype=torch.float64, requires_grad=True)
    y = torch.randn(30, 6, dtype=torch.float64)
    value = linear_cka(x, y)
    assert value.dtype == torch.float64 and value.ndim == 0
    assert linear_cka(x.float().detach(), y.float()).dtype == torch.float32
    assert torch.autograd.gradcheck(lambda a: linear_cka(a, y), (x,))


def test_cka_matrix_lists_dicts_and_symmetry() -> None:
    g = torch.Generator().manual_seed(6)
    base = torch.randn(50, 4, generator=g, dtype=torch.float64)
    reps = {
        "a": base,
        "b": base @ torch.randn(4, 6, generator=g, dtype=torch.float64),
        "c": torch.randn(50, 2, 3, generator=g, dtype=torch.float64),
    }
    m = cka_matrix(reps)
    assert m.shape == (3, 3)
    assert torch.allclose(m, m.T)
    assert torch.allclose(torch.diagonal(m), torch.ones(3, dtype=torch.float64))
    values = list(reps.values())
    for i in range(3):
        for j in range(3):
            assert float(m[i, j]) == pytest.approx(
                float(linear_cka(values[i], values[j])), rel=1e-10
            )
    cross = cka_matrix(values[:2], [values[2], values[0]], debiased=True)
    assert cross.shape == (2, 2)
    assert float(cross[1, 0]) == pytest.approx(
        float(linear_cka(values[1], values[2], debiased=True)), rel=1e-10
    )


def test_minibatch_cka_close_to_full_batch() -> None:
    g = torch.Generator().manual_seed(7)
    x = torch.randn(4000, 12, generator=g, dtype=torch.float64)
    y = torch.tanh(x @ torch.randn(12, 8, generator=g, dtype=torch.float64)) + 0.5 * torch.randn(
        4000, 8, generator=g, dtype=torch.float64
    )
    acc = MinibatchCKA()
    for xb, yb in zip(x.split(500), y.split(500), strict=True):
        acc.update(xb, yb)
    full = float(linear_cka(x, y, debiased=True))
    assert acc.n_batches == 8 and acc.n_samples == 4000
    assert float(acc.compute()) == pytest.approx(full, abs=0.01)
    assert 0.2 < full < 0.95  # a value that is neither trivially 0 nor 1


def test_minibatch_cka_single_batch_equals_debiased() -> None:
    g = torch.Generator().manual_seed(8)
    x = torch.randn(64, 5, generator=g, dtype=torch.float64)
    y = x[:, :3] + torch.randn(64, 3, generator=g, dtype=torch.float64)
    acc = MinibatchCKA()
    acc.update(x, y)
    assert float(acc.compute()) == pytest.approx(float(linear_cka(x, y, debiased=True)), rel=1e-10)


def test_minibatch_cka_several_layers() -> None:
    g = torch.Generator().manual_seed(9)
    x = torch.randn(600, 6, generator=g, dtype=torch.float64)
    layers = [x, torch.relu(x @ torch.randn(6, 10, generator=g, dtype=torch.float64)), x[:, :2]]
    acc = MinibatchCKA()
    for start in range(0, 600, 200):
        acc.update([layer[start : start + 200] for layer in layers])
    m = acc.compute()
    assert m.shape == (3, 3)
    assert torch.allclose(m, m.T)
    assert torch.allclose(torch.diagonal(m), torch.ones(3, dtype=torch.float64))
    full = cka_matrix(layers, debiased=True)
    assert torch.allclose(m, full, atol=0.03)
    with pytest.raises(ValueError, match="representations per side"):
        acc.update([layer[:50] for layer in layers[:2]])


def test_minibatch_cka_errors() -> None:
    acc = MinibatchCKA()
    with pytest.raises(RuntimeError, match="before any update"):
        acc.compute()
    with pytest.raises(ValueError, match="at least 4 samples"):
        acc.update(torch.randn(3, 2), torch.randn(3, 2))
    with pytest.raises(ValueError, match=r"\(8, 2\).*\(9, 2\)"):
        acc.update(torch.randn(8, 2), torch.randn(9, 2))
    with pytest.raises(ValueError, match="needs y"):
        acc.update(torch.randn(8, 2))
    acc.update(torch.randn(8, 2), torch.randn(8, 3))
    with pytest.raises(ValueError, match="same form"):
        acc.update([torch.randn(8, 2)])
    acc.reset()
    assert acc.n_batches == 0


def test_tall_data_never_builds_an_n_by_n_gram() -> None:
    # 100,000 samples: an n x n Gram matrix would need 40 GB; the feature-space form needs 3 x 3.
    g = torch.Generator().manual_seed(10)
    x = torch.randn(100_000, 3, generator=g, dtype=torch.float64)
    y = x @ torch.randn(3, 2, generator=g, dtype=torch.float64)
    value = float(linear_cka(x, y, debiased=True))
    xc, yc = (x - x.mean(0)).numpy(), (y - y.mean(0)).numpy()
    expected = np.linalg.norm(yc.T @ xc) ** 2 / (
        np.linalg.norm(xc.T @ xc) * np.linalg.norm(yc.T @ yc)
    )
    assert value == pytest.approx(expected, rel=1e-3)
    acc = MinibatchCKA()
    acc.update(x, y)
    assert float(acc.compute()) == pytest.approx(value, rel=1e-10)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_inputs_give_cuda_results() -> None:
    x = torch.randn(64, 5, device="cuda")
    y = torch.randn(64, 7, device="cuda")
    assert linear_cka(x, y).device.type == "cuda"
    assert cka_matrix([x, y]).device.type == "cuda"
    assert float(linear_cka(x, y)) == pytest.approx(float(linear_cka(x.cpu(), y.cpu())), rel=1e-4)


def test_half_precision_is_computed_in_float32() -> None:
    g = torch.Generator().manual_seed(11)
    x = torch.randn(50, 4, generator=g)
    y = x @ torch.randn(4, 3, generator=g)
    value = linear_cka(x.half(), y.half())
    assert value.dtype == torch.float16
    assert float(value) == pytest.approx(float(linear_cka(x, y)), abs=5e-3)
