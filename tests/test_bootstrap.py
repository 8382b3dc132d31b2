"""Tests of corrlib.bootstrap_ci."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import torch

import corrlib


def test_percentile_interval_agrees_with_scipy() -> None:
    rng = np.random.default_rng(0)
    x = rng.gamma(2.0, 1.5, size=120)
    ref = scipy.stats.bootstrap(
        (x,), np.mean, n_resamples=4000, confidence_level=0.9, method="percentile", random_state=1
    ).confidence_interval
    low, high = corrlib.bootstrap_ci(
        torch.as_tensor(x), lambda s: s.mean(), n_resamples=4000, confidence_level=0.9, rng=1
    )
    se = x.std(ddof=1) / np.sqrt(len(x))
    # Two Monte Carlo estimates of the same quantiles: agree to a small share of the SE.
    assert float(low) == pytest.approx(ref.low, abs=0.1 * se)
    assert float(high) == pytest.approx(ref.high, abs=0.1 * se)
    assert float(low) < x.mean() < float(high)


def test_same_seed_same_interval_and_numpy_input() -> None:
    x = np.random.default_rng(1).normal(size=50)
    a = corrlib.bootstrap_ci(x, np.median, n_resamples=200, rng=3)
    b = corrlib.bootstrap_ci(x, np.median, n_resamples=200, rng=3)
    c = corrlib.bootstrap_ci(x, np.median, n_resamples=200, rng=4)
    assert (float(a.low), float(a.high)) == (float(b.low), float(b.high))
    assert (float(a.low), float(a.high)) != (float(c.low), float(c.high))
    # Tensors and arrays draw the same resamples for the same seed.
    t = corrlib.bootstrap_ci(torch.as_tensor(x), lambda s: s.median(), n_resamples=200, rng=3)
    # torch.median takes the lower middle value, numpy the average of the two; n=50 is even.
    assert float(t.low) <= float(a.low) + 1e-12


def test_interval_reproduces_manual_resampling() -> None:
    x = torch.arange(10, dtype=torch.float64) ** 2
    gen = torch.Generator().manual_seed(5)
    stats = torch.stack([x[torch.randint(10, (10,), generator=gen)].mean() for _ in range(300)])
    expected = np.percentile(stats.numpy(), [2.5, 97.5])
    low, high = corrlib.bootstrap_ci(x, torch.mean, n_resamples=300, rng=5)
    assert float(low) == pytest.approx(expected[0], rel=1e-12)
    assert float(high) == pytest.approx(expected[1], rel=1e-12)
    basic = corrlib.bootstrap_ci(x, torch.mean, n_resamples=300, rng=5, method="basic")
    full = float(x.mean())
    assert float(basic.low) == pytest.approx(2 * full - expected[1], rel=1e-12)
    assert float(basic.high) == pytest.approx(2 * full - expected[0], rel=1e-12)


def test_coverage_of_the_true_mean() -> None:
    # 200 normal samples of size 40: a 90% percentile interval should cover the mean about
    # 90% of the time (the percentile bootstrap undercovers a little at this size).
    gen = torch.Generator().manual_seed(0)
    covered = 0
    trials = 200
    for k in range(trials):
        x = 2.0 + torch.randn(40, generator=gen, dtype=torch.float64)
        low, high = corrlib.bootstrap_ci(
            x, torch.mean, n_resamples=200, confidence_level=0.9, rng=k
        )
        covered += int(float(low) <= 2.0 <= float(high))
    assert 0.8 <= covered / trials <= 0.97


def test_paired_data_and_vector_statistic() -> None:
    g = torch.Generator().manual_seed(2)
    x = torch.randn(300, generator=g, dtype=torch.float64)
    y = 0.6 * x + 0.8 * torch.randn(300, generator=g, dtype=torch.float64)
    low, high = corrlib.bootstrap_ci((x, y), corrlib.pearson, paired=True, n_resamples=300, rng=0)
    r = float(corrlib.pearson(x, y))
    assert float(low) < r < float(high)
    assert 0.45 < float(low) and float(high) < 0.75
    data = torch.stack([x, y], dim=1)
    vec = corrlib.bootstrap_ci(data, lambda s: s.mean(dim=0), n_resamples=100, rng=0)
    assert vec.low.shape == (2,) and bool((vec.low < vec.high).all())


def test_validation() -> None:
    x = torch.randn(10)
    for bad in (0.0, 1.0, 1.5, -0.1):
        with pytest.raises(ValueError, match="confidence"):
            corrlib.bootstrap_ci(x, torch.mean, confidence_level=bad)
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="n_resamples"):
            corrlib.bootstrap_ci(x, torch.mean, n_resamples=bad)
    with pytest.raises(ValueError, match="method"):
        corrlib.bootstrap_ci(x, torch.mean, method="studentized")
    with pytest.raises(TypeError, match="callable"):
        corrlib.bootstrap_ci(x, "mean")
    with pytest.raises(ValueError, match="same length"):
        corrlib.bootstrap_ci((x, torch.randn(9)), corrlib.pearson, paired=True)
    with pytest.raises(ValueError, match="scalar"):
        corrlib.bootstrap_ci(torch.tensor(1.0), torch.mean)
    with pytest.raises(ValueError, match="at least one"):
        corrlib.bootstrap_ci(torch.empty(0), torch.mean)


def test_nan_statistic_propagates() -> None:
    x = torch.tensor([1.0, float("nan"), 3.0, 4.0])
    low, high = corrlib.bootstrap_ci(x, torch.mean, n_resamples=50)
    assert torch.isnan(low) and torch.isnan(high)


def test_default_resamples_are_scipys() -> None:
    import inspect

    default = inspect.signature(corrlib.bootstrap_ci).parameters["n_resamples"].default
    assert default == inspect.signature(scipy.stats.bootstrap).parameters["n_resamples"].default


def test_bca_agrees_with_scipy_on_a_skewed_sample() -> None:
    rng = np.random.default_rng(4)
    x = rng.exponential(2.0, size=60)
    ref = scipy.stats.bootstrap(
        (x,), np.mean, n_resamples=20000, confidence_level=0.9, method="BCa", random_state=0
    ).confidence_interval
    low, high = corrlib.bootstrap_ci(
        x, np.mean, n_resamples=20000, confidence_level=0.9, method="BCa"
    )
    percentile = corrlib.bootstrap_ci(x, np.mean, n_resamples=20000, confidence_level=0.9)
    se = x.std(ddof=1) / np.sqrt(len(x))
    assert float(low) == pytest.approx(ref.low, abs=0.05 * se)
    assert float(high) == pytest.approx(ref.high, abs=0.05 * se)
    # The mean of a right-skewed sample: BCa moves both ends up against the percentile interval.
    assert float(low) > float(percentile.low) and float(high) > float(percentile.high)
    lower_case = corrlib.bootstrap_ci(
        x, np.mean, n_resamples=20000, confidence_level=0.9, method="bca"
    )
    assert (float(lower_case.low), float(lower_case.high)) == (float(low), float(high))


def test_bca_reproduces_the_formula_on_its_own_resamples() -> None:
    x = torch.arange(12, dtype=torch.float64) ** 1.5
    gen = torch.Generator().manual_seed(7)
    boot = np.array([float(x[torch.randint(12, (12,), generator=gen)].mean()) for _ in range(500)])
    full = float(x.mean())
    jack = np.array([float(torch.cat([x[:i], x[i + 1 :]]).mean()) for i in range(12)])
    z0 = scipy.stats.norm.ppf((boot < full).mean())
    u = jack.mean() - jack
    a = (u**3).sum() / (6 * (u**2).sum() ** 1.5)
    z = scipy.stats.norm.ppf([0.025, 0.975])
    levels = scipy.stats.norm.cdf(z0 + (z0 + z) / (1 - a * (z0 + z)))
    expected = np.quantile(boot, levels)
    low, high = corrlib.bootstrap_ci(x, torch.mean, n_resamples=500, rng=7, method="BCa")
    assert (float(low), float(high)) == pytest.approx(tuple(expected), rel=1e-12)


def test_bca_vector_statistic_and_nan() -> None:
    data = torch.randn(40, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    vec = corrlib.bootstrap_ci(data, lambda s: s.mean(dim=0), n_resamples=300, method="BCa")
    assert vec.low.shape == (3,) and bool((vec.low < data.mean(dim=0)).all())
    assert bool((data.mean(dim=0) < vec.high).all())
    x = torch.tensor([1.0, float("nan"), 3.0, 4.0])
    low, high = corrlib.bootstrap_ci(x, torch.mean, n_resamples=50, method="BCa")
    assert torch.isnan(low) and torch.isnan(high)


def test_list_works_like_tuple_and_unpaired_samples_resample_independently() -> None:
    g = torch.Generator().manual_seed(3)
    x = torch.randn(300, generator=g, dtype=torch.float64)
    y = 0.6 * x + 0.8 * torch.randn(300, generator=g, dtype=torch.float64)
    as_tuple = corrlib.bootstrap_ci((x, y), corrlib.pearson, paired=True, n_resamples=200)
    as_list = corrlib.bootstrap_ci([x, y], corrlib.pearson, paired=True, n_resamples=200)
    assert (float(as_tuple.low), float(as_tuple.high)) == (float(as_list.low), float(as_list.high))
    # Unpaired: the two groups (of different sizes) are resampled independently, as scipy.
    a = np.random.default_rng(0).normal(1.0, 1.0, size=80)
    b = np.random.default_rng(1).normal(0.0, 2.0, size=50)
    low, high = corrlib.bootstrap_ci((a, b), lambda u, v: u.mean() - v.mean(), n_resamples=20000)
    ref = scipy.stats.bootstrap(
        (a, b),
        lambda u, v: u.mean() - v.mean(),
        n_resamples=20000,
        method="percentile",
        vectorized=False,
        rng=np.random.default_rng(2),
    ).confidence_interval
    se = np.sqrt(a.var(ddof=1) / 80 + b.var(ddof=1) / 50)
    assert float(low) == pytest.approx(ref.low, abs=0.1 * se)
    assert float(high) == pytest.approx(ref.high, abs=0.1 * se)
    with pytest.raises(ValueError, match="BCa"):
        corrlib.bootstrap_ci((a, b), lambda u, v: u.mean() - v.mean(), method="BCa")


def test_old_argument_order_and_keywords_are_deprecated_but_work() -> None:
    x = torch.arange(20, dtype=torch.float64)
    y = x + torch.randn(20, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    new = corrlib.bootstrap_ci(
        (x, y), corrlib.pearson, paired=True, n_resamples=100, confidence_level=0.9, rng=4
    )
    with pytest.warns(DeprecationWarning, match=r"bootstrap_ci\(data, statistic\)"):
        old = corrlib.bootstrap_ci(
            corrlib.pearson, (x, y), n_resamples=100, rng=4, confidence_level=0.9
        )
    assert (float(old.low), float(old.high)) == (float(new.low), float(new.high))
    with pytest.warns(DeprecationWarning, match="confidence_level"):
        via_confidence = corrlib.bootstrap_ci(x, torch.mean, n_resamples=50, confidence=0.9)
    with pytest.warns(DeprecationWarning, match="rng"):
        via_seed = corrlib.bootstrap_ci(x, torch.mean, n_resamples=50, seed=0, confidence_level=0.9)
    assert float(via_confidence.low) == float(via_seed.low)
    with pytest.warns(DeprecationWarning, match="ConfidenceInterval"):
        alias = corrlib.bootstrap.BootstrapInterval
    assert alias is corrlib.inference.ConfidenceInterval
    assert isinstance(new, corrlib.inference.ConfidenceInterval)


def test_rng_and_integer_kinds() -> None:
    x = torch.randn(30, generator=torch.Generator().manual_seed(1))
    a = corrlib.bootstrap_ci(x, torch.mean, n_resamples=np.int64(50), rng=np.int64(3))
    b = corrlib.bootstrap_ci(x, torch.mean, n_resamples=50, rng=torch.Generator().manual_seed(3))
    assert (float(a.low), float(a.high)) == (float(b.low), float(b.high))
    with pytest.raises(ValueError, match="rng"):
        corrlib.bootstrap_ci(x, torch.mean, n_resamples=10, rng=0.5)
