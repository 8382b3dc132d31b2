"""corrlib.pearson, spearman and corr_matrix against numpy, scipy and pandas."""

import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import stats

import corrlib
from corrlib import ConstantInputWarning

finite = st.floats(-1e200, 1e200, allow_nan=False, allow_infinity=False, width=64)


def _data(n: int, d: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n, 1))
    return base + rng.normal(size=(n, d)) * np.linspace(0.3, 3, d)


# --- agreement with the references ---------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(3, 40), st.integers(1, 6)), elements=finite))
def test_corr_matrix_matches_numpy(x):
    assume(not np.any(np.ptp(x, axis=0) == 0))  # constant columns are tested separately
    # numpy's sums of squares underflow on subnormal data; correlation is scale-free, so the
    # reference is taken on columns scaled to a largest magnitude of 1.
    scaled = x / np.abs(x).max(axis=0)
    expected = np.corrcoef(scaled, rowvar=False).reshape(x.shape[1], x.shape[1])
    got = corrlib.corr_matrix(x).numpy()
    # where a column's spread is tiny against its level (values equal to ten digits), numpy's
    # two-pass mean loses digits: there the reference is the exact (rational) correlation
    if np.any(np.ptp(scaled, axis=0) < 1e-4):
        expected = _exact_corr_matrix(x)
    np.testing.assert_allclose(got, np.clip(expected, -1, 1), atol=1e-9)


def test_corr_matrix_is_exact_where_numpy_loses_digits():
    # found by Hypothesis: a column whose values agree to eleven digits, at a level of 1e200;
    # numpy's corrcoef (scaled to 1) is off by 1e-8, corrlib by 1e-16
    x = np.full((26, 3), -1e200)
    x[0, 0] = x[25, 1] = 0.0
    x[:, 2] = -9.999999999965239e199
    x[7, 2] = -9.999999999999672e199
    np.testing.assert_allclose(corrlib.corr_matrix(x).numpy(), _exact_corr_matrix(x), atol=1e-14)


def _exact_corr_matrix(x: np.ndarray) -> np.ndarray:
    """Pearson's r in exact rational arithmetic (floats convert to fractions exactly), rounded
    once at the end: the reference where floating-point references lose digits."""
    from fractions import Fraction
    from math import copysign, sqrt

    n, d = x.shape
    cols = [[Fraction(float(v)) for v in x[:, j]] for j in range(d)]
    centred = [[v - sum(col) / n for v in col] for col in cols]
    out = np.empty((d, d))
    for a in range(d):
        for b in range(d):
            c_ab = sum(u * v for u, v in zip(centred[a], centred[b], strict=True))
            c_aa = sum(u * u for u in centred[a])
            c_bb = sum(v * v for v in centred[b])
            out[a, b] = copysign(sqrt(float(c_ab * c_ab / (c_aa * c_bb))), 1 if c_ab >= 0 else -1)
    return out


@settings(max_examples=60, deadline=None)
@given(
    arrays(
        np.float64,
        st.tuples(st.integers(3, 40), st.integers(2, 5)),
        elements=st.integers(-3, 3).map(float),
    )
)
def test_spearman_matrix_matches_scipy_with_ties(x):
    assume(not np.any(np.ptp(x, axis=0) == 0))
    expected = stats.spearmanr(x).statistic
    expected = np.array([[1.0, expected], [expected, 1.0]]) if np.ndim(expected) == 0 else expected
    np.testing.assert_allclose(
        corrlib.corr_matrix(x, method="spearman").numpy(), expected, atol=1e-9
    )


def test_pearson_and_spearman_match_scipy():
    x, y = _data(50, 2).T
    assert float(corrlib.pearson(x, y)) == pytest.approx(stats.pearsonr(x, y).statistic, abs=1e-12)
    assert float(corrlib.spearman(x, y)) == pytest.approx(
        stats.spearmanr(x, y).statistic, abs=1e-12
    )


def test_cross_block_matches_numpy():
    x, y = _data(80, 3, 1), _data(80, 4, 2)
    full = np.corrcoef(np.hstack([x, y]), rowvar=False)
    np.testing.assert_allclose(corrlib.corr_matrix(x, y).numpy(), full[:3, 3:], atol=1e-12)
    got = corrlib.corr_matrix(x, y, method="spearman").numpy()
    ref = stats.spearmanr(x, y).statistic[:3, 3:]
    np.testing.assert_allclose(got, ref, atol=1e-12)


def test_spearman_exact_for_many_ties_at_large_n():
    # 200k samples with only three distinct values: rank sums exceed 2**31 and float32 range.
    rng = np.random.default_rng(3)
    x = rng.integers(0, 3, 200_000)
    y = x + rng.integers(0, 2, 200_000)
    expected = stats.spearmanr(x, y).statistic
    got = float(corrlib.spearman(torch.from_numpy(x), torch.from_numpy(y)))
    assert expected > 0.5
    assert got == pytest.approx(expected, abs=1e-6)


def test_chunked_equals_one_shot():
    x = torch.from_numpy(_data(1000, 5)) + 1e3
    for chunk in (1, 7, 999, 1000, 5000):
        torch.testing.assert_close(corrlib.corr_matrix(x, chunk_size=chunk), corrlib.corr_matrix(x))
    y = torch.from_numpy(_data(1000, 2, 9))
    torch.testing.assert_close(corrlib.corr_matrix(x, y, chunk_size=33), corrlib.corr_matrix(x, y))


# --- structure of the result ---------------------------------------------------------------


def test_diagonal_exactly_one_symmetric_and_clipped():
    x = torch.randn(200, 6)
    x[:, 1] = x[:, 0] * 3.0 + 1.0  # perfectly correlated pair
    r = corrlib.corr_matrix(x)
    assert torch.equal(torch.diagonal(r), torch.ones(6))
    assert torch.equal(r, r.T)
    assert r.abs().max() <= 1.0


def test_affine_invariance():
    x = torch.randn(100, 3, dtype=torch.float64)
    y = x * torch.tensor([2.0, -5.0, 0.1], dtype=torch.float64) + 7.0
    r = corrlib.corr_matrix(x)
    r2 = corrlib.corr_matrix(y)
    signs = torch.tensor([1.0, -1.0, 1.0], dtype=torch.float64)
    torch.testing.assert_close(r2, r * signs[:, None] * signs[None, :])


# --- dtypes, devices and input types -------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_output_dtype_follows_input(dtype):
    x = torch.randn(64, 3).to(dtype)
    r = corrlib.corr_matrix(x)
    assert r.dtype == dtype
    ref = np.corrcoef(x.double().numpy(), rowvar=False)
    np.testing.assert_allclose(
        r.double().numpy(), ref, atol=1e-2 if dtype in (torch.float16, torch.bfloat16) else 1e-6
    )


def test_half_precision_does_not_overflow():
    x = (torch.randn(5000, 2) * 100).half()  # sums of squares exceed float16's 65504
    r = corrlib.corr_matrix(x)
    assert torch.isfinite(r).all()


def test_integer_and_list_inputs_are_cast_to_float():
    r = corrlib.corr_matrix(np.array([[1, 2], [2, 1], [3, 5], [4, 3]]))
    assert r.dtype == torch.get_default_dtype()
    assert float(corrlib.pearson([1, 2, 3], [2, 4, 7])) == pytest.approx(
        stats.pearsonr([1, 2, 3], [2, 4, 7]).statistic, abs=1e-6
    )


def test_numpy_float64_stays_float64():
    assert corrlib.corr_matrix(np.random.default_rng(0).normal(size=(10, 2))).dtype == torch.float64


# --- numerical stability -------------------------------------------------------------------


def test_float32_with_large_offset_stays_accurate():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(20_000, 2))
    base[:, 1] = 0.6 * base[:, 0] + 0.8 * base[:, 1]
    x32 = torch.from_numpy(base + 1e4).float()  # what float32 can hold of the data
    exact = np.corrcoef(x32.double().numpy(), rowvar=False)[0, 1]
    got = float(corrlib.corr_matrix(x32)[0, 1])
    assert abs(got - exact) < 1e-4
    # the one-pass formula on the same float32 data is far off
    xs = x32
    n = xs.shape[0]
    s = xs.sum(0)
    cov = xs.T @ xs - torch.outer(s, s) / n
    one_pass = float(cov[0, 1] / torch.sqrt(cov[0, 0] * cov[1, 1]))
    assert not abs(one_pass - exact) < 1e-2


def test_tiny_scale_data_are_not_constant():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(100, 2)) * 1e-9
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = corrlib.corr_matrix(x)
    np.testing.assert_allclose(r.numpy(), np.corrcoef(x, rowvar=False), atol=1e-10)


# --- constant columns ----------------------------------------------------------------------


def test_constant_column_gives_nan_row_and_column_and_warns():
    x = torch.randn(50, 4, dtype=torch.float64)
    x[:, 2] = 0.1  # 0.1 is not exact in binary: the mean is not exactly 0.1 either
    with pytest.warns(ConstantInputWarning):
        r = corrlib.corr_matrix(x)
    assert torch.isnan(r[2]).all() and torch.isnan(r[:, 2]).all()
    keep = [0, 1, 3]
    ref = np.corrcoef(x[:, keep].numpy(), rowvar=False)
    np.testing.assert_allclose(r[keep][:, keep].numpy(), ref, atol=1e-12)


def test_constant_sample_in_pearson():
    with pytest.warns(ConstantInputWarning):
        assert torch.isnan(corrlib.pearson([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))


# --- NaN and infinity ----------------------------------------------------------------------


def test_nan_propagate_touches_exactly_the_affected_entries():
    x = torch.randn(40, 4, dtype=torch.float64)
    x[3, 1] = float("nan")
    r = corrlib.corr_matrix(x)
    nan = torch.isnan(r)
    expected = torch.zeros(4, 4, dtype=torch.bool)
    expected[1, :] = True
    expected[:, 1] = True
    assert torch.equal(nan, expected)
    keep = [0, 2, 3]
    np.testing.assert_allclose(
        r[keep][:, keep].numpy(), np.corrcoef(x[:, keep].numpy(), rowvar=False), atol=1e-12
    )


@pytest.mark.parametrize("method", ["pearson", "spearman"])
def test_nan_omit_matches_pandas_pairwise(method):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(60, 4))
    x[rng.random(x.shape) < 0.15] = np.nan
    expected = pd.DataFrame(x).corr(method=method).to_numpy()
    got = corrlib.corr_matrix(x, method=method, nan_policy="omit").numpy()
    np.testing.assert_allclose(got, expected, atol=1e-12)


def test_nan_omit_two_sample_matches_scipy():
    x = np.array([1.0, 2.0, np.nan, 4.0, 5.0, 7.0])
    y = np.array([2.0, 1.0, 3.0, np.nan, 6.0, 5.0])
    ok = ~np.isnan(x) & ~np.isnan(y)
    assert float(corrlib.pearson(x, y, nan_policy="omit")) == pytest.approx(
        stats.pearsonr(x[ok], y[ok]).statistic
    )
    assert float(corrlib.spearman(x, y, nan_policy="omit")) == pytest.approx(
        stats.spearmanr(x[ok], y[ok]).statistic
    )


def test_nan_raise_and_bad_policy():
    x = np.array([[1.0, 2.0], [np.nan, 1.0], [3.0, 0.0]])
    with pytest.raises(ValueError, match="NaN"):
        corrlib.corr_matrix(x, nan_policy="raise")
    with pytest.raises(ValueError, match="nan_policy"):
        corrlib.corr_matrix(x, nan_policy="ignore")
    with pytest.raises(ValueError, match="method"):
        corrlib.corr_matrix(x, method="kendall")


@pytest.mark.parametrize("policy", ["propagate", "omit"])
def test_infinity_never_gives_a_finite_number(policy):
    x = np.random.default_rng(0).normal(size=(30, 3))
    x[4, 0] = np.inf
    with pytest.warns(RuntimeWarning, match="infinite"):
        r = corrlib.corr_matrix(x, nan_policy=policy)
    assert torch.isnan(r[0]).all() and torch.isnan(r[:, 0]).all()
    assert torch.isfinite(r[1:, 1:]).all()
    with pytest.warns(RuntimeWarning):
        assert torch.isnan(corrlib.pearson(x[:, 0], x[:, 1], nan_policy=policy))


# --- gradients -----------------------------------------------------------------------------


def test_gradcheck_pearson_and_matrix():
    x = torch.randn(12, dtype=torch.float64, requires_grad=True)
    y = torch.randn(12, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: corrlib.pearson(a, b), (x, y))
    m = torch.randn(10, 3, dtype=torch.float64, requires_grad=True)
    # off-diagonal entries carry the gradient (the diagonal is the constant 1)
    assert torch.autograd.gradcheck(
        lambda a: corrlib.corr_matrix(a)[torch.triu_indices(3, 3, 1).unbind()], (m,)
    )


def test_constant_column_keeps_other_gradients_finite():
    x = torch.randn(20, 3, dtype=torch.float64)
    x[:, 1] = 2.0
    x.requires_grad_(True)
    with pytest.warns(ConstantInputWarning):
        r = corrlib.corr_matrix(x)
    r[0, 2].backward()
    assert torch.isfinite(x.grad).all()
    assert x.grad[:, 0].abs().sum() > 0


# --- bad input -----------------------------------------------------------------------------


def test_bad_inputs_get_clear_errors():
    with pytest.raises(ValueError, match=r"\(1, 3\)"):
        corrlib.corr_matrix(np.ones((1, 3)))
    with pytest.raises(ValueError, match="2-D"):
        corrlib.corr_matrix(np.ones(5))
    with pytest.raises(ValueError, match=r"\(4,\) and \(5,\)"):
        corrlib.pearson(np.ones(4), np.ones(5))
    with pytest.raises(ValueError, match="1-D"):
        corrlib.pearson(np.ones((4, 2)), np.ones((4, 2)))
    with pytest.raises(TypeError, match="complex"):
        corrlib.corr_matrix(np.ones((4, 2), dtype=complex))
    with pytest.raises(TypeError, match="complex"):
        corrlib.pearson(torch.ones(4, dtype=torch.complex64), torch.ones(4))
    with pytest.raises(ValueError, match="same number of samples"):
        corrlib.corr_matrix(np.ones((4, 2)), np.ones((5, 2)))
    with pytest.raises(ValueError, match="chunk_size"):
        corrlib.corr_matrix(np.arange(8.0).reshape(4, 2) ** 2, chunk_size=0)
    with pytest.raises(TypeError, match="numeric"):
        corrlib.corr_matrix([["a", "b"], ["c", "d"]])


def test_identical_columns_give_exactly_one():
    x = torch.randn(100, 1, dtype=torch.float64) * 3 + 7
    assert float(corrlib.corr_matrix(torch.cat([x, x], 1))[0, 1]) == 1.0
    assert float(corrlib.spearman([1.0, 2.0, 3.0, 4.0], [1.0, 8.0, 27.0, 64.0])) == 1.0


def test_huge_and_tiny_magnitudes():
    rng = np.random.default_rng(7)
    base = rng.normal(size=(50, 2))
    expected = np.corrcoef(base, rowvar=False)
    for scale in (1e-170, 1e170):
        got = corrlib.corr_matrix(base * scale).numpy()
        np.testing.assert_allclose(got, expected, atol=1e-12)


def test_read_only_arrays_are_accepted_without_warning():
    x = np.random.default_rng(0).normal(size=(20, 3))
    x.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = corrlib.corr_matrix(x)
    np.testing.assert_allclose(r.numpy(), np.corrcoef(x, rowvar=False), atol=1e-12)


def test_both_rank_implementations_agree_with_scipy():
    from corrlib.ranking import _rank_columns_torch, rankdata

    x = torch.from_numpy(np.random.default_rng(4).integers(0, 6, size=(300, 5)))
    expected = stats.rankdata(x.numpy(), axis=0)
    np.testing.assert_array_equal(rankdata(x).numpy(), expected)
    np.testing.assert_array_equal(_rank_columns_torch(x).numpy(), expected)


def test_spearman_keeps_large_integers_apart():
    # beyond 2**24 float32 cannot tell neighbours apart; ranks of the integers themselves can
    x = torch.arange(100, dtype=torch.int64) + 2**40
    y = torch.arange(100, dtype=torch.int64).flip(0)
    assert float(corrlib.spearman(x, y)) == -1.0
    assert corrlib.corr_matrix(torch.stack([x, y], 1), method="spearman").dtype == torch.float32


@pytest.mark.parametrize("offset", [0.0, 0.5, 1.5, 3.0, 30.0])
def test_raw_product_and_centred_paths_agree(offset):
    # offsets below ~1.7 standard deviations use the raw product, larger ones centre first
    rng = np.random.default_rng(11)
    x = rng.normal(size=(5000, 4)) + offset
    x[:, 1] += 0.5 * x[:, 0]
    np.testing.assert_allclose(
        corrlib.corr_matrix(x).numpy(), np.corrcoef(x, rowvar=False), atol=1e-13
    )
    x32 = torch.from_numpy(x).float()
    exact = np.corrcoef(x32.double().numpy(), rowvar=False)
    assert np.abs(corrlib.corr_matrix(x32).numpy() - exact).max() < 2e-6
