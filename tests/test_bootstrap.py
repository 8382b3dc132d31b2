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
        lambda s: s.mean(), torch.as_tensor(x), n_resamples=4000, confidence=0.9, seed=1
    )
    se = x.std(ddof=1) / np.sqrt(len(x))
    # Two Monte Carlo estimates of the same quantiles: agree to a small share of the SE.
    assert float(low) == pytest.approx(ref.low, abs=0.1 * se)
    assert float(high) == pytest.approx(ref.high, abs=0.1 * se)
    assert float(low) < x.mean() < float(high)


def test_same_seed_same_interval_and_numpy_input() -> None:
    x = np.random.default_rng(1).normal(size=50)
    a = corrlib.bootstrap_ci(np.median, x, n_resamples=200, seed=3)
    b = corrlib.bootstrap_ci(np.median, x, n_resamples=200, seed=3)
    c = corrlib.bootstrap_ci(np.median, x, n_resamples=200, seed=4)
    assert (float(a.low), float(a.high)) == (float(b.low), float(b.high))
    assert (float(a.low), float(a.high)) != (float(c.low), float(c.high))
    # Tensors and arrays draw the same resamples for the same seed.
    t = corrlib.bootstrap_ci(lambda s: s.median(), torch.as_tensor(x), n_resamples=200, seed=3)
    # torch.median takes the lower middle value, numpy the average of the two; n=50 is even.
    assert float(t.low) <= float(a.low) + 1e-12


def test_interval_reproduces_manual_resampling() -> None:
    x = torch.arange(10, dtype=torch.float64) ** 2
    gen = torch.Generator().manual_seed(5)
    stats = torch.stack([x[torch.randint(10, (10,), generator=gen)].mean() for _ in range(300)])
    expected = np.percentile(stats.numpy(), [2.5, 97.5])
    low, high = corrlib.bootstrap_ci(torch.mean, x, n_resamples=300, seed=5)
    assert float(low) == pytest.approx(expected[0], rel=1e-12)
    assert float(high) == pytest.approx(expected[1], rel=1e-12)
    basic = corrlib.bootstrap_ci(torch.mean, x, n_resamples=300, seed=5, method="basic")
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
        low, high = corrlib.bootstrap_ci(torch.mean, x, n_resamples=200, confidence=0.9, seed=k)
        covered += int(float(low) <= 2.0 <= float(high))
    assert 0.8 <= covered / trials <= 0.97


def test_paired_data_and_vector_statistic() -> None:
    g = torch.Generator().manual_seed(2)
    x = torch.randn(300, generator=g, dtype=torch.float64)
    y = 0.6 * x + 0.8 * torch.randn(300, generator=g, dtype=torch.float64)
    low, high = corrlib.bootstrap_ci(corrlib.pearson, (x, y), n_resamples=300, seed=0)
    r = float(corrlib.pearson(x, y))
    assert float(low) < r < float(high)
    assert 0.45 < float(low) and float(high) < 0.75
    data = torch.stack([x, y], dim=1)
    vec = corrlib.bootstrap_ci(lambda s: s.mean(dim=0), data, n_resamples=100, seed=0)
    assert vec.low.shape == (2,) and bool((vec.low < vec.high).all())


def test_validation() -> None:
    x = torch.randn(10)
    for bad in (0.0, 1.0, 1.5, -0.1):
        with pytest.raises(ValueError, match="confidence"):
            corrlib.bootstrap_ci(torch.mean, x, confidence=bad)
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="n_resamples"):
            corrlib.bootstrap_ci(torch.mean, x, n_resamples=bad)
    with pytest.raises(ValueError, match="method"):
        corrlib.bootstrap_ci(torch.mean, x, method="bca")
    with pytest.raises(TypeError, match="callable"):
        corrlib.bootstrap_ci("mean", x)
    with pytest.raises(ValueError, match="same length"):
        corrlib.bootstrap_ci(corrlib.pearson, (x, torch.randn(9)))
    with pytest.raises(ValueError, match="scalar"):
        corrlib.bootstrap_ci(torch.mean, torch.tensor(1.0))
    with pytest.raises(ValueError, match="at least one"):
        corrlib.bootstrap_ci(torch.mean, torch.empty(0))


def test_nan_statistic_propagates() -> None:
    x = torch.tensor([1.0, float("nan"), 3.0, 4.0])
    low, high = corrlib.bootstrap_ci(torch.mean, x, n_resamples=50)
    assert torch.isnan(low) and torch.isnan(high)
