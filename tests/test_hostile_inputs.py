"""Inputs that used to give silent wrong numbers: each test failed on the code before issue 13."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

import corrlib
from corrlib import RunningCorrelation


def _pressure_log(n: int, seed: int = 0) -> np.ndarray:
    """Two sensors near 1e5 with small correlated noise and a slow random-walk drift."""
    rng = np.random.default_rng(seed)
    drift = np.cumsum(rng.normal(scale=0.02, size=n))
    noise = rng.normal(size=(n, 2))
    noise[:, 1] = 0.6 * noise[:, 0] + 0.8 * noise[:, 1]
    return 1e5 + drift[:, None] + noise


def _errors(x32: torch.Tensor, r: torch.Tensor) -> tuple[float, float]:
    """Error of ``r`` and of one-shot float32 corr_matrix against float64 on the same data."""
    exact = np.corrcoef(x32.double().numpy(), rowvar=False)[0, 1]
    one_shot = float(corrlib.corr_matrix(x32)[0, 1])
    return abs(float(r[0, 1]) - exact), max(abs(one_shot - exact), 1e-7)


@pytest.mark.parametrize(("n", "batch"), [(20_000, 20), (1_000_000, 256)])
def test_streaming_float32_on_offset_drifting_data(n: int, batch: int) -> None:
    x32 = torch.from_numpy(_pressure_log(n)).float()
    rc = RunningCorrelation(2)
    for part in x32.split(batch):
        rc.update(part)
    err, one_shot = _errors(x32, rc.compute())
    assert err <= 10 * one_shot
    exact_mean = x32.double().mean(0)
    assert (rc.mean.double() - exact_mean).abs().max() < 0.05  # a few ulps of 1e5 in float32


def test_streaming_merge_order_on_offset_drifting_data() -> None:
    x32 = torch.from_numpy(_pressure_log(20_000, seed=1)).float()
    states = [RunningCorrelation(2).update(p) for p in x32.split(20)]
    for order in (range(len(states)), reversed(range(len(states)))):
        acc = RunningCorrelation(2)
        for i in order:
            acc.merge(states[i])
        err, one_shot = _errors(x32, acc.compute())
        assert err <= 10 * one_shot


@pytest.mark.parametrize("chunk_size", [7, 200, 4096])
def test_chunked_corr_matrix_on_offset_drifting_data(chunk_size: int) -> None:
    x32 = torch.from_numpy(_pressure_log(50_000, seed=2)).float()
    err, one_shot = _errors(x32, corrlib.corr_matrix(x32, chunk_size=chunk_size))
    assert err <= 10 * one_shot


@pytest.mark.parametrize("seed", [0, 1])
def test_two_long_float32_samples_far_from_zero(seed: int) -> None:
    """pearson(x, y) on two million offset float32 values: no less exact than corr_matrix.

    One BLAS dot product over the whole sample is off by 2e-6 to 8e-6 in r here (its running
    sums grow large); the sums of products are taken in a tree instead.
    """
    x32 = torch.from_numpy(_pressure_log(2_000_000, seed=seed)).float()
    r = corrlib.pearson(x32[:, 0].contiguous(), x32[:, 1].contiguous())
    assert r.dtype == torch.float32
    err, one_shot = _errors(x32, r.reshape(1, 1).expand(2, 2))
    assert err <= one_shot


def test_int64_timestamps_against_float64_series_match_scipy() -> None:
    rng = np.random.default_rng(0)
    t = 1_700_000_000 + np.arange(2000, dtype=np.int64) * 7
    y = (t - t.mean()) * 1e-3 + rng.normal(scale=1.2, size=t.size)
    expected = stats.pearsonr(t.astype(np.float64), y).statistic
    got = corrlib.pearson(t, y)
    assert got.dtype == torch.float64
    assert abs(float(got) - expected) < 1e-12
    assert abs(expected - 0.949) < 0.01
    # against a float32 partner: computed in float64, returned in float32
    got32 = corrlib.pearson(torch.from_numpy(t), torch.from_numpy(y).float())
    assert got32.dtype == torch.float32
    assert abs(float(got32) - stats.pearsonr(t, y.astype(np.float32)).statistic) < 1e-6
    # matrices too
    m = corrlib.corr_matrix(np.stack([t, t + (y * 100).astype(np.int64)], axis=1))
    assert m.dtype == torch.get_default_dtype()
    ref = np.corrcoef(np.stack([t, t + (y * 100).astype(np.int64)], axis=1), rowvar=False)
    np.testing.assert_allclose(m.double().numpy(), ref, atol=1e-6)


def test_spearman_of_large_int64_ids_with_a_float32_partner() -> None:
    ids = 2**40 + np.arange(500, dtype=np.int64)
    partner = torch.arange(500, dtype=torch.float32)
    with np.errstate(all="ignore"):
        expected = stats.spearmanr(ids, partner.numpy()).statistic
    assert expected == 1.0
    got = corrlib.spearman(torch.from_numpy(ids), partner)
    assert float(got) == 1.0 and got.dtype == torch.float32
    m = corrlib.corr_matrix(torch.from_numpy(ids)[:, None], partner[:, None], method="spearman")
    assert float(m[0, 0]) == 1.0
    # above 2^24 neighbouring ids must not merge into ties
    ids25 = 2**25 + np.arange(0, 1000, 1, dtype=np.int64)
    assert float(corrlib.spearman(ids25, np.arange(1000.0))) == 1.0


UNSIGNED = [np.uint8, np.uint16, np.uint32, np.uint64]


@pytest.mark.parametrize("dtype", UNSIGNED)
def test_unsigned_integers_are_accepted_everywhere(dtype: type) -> None:
    rng = np.random.default_rng(1)
    x = rng.integers(0, 200, size=(60, 3)).astype(dtype)
    xf = x.astype(np.float64)
    for t in (x, torch.from_numpy(x)):
        np.testing.assert_allclose(
            corrlib.corr_matrix(t).double().numpy(), np.corrcoef(xf, rowvar=False), atol=1e-6
        )
        np.testing.assert_allclose(
            corrlib.corr_matrix(t, method="spearman").double().numpy(),
            stats.spearmanr(xf).statistic,
            atol=1e-6,
        )
        assert (
            abs(
                float(corrlib.spearman(t[:, 0], t[:, 1]))
                - stats.spearmanr(xf[:, 0], xf[:, 1]).statistic
            )
            < 1e-6
        )
        assert (
            abs(float(corrlib.pearson(t[:, 0], t[:, 1])) - np.corrcoef(xf[:, 0], xf[:, 1])[0, 1])
            < 1e-6
        )
        rc = RunningCorrelation(3).update(t)
        np.testing.assert_allclose(
            rc.compute().double().numpy(), np.corrcoef(xf, rowvar=False), atol=1e-6
        )
        assert torch.isfinite(corrlib.autocorr(t[:, 0], 5)).all()
        assert np.isfinite(corrlib.pearson_test(t[:, 0], t[:, 1]).pvalue)


def test_nan_omit_matches_pandas_to_1e10_pearson_and_spearman() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(500, 12)) + np.linspace(0, 1e3, 12)
    x[:, 3] = np.round(x[:, 3])  # ties
    x[rng.random(x.shape) < 0.05] = np.nan
    x[:, 5] = 7.0  # constant
    x[:, 5][::3] = np.nan
    for method in ("pearson", "spearman"):
        expected = pd.DataFrame(x).corr(method=method).to_numpy()
        with pytest.warns(corrlib.ConstantInputWarning):
            got = corrlib.corr_matrix(x, method=method, nan_policy="omit").numpy()
        np.testing.assert_allclose(got, expected, atol=1e-10)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))


def test_nan_omit_cross_block_matches_pairwise_scipy() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(80, 3))
    y = rng.normal(size=(80, 2)) + x[:, :2]
    x[rng.random(x.shape) < 0.1] = np.nan
    y[rng.random(y.shape) < 0.1] = np.nan
    for method, ref in (("pearson", stats.pearsonr), ("spearman", stats.spearmanr)):
        got = corrlib.corr_matrix(x, y, method=method, nan_policy="omit").numpy()
        for i in range(3):
            for j in range(2):
                keep = ~np.isnan(x[:, i]) & ~np.isnan(y[:, j])
                assert abs(got[i, j] - ref(x[keep, i], y[keep, j]).statistic) < 1e-10


def test_one_kernel_same_edge_cases_for_matrix_stream_and_covariance() -> None:
    rng = np.random.default_rng(5)
    x = torch.from_numpy(rng.normal(size=(300, 3)) + rng.normal(size=(300, 1)))
    expected = corrlib.corr_matrix(x)
    big = x * 1e200  # squares overflow float64
    torch.testing.assert_close(corrlib.corr_matrix(big), expected)
    stream = RunningCorrelation(3)
    for part in big.split(70):
        stream.update(part)
    torch.testing.assert_close(stream.compute(), expected)
    s = torch.cov(x.T) * 1e300  # products of two variances overflow float64
    torch.testing.assert_close(corrlib.cov_to_corr(s), expected)
    tiny = x * 1e-200  # squares underflow
    torch.testing.assert_close(corrlib.corr_matrix(tiny), expected)
    torch.testing.assert_close(RunningCorrelation(3).update(tiny).compute(), expected)
    torch.testing.assert_close(corrlib.cov_to_corr(torch.cov(x.T) * 1e-300), expected)
