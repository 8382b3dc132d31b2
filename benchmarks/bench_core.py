"""Speed of corrlib's statistics core against the bare operations and reference libraries.

Every comparison runs both sides on the same data in the same process, one after the other,
and reports the ratio of the best of several repeats (these machines are shared and noisy).
"""

from __future__ import annotations

import numpy as np
import torch
from _timing import Comparison, best_times
from scipy import stats
from statsmodels.tsa.stattools import acf

import corrlib


def corr_matrix_cases(rng: np.random.Generator) -> list[Comparison]:
    x = torch.from_numpy(rng.normal(size=(100_000, 256)).astype(np.float32))
    ours, gemm, corrcoef = best_times(
        lambda: corrlib.corr_matrix(x), lambda: x.T @ x, lambda: torch.corrcoef(x.T)
    )
    return [
        Comparison("corr_matrix 100000x256 f32", ours, "bare X.T @ X", gemm, 1.3),
        Comparison("corr_matrix 100000x256 f32", ours, "torch.corrcoef", corrcoef, 1.0),
    ]


def spearman_case(rng: np.random.Generator) -> Comparison:
    x = rng.integers(0, 50, size=(100_000, 64))
    xt = torch.from_numpy(x)
    ours, ref = best_times(
        lambda: corrlib.corr_matrix(xt, method="spearman"), lambda: stats.spearmanr(x), repeats=3
    )
    return Comparison("Spearman 100000x64 int, ties", ours, "scipy.stats.spearmanr", ref, 1.0)


def autocorr_case(rng: np.random.Generator) -> Comparison:
    x = rng.normal(size=1_000_000).cumsum()
    xt = torch.from_numpy(x)
    ours, ref = best_times(
        lambda: corrlib.autocorr(xt, 100), lambda: acf(x, nlags=100, fft=True), repeats=3
    )
    return Comparison("autocorr n=1e6, 100 lags", ours, "statsmodels acf(fft=True)", ref, 1.0)


def running_case(rng: np.random.Generator) -> Comparison:
    x = torch.from_numpy(rng.normal(size=(100_000, 256)).astype(np.float32))
    batches = x.split(10_000)

    def stream() -> torch.Tensor:
        rc = corrlib.RunningCorrelation(256)
        for b in batches:
            rc.update(b)
        return rc.compute()

    ours, gemm = best_times(stream, lambda: x.T @ x)
    return Comparison("RunningCorrelation, 10 batches", ours, "bare X.T @ X", gemm, 1.5)


def check_agreement(rng: np.random.Generator) -> None:
    """The timed code must also be right: compare with the references once."""
    x = rng.integers(0, 50, size=(5_000, 8))
    np.testing.assert_allclose(
        corrlib.corr_matrix(x, method="spearman").numpy(), stats.spearmanr(x).statistic, atol=1e-6
    )
    s = rng.normal(size=10_000).cumsum()
    np.testing.assert_allclose(
        corrlib.autocorr(s, 20).numpy(), acf(s, nlags=20, fft=True), atol=1e-9
    )


def run() -> list[Comparison]:
    rng = np.random.default_rng(0)
    check_agreement(rng)
    return [*corr_matrix_cases(rng), spearman_case(rng), autocorr_case(rng), running_case(rng)]
