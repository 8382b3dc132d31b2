"""autocorr, crosscorr and estimate_lag against statsmodels and direct sums."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.tsa.stattools import acf

import corrlib
from corrlib import ConstantInputWarning


def _ar1(n, phi, seed=0):
    rng = np.random.default_rng(seed)
    x = np.zeros(n)
    e = rng.normal(size=n)
    for t in range(1, n):
        x[t] = phi * x[t - 1] + e[t]
    return x


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 200), st.booleans(), st.integers(0, 10_000))
def test_matches_statsmodels_acf(n, adjusted, seed):
    x = np.random.default_rng(seed).normal(size=n).cumsum()
    lag = min(n - 1, 25)
    expected = acf(x, nlags=lag, adjusted=adjusted, fft=True)
    np.testing.assert_allclose(
        corrlib.autocorr(x, lag, adjusted=adjusted).numpy(), expected, atol=1e-10
    )


def test_default_max_lag_as_statsmodels():
    x = _ar1(500, 0.5)
    np.testing.assert_allclose(corrlib.autocorr(x).numpy(), acf(x, fft=True), atol=1e-12)


def test_columns_are_independent_series():
    x = np.stack([_ar1(300, 0.9, 1), _ar1(300, -0.5, 2)], axis=1)
    got = corrlib.autocorr(x, 10).numpy()
    for j in range(2):
        np.testing.assert_allclose(got[:, j], acf(x[:, j], nlags=10, fft=True), atol=1e-12)


def test_fft_equals_direct_sum_and_ar1_theory():
    x = _ar1(20_000, 0.8, 3)
    got = corrlib.autocorr(x, 5).numpy()
    xc = x - x.mean()
    direct = np.array([np.dot(xc[: len(x) - k], xc[k:]) for k in range(6)]) / np.dot(xc, xc)
    np.testing.assert_allclose(got, direct, atol=1e-12)
    np.testing.assert_allclose(got, 0.8 ** np.arange(6), atol=0.03)


def test_constant_series_gives_nan_with_warning():
    with pytest.warns(ConstantInputWarning):
        assert torch.isnan(corrlib.autocorr(np.full(10, 3.3), 3)).all()


def test_crosscorr_lag_zero_is_pearson_and_swap_mirrors():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=100), rng.normal(size=100)
    c = corrlib.crosscorr(x, y, 5)
    assert c.shape == (11,)
    assert float(c[5]) == pytest.approx(float(corrlib.pearson(x, y)), abs=1e-12)
    torch.testing.assert_close(corrlib.crosscorr(y, x, 5), c.flip(0))
    xc, yc = x - x.mean(), y - y.mean()
    k = 3  # direct sum: sum_t x[t] y[t + k]
    expected = np.dot(xc[:-k], yc[k:]) / np.sqrt(np.dot(xc, xc) * np.dot(yc, yc))
    assert float(c[5 + k]) == pytest.approx(expected, abs=1e-12)


def test_estimate_lag_sign_convention():
    rng = np.random.default_rng(1)
    x = rng.normal(size=500)
    delay = 17
    y = np.concatenate([rng.normal(size=delay), x[:-delay]])  # y[t] = x[t - 17]
    assert corrlib.estimate_lag(x, y) == delay
    assert corrlib.estimate_lag(y, x) == -delay
    assert corrlib.estimate_lag(x, y, max_lag=30) == delay


def test_bad_inputs():
    with pytest.raises(ValueError, match="max_lag"):
        corrlib.autocorr(np.arange(5.0), 5)
    with pytest.raises(ValueError, match="max_lag"):
        corrlib.autocorr(np.arange(5.0), -1)
    with pytest.raises(ValueError, match="at least 2"):
        corrlib.autocorr(np.arange(1.0))
    with pytest.raises(ValueError, match="1-D"):
        corrlib.crosscorr(np.ones((4, 2)), np.ones((4, 2)), 1)
    with pytest.raises(ValueError, match="same number"):
        corrlib.crosscorr(np.arange(4.0), np.arange(5.0), 1)
    with pytest.raises(TypeError, match="complex"):
        corrlib.autocorr(np.ones(4, dtype=complex))


def test_dtype_and_half_precision():
    x = torch.randn(1000)
    assert corrlib.autocorr(x, 3).dtype == torch.float32
    h = corrlib.autocorr(x.half(), 3)
    assert h.dtype == torch.float16
    torch.testing.assert_close(h.float(), corrlib.autocorr(x.half().float(), 3), atol=1e-3, rtol=0)


@pytest.mark.parametrize("n", [2, 5, 11, 100, 1000])
def test_crosscorr_default_max_lag_is_statsmodels_nlags_default(n):
    g = torch.Generator().manual_seed(n)
    x, y = (
        torch.randn(n, generator=g, dtype=torch.float64),
        torch.randn(n, generator=g, dtype=torch.float64),
    )
    max_lag = min(int(10 * np.log10(n)), n - 1)
    out = corrlib.crosscorr(x, y)
    assert out.shape == (2 * max_lag + 1,)
    torch.testing.assert_close(out, corrlib.crosscorr(x, y, max_lag))
    assert corrlib.autocorr(x).shape == (max_lag + 1,)
