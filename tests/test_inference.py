"""fisher_ci, pearson_test, spearman_test and proportion_ci against scipy and statsmodels."""

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
        lo, hi = res.confidence_interval(confidence_level=conf)
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
    with pytest.raises(ValueError, match="confidence_level"):
        corrlib.fisher_ci(0.2, 10, confidence_level=1.5)
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


@pytest.mark.parametrize("method", ["wilson", "clopper-pearson"])
def test_proportion_ci_equals_statsmodels(method):
    from statsmodels.stats.proportion import proportion_confint

    sm_method = {"wilson": "wilson", "clopper-pearson": "beta"}[method]
    for n in (1, 2, 10, 37, 359, 10000):
        for k in sorted({0, 1, n // 3, n // 2, n - 1, n} - {-1}):
            for level in (0.9, 0.95, 0.99):
                low, high = corrlib.inference.proportion_ci(k, n, level, method=method)
                ref = proportion_confint(k, n, alpha=1 - level, method=sm_method)
                assert (low, high) == pytest.approx(ref, abs=1e-12)
                assert 0.0 <= low <= k / n <= high <= 1.0


def test_proportion_ci_arrays_and_numpy_counts():
    from statsmodels.stats.proportion import proportion_confint

    k, n = np.array([3, 50, 99]), np.array([10, 100, 100])
    low, high = corrlib.inference.proportion_ci(k, n)
    ref_low, ref_high = proportion_confint(k, n, method="wilson")
    np.testing.assert_allclose(low, ref_low, atol=1e-12)
    np.testing.assert_allclose(high, ref_high, atol=1e-12)
    scalar = corrlib.inference.proportion_ci(np.int64(90), np.int64(100))
    assert isinstance(scalar.low, float) and scalar == pytest.approx((0.8256, 0.9448), abs=1e-4)


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        ((11, 10), {}, "must not exceed n"),
        ((-1, 10), {}, "non-negative whole"),
        ((2.5, 10), {}, "non-negative whole"),
        ((1, 0), {}, "at least 1"),
        ((1, 10), {"method": "normal"}, "method"),
        ((1, 10), {"confidence_level": 1.0}, "confidence_level"),
        ((True, 10), {}, "boolean"),
    ],
)
def test_proportion_ci_bad_input(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        corrlib.inference.proportion_ci(*args, **kwargs)


@pytest.mark.parametrize("alternative", ["two-sided", "less", "greater"])
@pytest.mark.parametrize("n", [3, 5, 12, 200])
def test_pearson_and_spearman_tests_match_scipy_for_each_alternative(alternative, n):
    rng = np.random.default_rng(n)
    x = rng.normal(size=n)
    y = -0.2 * x + rng.normal(size=n)
    ours = corrlib.pearson_test(x, y, alternative=alternative)
    ref = stats.pearsonr(x, y, alternative=alternative)
    assert ours.statistic == pytest.approx(ref.statistic, abs=1e-12)
    assert ours.pvalue == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-300)
    if n >= 4:
        for level in (0.9, 0.95):
            ci = ours.confidence_interval(confidence_level=level)
            ref_ci = ref.confidence_interval(confidence_level=level)
            assert ci == pytest.approx((ref_ci.low, ref_ci.high), abs=1e-12)
    rho = corrlib.spearman_test(x, y, alternative=alternative)
    ref_rho = stats.spearmanr(x, y, alternative=alternative)
    assert rho.statistic == pytest.approx(ref_rho.statistic, abs=1e-12)
    assert rho.pvalue == pytest.approx(ref_rho.pvalue, rel=1e-9, abs=1e-300)


def test_spearman_test_with_ties_matches_scipy():
    x = np.array([1, 2, 2, 3, 3, 3, 4, 5, 5, 6])
    y = np.array([2, 1, 4, 3, 3, 5, 4, 6, 7, 7])
    ours, ref = corrlib.spearman_test(x, y), stats.spearmanr(x, y)
    assert ours.statistic == pytest.approx(ref.statistic) and ours.pvalue == pytest.approx(
        ref.pvalue
    )


def test_results_unpack_and_index_like_scipy():
    x, y = np.arange(8.0), np.array([1.0, 3, 2, 5, 4, 6, 8, 7])
    for res, ref in (
        (corrlib.pearson_test(x, y), stats.pearsonr(x, y)),
        (corrlib.spearman_test(x, y), stats.spearmanr(x, y)),
    ):
        r, p = res
        assert len(res) == 2 and res[0] == r and res[1] == p and res[-1] == p
        assert tuple(res[:2]) == (r, p)
        assert r == pytest.approx(ref[0]) and p == pytest.approx(ref[1])


@pytest.mark.parametrize("test", ["pearson_test", "spearman_test"])
def test_nan_policy(test):
    fn, ref_fn = (
        getattr(corrlib, test),
        {"pearson_test": stats.pearsonr, "spearman_test": stats.spearmanr}[test],
    )
    x = np.array([1.0, 2.0, np.nan, 4.0, 5.0, 7.0, 6.0])
    y = np.array([2.0, 1.0, 4.0, 3.0, np.nan, 6.0, 8.0])
    omitted = fn(x, y, nan_policy="omit")
    keep = ~(np.isnan(x) | np.isnan(y))
    ref = ref_fn(x[keep], y[keep])
    assert omitted.n == keep.sum()
    assert omitted.statistic == pytest.approx(ref[0]) and omitted.pvalue == pytest.approx(ref[1])
    propagated = fn(x, y)
    assert math.isnan(propagated.statistic) and math.isnan(propagated.pvalue)
    with pytest.raises(ValueError, match="NaN"):
        fn(x, y, nan_policy="raise")
    with pytest.raises(ValueError, match="nan_policy"):
        fn(x, y, nan_policy="drop")
    with pytest.raises(ValueError, match="alternative"):
        fn(x, y, alternative="two_sided")


def test_fisher_ci_accepts_numpy_and_refuses_r_outside_the_unit_interval():
    r = np.array([-0.3, 0.0, 0.8, np.nan])
    low, high = corrlib.fisher_ci(r, np.int64(40), confidence_level=0.9)
    assert isinstance(low, np.ndarray) and low.shape == (4,)
    for k in range(3):
        assert (low[k], high[k]) == pytest.approx(corrlib.fisher_ci(float(r[k]), 40, 0.9))
    assert np.isnan(low[3]) and np.isnan(high[3])
    for bad in (torch.tensor([0.2, 1.2]), torch.tensor(-1.5), np.array([0.2, -1.01]), 1.5):
        with pytest.raises(ValueError, match=r"\[-1, 1\]"):
            corrlib.fisher_ci(bad, 10)
    for bad_n in (3, 4.5, True, "10"):
        with pytest.raises(ValueError, match="n >= 4"):
            corrlib.fisher_ci(0.2, bad_n)


def test_confidence_keyword_is_deprecated_but_works():
    with pytest.warns(DeprecationWarning, match="confidence_level"):
        old = corrlib.fisher_ci(0.3, 30, confidence=0.9)
    assert old == corrlib.fisher_ci(0.3, 30, confidence_level=0.9)
    res = corrlib.pearson_test(np.arange(6.0), np.array([1.0, 0, 3, 2, 5, 4]))
    with pytest.warns(DeprecationWarning, match="confidence_level"):
        assert res.confidence_interval(confidence=0.8) == res.confidence_interval(0.8)
