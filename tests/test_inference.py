"""fisher_ci and pearson_test against scipy.stats.pearsonr."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

import corrlib


@pytest.mark.parametrize("n", [4, 10, 57, 1000])
def test_pearson_test_matches_scipy(n):
    rng = np.random.default_rng(n)
    x = rng.normal(size=n)
    y = 0.3 * x + rng.normal(size=n)
    ref = stats.pearsonr(x, y)
    res = corrlib.pearson_test(x, y)
    assert res.statistic == pytest.approx(ref.statistic, abs=1e-12)
    assert res.pvalue == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-300)
    for conf in (0.9, 0.95, 0.99):
        lo, hi = res.confidence_interval(confidence=conf)
        ref_ci = ref.confidence_interval(confidence_level=conf)
        assert lo == pytest.approx(ref_ci.low, abs=1e-12)
        assert hi == pytest.approx(ref_ci.high, abs=1e-12)


def test_fisher_ci_tensor_and_float_agree():
    lo, hi = corrlib.fisher_ci(0.4, 50)
    tlo, thi = corrlib.fisher_ci(torch.tensor([0.4], dtype=torch.float64), 50)
    assert float(tlo) == pytest.approx(lo) and float(thi) == pytest.approx(hi)
    assert lo < 0.4 < hi


def test_fisher_ci_coverage_is_near_nominal():
    rng = np.random.default_rng(0)
    rho, n, hits, trials = 0.5, 30, 0, 2000
    cov = [[1, rho], [rho, 1]]
    for _ in range(trials):
        x, y = rng.multivariate_normal([0, 0], cov, size=n).T
        lo, hi = corrlib.fisher_ci(float(np.corrcoef(x, y)[0, 1]), n)
        hits += lo <= rho <= hi
    assert 0.93 < hits / trials < 0.97


def test_bad_arguments():
    with pytest.raises(ValueError, match="n >= 4"):
        corrlib.fisher_ci(0.2, 3)
    with pytest.raises(ValueError, match="confidence"):
        corrlib.fisher_ci(0.2, 10, confidence=1.5)
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        corrlib.fisher_ci(1.2, 10)


def test_constant_input_gives_nan_result():
    with pytest.warns(corrlib.ConstantInputWarning):
        res = corrlib.pearson_test([1.0, 1.0, 1.0, 1.0], [1.0, 2.0, 3.0, 4.0])
    assert math.isnan(res.statistic) and math.isnan(res.pvalue)


def test_constant_input_interval_is_nan_and_result_unpacks_like_scipy():
    with pytest.warns(corrlib.ConstantInputWarning):
        res = corrlib.pearson_test([1.0, 1.0, 1.0, 1.0, 1.0], [1.0, 2.0, 3.0, 4.0, 5.0])
    lo, hi = res.confidence_interval()
    assert math.isnan(lo) and math.isnan(hi)
    x = np.arange(10.0)
    y = np.array([1.0, 3, 2, 5, 4, 6, 8, 7, 9, 11])
    r, p = corrlib.pearson_test(x, y)
    ref = stats.pearsonr(x, y)
    assert r == pytest.approx(ref.statistic) and p == pytest.approx(ref.pvalue)
    ours = corrlib.pearson_test(x, y).confidence_interval(confidence_level=0.9)
    theirs = ref.confidence_interval(confidence_level=0.9)
    assert ours.low == pytest.approx(theirs.low) and ours.high == pytest.approx(theirs.high)
    with pytest.raises(ValueError, match="confidence_level"):
        corrlib.pearson_test(x, y).confidence_interval(confidence_level=1.5)
