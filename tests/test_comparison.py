"""Tests for corrlib.comparison against scipy's paired t test and statsmodels' TOST, Holm and power."""

import math

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestPower
from statsmodels.stats.weightstats import ttost_paired

from corrlib.comparison import Verdict, corrected_resampled, holm, paired_difference, seeds_needed

finite = st.floats(-10, 10, allow_nan=False, allow_infinity=False)


@st.composite
def paired_arms(draw):
    n = draw(st.integers(2, 12))
    a = draw(arrays(np.float64, n, elements=finite))
    b = draw(arrays(np.float64, n, elements=finite))
    return a, b


def _well_spread(a, b):
    d = a - b
    return d.std(ddof=1) > 1e-6 * max(1.0, np.abs(d).max())


def test_matches_scipy_ttest_rel_on_random_data():
    rng = np.random.default_rng(0)
    for n in (2, 3, 5, 8, 30):
        a = rng.normal(size=n)
        b = a - 0.3 + rng.normal(scale=0.4, size=n)
        res = paired_difference(a, b)
        ref = stats.ttest_rel(a, b)
        d = a - b
        assert res.n == n and res.df == n - 1
        assert res.differences == pytest.approx(tuple(d))
        assert res.mean == pytest.approx(d.mean())
        assert res.se == pytest.approx(stats.sem(d))
        assert res.t == pytest.approx(ref.statistic, rel=1e-10)
        assert res.p == pytest.approx(ref.pvalue, rel=1e-10)
        for level in (0.95, 0.9, 0.99):
            assert res.confidence_interval(level) == pytest.approx(
                tuple(ref.confidence_interval(level)), rel=1e-10
            )


@settings(max_examples=60, deadline=None)
@given(paired_arms())
def test_t_p_and_interval_equal_scipy(arms):
    a, b = arms
    assume(_well_spread(a, b))
    res = paired_difference(a, b)
    ref = stats.ttest_rel(a, b)
    assert res.t == pytest.approx(ref.statistic, rel=1e-7, abs=1e-9)
    assert res.p == pytest.approx(ref.pvalue, rel=1e-7, abs=1e-12)
    assert res.confidence_interval() == pytest.approx(
        tuple(ref.confidence_interval()), rel=1e-7, abs=1e-9
    )


@settings(max_examples=60, deadline=None)
@given(paired_arms(), st.floats(0.01, 5.0))
def test_equivalence_equals_statsmodels_ttost_paired(arms, margin):
    a, b = arms
    assume(_well_spread(a, b))
    res = paired_difference(a, b)
    ref = ttost_paired(a, b, -margin, margin)[0]
    assert res.equivalence(margin) == pytest.approx(ref, rel=1e-7, abs=1e-12)


def test_verdict_follows_the_tests():
    rng = np.random.default_rng(1)
    for _ in range(200):
        n = int(rng.integers(2, 10))
        a = rng.normal(size=n)
        b = a + rng.normal(rng.normal(scale=0.5), rng.uniform(0.05, 1.0), size=n)
        margin = float(rng.uniform(0.05, 1.0))
        alpha = float(rng.choice([0.01, 0.05, 0.1]))
        res = paired_difference(a, b)
        p = stats.ttest_rel(a, b).pvalue
        tost = ttost_paired(a, b, -margin, margin)[0]
        expected = (
            ("higher" if res.mean > 0 else "lower")
            if p < alpha
            else "equivalent"
            if tost < alpha
            else "inconclusive"
        )
        assert str(res.verdict(margin=margin, alpha=alpha)) == expected
        # Without a margin a null is never "equivalent".
        assert str(res.verdict(alpha=alpha)) in ("higher", "lower", "inconclusive")


def test_three_seed_effect_of_2_4_standard_errors_is_inconclusive():
    d = np.array([-1.0, 0.0, 1.0])
    d = d + 2.4 * d.std(ddof=1) / math.sqrt(3)  # mean = 2.4 * se exactly
    control = np.array([0.80, 0.82, 0.81])
    res = paired_difference(control + d, control)
    assert res.t == pytest.approx(2.4)
    assert res.mean > 2 * res.se  # the old "2 standard errors" rule called this a win
    assert res.verdict() == "inconclusive"
    assert res.p > 0.05
    low, high = res.confidence_interval()
    assert low < 0 < high


def test_verdict_is_a_str_whose_str_is_the_word():
    res = paired_difference([1.0, 2.0, 3.5], [0.0, 0.9, 2.0])
    v = res.verdict()
    assert isinstance(v, str) and isinstance(v, Verdict)
    assert str(v) == "higher" and v == "higher" and f"{v}" == "higher"
    assert str(paired_difference([0.0, 0.9, 2.0], [1.0, 2.0, 3.5]).verdict()) == "lower"


def test_equivalent_needs_a_margin_and_a_tight_interval():
    rng = np.random.default_rng(2)
    control = rng.normal(size=20)
    treatment = control + rng.normal(scale=0.01, size=20)
    res = paired_difference(treatment, control)
    assert res.verdict() == "inconclusive"
    assert res.verdict(margin=0.05) == "equivalent"
    assert res.verdict(margin=0.0001) == "inconclusive"


def test_two_dimensional_draws_are_averaged_within_each_seed():
    rng = np.random.default_rng(3)
    treatment = rng.normal(0.7, 0.05, size=(5, 20))
    control = rng.normal(0.6, 0.05, size=(5, 20))
    res = paired_difference(treatment, control)
    ref = stats.ttest_rel(treatment.mean(axis=1), control.mean(axis=1))
    assert res.n == 5 and res.df == 4
    assert res.t == pytest.approx(ref.statistic) and res.p == pytest.approx(ref.pvalue)
    # One arm in 2-D, the other with one value per seed.
    mixed = paired_difference(treatment, control.mean(axis=1))
    assert mixed.p == pytest.approx(ref.pvalue)
    assert paired_difference(torch.as_tensor(treatment), control).t == pytest.approx(ref.statistic)


def test_str_shows_mean_interval_p_and_seeds():
    a = [0.71, 0.74, 0.70, 0.73, 0.75]
    b = [0.69, 0.71, 0.69, 0.70, 0.72]
    res = paired_difference(a, b)
    low, high = stats.ttest_rel(a, b).confidence_interval()
    p = stats.ttest_rel(a, b).pvalue
    assert str(res) == f"{res.mean:+.3f} [{low:+.3f}, {high:+.3f}] p={p:.3f} (n = 5 seeds)"
    assert str(res) == "+0.024 [+0.013, +0.035] p=0.004 (n = 5 seeds)"


def test_format_names_the_unit_of_replication():
    res = paired_difference([0.71, 0.74, 0.70, 0.73, 0.75], [0.69, 0.71, 0.69, 0.70, 0.72])
    assert res.format(unit="folds") == "+0.024 [+0.013, +0.035] p=0.004 (n = 5 folds)"
    assert res.format() == str(res)  # the default unit is still "seeds"
    assert corrected_resampled(res, 0.2).format(unit="folds").endswith("(n = 5 folds)")


def test_identical_arms_give_mean_zero_and_p_one():
    res = paired_difference([0.5, 0.6, 0.7], [0.5, 0.6, 0.7])
    assert res.mean == 0 and res.se == 0 and res.t == 0 and res.p == 1.0
    assert res.confidence_interval() == (0.0, 0.0)
    assert res.verdict() == "inconclusive"
    assert res.verdict(margin=0.01) == "equivalent"
    assert "p=1.000" in str(res)


def test_constant_nonzero_difference_matches_scipy():
    res = paired_difference([1.0, 2.0, 3.0], [0.0, 1.0, 2.0])
    ref = stats.ttest_rel([1.0, 2.0, 3.0], [0.0, 1.0, 2.0])
    assert res.t == ref.statistic == math.inf and res.p == ref.pvalue == 0.0
    assert res.verdict() == "higher"


def test_z_is_deprecated_alias_of_t():
    res = paired_difference([1.0, 2.0, 4.0], [1.0, 1.0, 1.0])
    with pytest.warns(DeprecationWarning, match="use .t"):
        assert res.z == res.t


@pytest.mark.parametrize(
    ("a", "b", "match"),
    [
        ([1.0], [2.0], "at least 2 seeds"),
        ([1.0, 2.0], [1.0, 2.0, 3.0], "one value"),
        ([[[1.0, 2.0]]], [[[1.0, 2.0]]], "1-D"),
        ([1.0, float("nan")], [1.0, 2.0], "not finite"),
        ([1.0, 2.0], [1.0, float("inf")], "not finite"),
        (np.zeros((3, 0)), np.zeros(3), "no draws"),
        (["a", "b"], [1.0, 2.0], "numbers"),
    ],
)
def test_bad_input(a, b, match):
    with pytest.raises(ValueError, match=match):
        paired_difference(a, b)


@pytest.mark.parametrize("margin", [0.0, -0.1, float("nan"), float("inf"), "0.1"])
def test_bad_margin(margin):
    res = paired_difference([1.0, 2.0, 4.0], [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="margin"):
        res.equivalence(margin)
    with pytest.raises(ValueError, match="margin"):
        res.verdict(margin=margin)


@pytest.mark.parametrize("level", [0.0, 1.0, 1.5, -0.2])
def test_bad_levels(level):
    res = paired_difference([1.0, 2.0, 4.0], [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="confidence_level"):
        res.confidence_interval(level)
    with pytest.raises(ValueError, match="alpha"):
        res.verdict(alpha=level)


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, st.integers(1, 15), elements=st.floats(0, 1)))
def test_holm_equals_statsmodels(p):
    assert holm(p) == pytest.approx(multipletests(p, method="holm")[1], abs=1e-12)


def test_holm_bad_input():
    for bad in ([], [0.1, 1.2], [0.1, float("nan")], [-0.01], [[0.1, 0.2]]):
        with pytest.raises(ValueError, match="p_values"):
            holm(bad)


@pytest.mark.parametrize(
    ("sd", "margin", "power", "alpha"),
    [
        (1.0, 0.5, 0.8, 0.05),
        (0.02, 0.02, 0.8, 0.05),
        (1.0, 2.0, 0.8, 0.05),
        (1.0, 1.0, 0.9, 0.01),
        (0.3, 0.1, 0.8, 0.05),
        (1.0, 0.05, 0.8, 0.05),
        (0.01, 0.03, 0.95, 0.05),
        (2.0, 0.7, 0.5, 0.1),
    ],
)
def test_seeds_needed_equals_statsmodels(sd, margin, power, alpha):
    ref = TTestPower().solve_power(effect_size=margin / sd, alpha=alpha, power=power)
    assert seeds_needed(sd, margin, power=power, alpha=alpha) == max(2, math.ceil(ref))


def test_seeds_needed_bad_input():
    for kwargs, match in [
        ({"sd": 0.0, "margin": 0.1}, "sd"),
        ({"sd": 1.0, "margin": -0.1}, "margin"),
        ({"sd": 1.0, "margin": 0.1, "power": 1.0}, "power"),
        ({"sd": 1.0, "margin": 0.1, "alpha": 0.0}, "alpha"),
    ]:
        with pytest.raises(ValueError, match=match):
            seeds_needed(**kwargs)


def test_corrected_resampled_widens_the_se_as_nadeau_bengio():
    from corrlib.comparison import corrected_resampled

    rng = np.random.default_rng(3)
    d = 0.01 + rng.normal(scale=0.02, size=100)  # 20 x 5-fold differences
    plain = paired_difference(d, np.zeros_like(d))
    corrected = corrected_resampled(plain, 0.2)
    want_se = d.std(ddof=1) * math.sqrt(1 / 100 + 0.2 / 0.8)
    assert math.isclose(corrected.se, want_se, rel_tol=1e-12)
    assert corrected.mean == plain.mean and corrected.n == plain.n and corrected.df == 99
    t_crit = stats.t.ppf(0.975, 99)
    low, high = corrected.confidence_interval()
    assert math.isclose(low, plain.mean - t_crit * want_se, rel_tol=1e-12)
    assert math.isclose(high, plain.mean + t_crit * want_se, rel_tol=1e-12)
    assert corrected.p > plain.p
    with pytest.raises(ValueError):
        corrected_resampled(plain, 1.0)
    with pytest.raises(TypeError):
        corrected_resampled(d, 0.2)
