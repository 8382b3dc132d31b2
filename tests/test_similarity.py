"""Tests of corrlib.similarity (linear CKA, CKA matrices, minibatch CKA)."""

from __future__ import annotations

import warnings

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


# --------------------------------------------------------------------------------------------
# exact constancy, one rule with corr_matrix


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("debiased", [False, True])
def test_constant_nonzero_representation_is_nan_in_linear_cka(dtype, debiased) -> None:
    # all 0.1: the centring leaves a rounding residue (1e-33 before) that is not variance
    const = torch.full((40, 3), 0.1, dtype=dtype)
    other = torch.randn(40, 2, generator=torch.Generator().manual_seed(0), dtype=dtype)
    for x, y, name in ((const, other, "x"), (other, const, "y")):
        with pytest.warns(
            corrlib.ConstantInputWarning, match=rf"constant \({name} across the samples\)"
        ) as caught:
            value = linear_cka(x, y, debiased=debiased)
        assert len(caught) == 1
        assert torch.isnan(value) and value.dtype == dtype
    # corr_matrix judges the same columns constant
    with pytest.warns(corrlib.ConstantInputWarning):
        assert torch.isnan(corrlib.corr_matrix(torch.cat([const, other], 1))[:3]).all()


def test_constant_rows_in_conv_maps_and_cka_matrix_diagonal() -> None:
    g = torch.Generator().manual_seed(1)
    maps = torch.full((40, 2, 3, 3), 0.7)  # centring leaves a residue of 6e-8 in float32
    reps = [torch.randn(40, 4, generator=g), maps, torch.randn(40, 5, generator=g)]
    with pytest.warns(corrlib.ConstantInputWarning, match=r"reps_a\[1\]"):
        m = cka_matrix(reps)
    assert torch.isnan(m[1]).all() and torch.isnan(m[:, 1]).all()  # diagonal entry included
    keep = [0, 2]
    assert torch.equal(torch.diagonal(m)[keep], torch.ones(2))
    assert float(m[0, 2]) == pytest.approx(float(linear_cka(reps[0], reps[2])), rel=1e-6)
    with pytest.warns(corrlib.ConstantInputWarning, match=r"reps_b\[0\]"):
        cross = cka_matrix(reps[:1], [maps], debiased=True)
    assert torch.isnan(cross).all()


def test_constant_column_adds_no_residue() -> None:
    g = torch.Generator().manual_seed(2)
    x = torch.randn(50, 4, generator=g) + 3.0
    y = x[:, :2] @ torch.randn(2, 3, generator=g) + torch.randn(50, 3, generator=g)
    padded = torch.cat([x, torch.full((50, 2), 0.1)], dim=1)
    for debiased in (False, True):
        ref = linear_cka(x, y, debiased=debiased)
        assert float(linear_cka(padded, y, debiased=debiased)) == pytest.approx(
            float(ref), rel=1e-6
        )
    assert float(unbiased_hsic(torch.full((10, 3), 0.1), torch.randn(10, 2))) == 0.0


def test_minibatch_cka_constant_representation_is_nan_with_warning() -> None:
    g = torch.Generator().manual_seed(3)
    acc = MinibatchCKA()
    for _ in range(3):
        _ = acc.update(torch.full((40, 3), 0.1), torch.randn(40, 2, generator=g))
    with pytest.warns(corrlib.ConstantInputWarning, match=r"constant \(x within every batch\)"):
        assert torch.isnan(acc.compute())
    layers = MinibatchCKA()
    layers.update([torch.randn(40, 3, generator=g), torch.full((40, 2), 0.7)])
    with pytest.warns(corrlib.ConstantInputWarning, match=r"x\[1\]"):
        m = layers.compute()
    assert float(m[0, 0]) == 1.0 and torch.isnan(m[1]).all() and torch.isnan(m[:, 1]).all()


def test_minibatch_cka_constant_in_one_batch_only_is_not_constant() -> None:
    g = torch.Generator().manual_seed(4)
    x = torch.randn(64, 3, generator=g, dtype=torch.float64)
    y = x @ torch.randn(3, 2, generator=g, dtype=torch.float64)
    x[:16] = 0.1  # the first batch of x is constant, the others vary
    acc = MinibatchCKA()
    for xb, yb in zip(x.split(16), y.split(16), strict=True):
        acc.update(xb, yb)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ConstantInputWarning
        value = acc.compute()
    rest = MinibatchCKA()
    for xb, yb in zip(x[16:].split(16), y[16:].split(16), strict=True):
        rest.update(xb, yb)
    # the constant batch adds exactly nothing to x's terms
    assert torch.equal(acc.self_x, rest.self_x) and torch.isfinite(value)


def test_cka_warnings_point_at_the_caller() -> None:
    const = torch.full((10, 2), 0.1)
    other = torch.randn(10, 2)
    acc = MinibatchCKA().update(const, other)
    for call in (
        lambda: linear_cka(const, other),
        lambda: cka_matrix([const, other]),
        lambda: cka_matrix([other], [const]),
        acc.compute,
    ):
        with pytest.warns(corrlib.ConstantInputWarning) as caught:
            call()
        assert [w.filename for w in caught] == [__file__]


# --------------------------------------------------------------------------------------------
# MinibatchCKA as a stateful module


def _batches(seed: int = 5, n: int = 240, size: int = 40) -> list[tuple[torch.Tensor, ...]]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=g, dtype=torch.float64) + 2.0
    y = torch.tanh(x @ torch.randn(6, 4, generator=g, dtype=torch.float64))
    z = torch.randn(n, 3, generator=g, dtype=torch.float64)
    return list(zip(x.split(size), y.split(size), z.split(size), strict=True))


def test_minibatch_cka_is_a_module_with_chaining() -> None:
    acc = MinibatchCKA()
    assert isinstance(acc, torch.nn.Module)
    (xb, yb, _), *_ = _batches()
    assert acc.update(xb, yb) is acc
    assert acc.reset() is acc and acc.n_batches == 0 and acc.n_samples == 0
    assert acc.update(xb, yb).update(xb, yb).n_batches == 2
    assert "n_batches=2" in repr(acc)


@pytest.mark.parametrize("symmetric", [False, True])
def test_minibatch_cka_merge_equals_one_pass(symmetric) -> None:
    batches = _batches()

    def feed(acc, part):
        for xb, yb, zb in part:
            if symmetric:
                acc.update([xb, yb, zb])
            else:
                acc.update([xb, yb], [zb, xb])
        return acc

    whole = feed(MinibatchCKA(), batches).compute()
    parts = [feed(MinibatchCKA(), batches[i::3]) for i in range(3)]
    for order in ([0, 1, 2], [2, 0, 1]):
        acc = MinibatchCKA()
        for i in order:
            assert acc.merge(parts[i]) is acc
        assert acc.n_batches == len(batches) and acc.n_samples == 240
        torch.testing.assert_close(acc.compute(), whole, rtol=1e-12, atol=1e-12)
    assert acc.merge(MinibatchCKA()) is acc  # an empty state changes nothing
    with pytest.raises(TypeError, match="MinibatchCKA"):
        acc.merge(corrlib.RunningCorrelation(2))
    other = MinibatchCKA().update(batches[0][0], batches[0][1])
    with pytest.raises(ValueError, match="same form"):
        acc.merge(other)


def test_minibatch_cka_state_dict_round_trip(tmp_path) -> None:
    batches = _batches()
    acc = MinibatchCKA()
    for xb, yb, _ in batches[:3]:
        acc.update(xb.float(), yb.float())
    path = tmp_path / "cka.pt"
    torch.save(acc.state_dict(), path)
    fresh = MinibatchCKA()
    fresh.load_state_dict(torch.load(path, weights_only=True))
    assert (fresh.n_batches, fresh.n_samples, fresh.shape) == (3, 120, (1, 1))
    assert torch.equal(fresh.compute(), acc.compute()) and fresh.compute().dtype == torch.float32
    for xb, yb, _ in batches[3:]:
        acc.update(xb.float(), yb.float())
        fresh.update(xb.float(), yb.float())
    assert torch.equal(fresh.compute(), acc.compute())
    with pytest.raises(ValueError, match="same form"):
        fresh.update([xb.float()])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_minibatch_cka_returns_the_input_dtype(dtype) -> None:
    g = torch.Generator().manual_seed(6)
    x = 300.0 * torch.randn(128, 8, generator=g, dtype=torch.float64)
    y = x[:, :4] + 100.0 * torch.randn(128, 4, generator=g, dtype=torch.float64)
    acc = MinibatchCKA()
    for xb, yb in zip(x.split(32), y.split(32), strict=True):
        acc.update(xb.to(dtype), yb.to(dtype))
    value = acc.compute()
    single = linear_cka(x[:32].to(dtype), y[:32].to(dtype), debiased=True)
    assert value.dtype == single.dtype == dtype
    ref = MinibatchCKA()
    for xb, yb in zip(x.split(32), y.split(32), strict=True):
        ref.update(xb.to(dtype).double(), yb.to(dtype).double())  # the same rounded inputs
    tol = {torch.float16: 2e-3, torch.bfloat16: 1e-2}.get(dtype, 1e-6)
    assert torch.isfinite(value) and float(value) == pytest.approx(float(ref.compute()), abs=tol)


def test_minibatch_cka_mixed_dtypes_promote() -> None:
    (xb, yb, _), *_ = _batches()
    acc = MinibatchCKA().update(xb.half(), yb.float())
    assert acc.compute().dtype == torch.float32
    acc.update(xb, yb)  # float64 later: the result follows the promotion
    assert acc.compute().dtype == torch.float64


def test_minibatch_cka_sync_without_process_group_is_a_no_op() -> None:
    (xb, yb, _), *_ = _batches()
    acc = MinibatchCKA().update(xb, yb)
    before = acc.compute()
    assert acc.sync() is acc
    assert torch.equal(acc.compute(), before) and acc.n_batches == 1


def test_unbiased_hsic_overflowing_float16_warns() -> None:
    g = torch.Generator().manual_seed(12)
    x = 300 * torch.randn(200, 16, generator=g, dtype=torch.float64)
    y = x[:, :8] + 300 * torch.randn(200, 8, generator=g, dtype=torch.float64)
    with pytest.warns(RuntimeWarning, match="overflows torch.float16") as caught:
        assert torch.isinf(unbiased_hsic(x.half(), y.half()))
    assert [w.filename for w in caught] == [__file__]
    value = unbiased_hsic(x.bfloat16(), y.bfloat16())  # bfloat16 has float32's range
    assert value.dtype == torch.bfloat16
    expected = float(unbiased_hsic(x.bfloat16().double(), y.bfloat16().double()))
    assert float(value) == pytest.approx(expected, rel=1e-2)
    for dtype in (torch.float16, torch.bfloat16):  # CKA itself is bounded: always finite
        assert float(linear_cka(x.to(dtype), y.to(dtype))) == pytest.approx(
            float(linear_cka(x, y)), abs=2e-3
        )


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_minibatch_cka_state_follows_cuda_batches() -> None:
    g = torch.Generator().manual_seed(13)
    x = torch.randn(128, 6, generator=g)
    y = x[:, :3] + torch.randn(128, 3, generator=g)
    on_gpu, on_cpu = MinibatchCKA(), MinibatchCKA()
    for xb, yb in zip(x.split(32), y.split(32), strict=True):
        on_gpu.update(xb.cuda(), yb.cuda())
        on_cpu.update(xb, yb)
    assert on_gpu.cross.device.type == "cuda" and on_gpu.compute().device.type == "cuda"
    assert float(on_gpu.compute()) == pytest.approx(float(on_cpu.compute()), rel=1e-4)
    with pytest.raises(ValueError, match="state holding data"):
        on_gpu.update(x[:8], y[:8])


def test_integer_representations_are_computed_in_float64() -> None:
    # ids near 2**40: float32 spaces its values 2**17 apart there and would merge them all
    ids = (2**40 + 3 * torch.arange(50)).reshape(50, 1)
    other = torch.cat([ids.double(), torch.randn(50, 2, dtype=torch.float64)], dim=1)
    value = linear_cka(ids, other)
    assert value.dtype == torch.float64
    assert float(value) == pytest.approx(float(linear_cka(ids.double(), other)), rel=1e-12)
    same = linear_cka(ids, ids)  # integers alone give torch's default float
    assert same.dtype == torch.get_default_dtype() and float(same) == 1.0
    partner = (ids.double() - 2**40 + torch.randn(50, 1, dtype=torch.float64)).float()
    m = cka_matrix([ids, partner])  # computed in float64, returned in the partner's float32
    expected = cka_matrix([ids.double(), partner.double()])
    assert m.dtype == torch.float32 and float(m[0, 1]) == pytest.approx(float(expected[0, 1]))
    assert float(m[0, 1]) > 0.99
    acc = MinibatchCKA().update(ids, other)
    assert float(acc.compute()) == pytest.approx(float(linear_cka(ids, other, debiased=True)))
    small = torch.randint(0, 255, (30, 4), dtype=torch.uint8, generator=torch.Generator())
    assert float(linear_cka(small, small.double())) == pytest.approx(1.0, abs=1e-12)


def test_minibatch_cka_lives_in_streaming_cka_and_is_re_exported() -> None:
    import corrlib
    import corrlib.similarity
    import corrlib.streaming_cka

    assert corrlib.similarity.MinibatchCKA is corrlib.streaming_cka.MinibatchCKA
    assert corrlib.streaming_cka is corrlib.__getattr__("streaming_cka")
    assert "MinibatchCKA" in corrlib.similarity.__all__
