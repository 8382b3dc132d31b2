"""Speed of corrlib's statistics core against the bare operations and reference libraries.

Every comparison runs both sides on the same data in the same process, one after the other,
and reports the ratio of the best of several repeats (these machines are shared and noisy).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import torch
from _timing import Comparison, best_times
from scipy import stats
from statsmodels.tsa.stattools import acf

import corrlib

# The 100000x256 comparisons take under 0.1 s a call: the best of this many repeats is a
# steadier minimum on a shared machine than the default five.
_REPEATS_LARGE = 11


def _kinds(rng: np.random.Generator) -> dict[str, torch.Tensor]:
    """100000 x 256 float32: zero-mean, offset (mean 5, sd 0.1) and post-ReLU data."""
    z = torch.from_numpy(rng.normal(size=(100_000, 256)).astype(np.float32))
    return {"zero-mean": z, "offset": z * 0.1 + 5.0, "post-ReLU": torch.relu(z)}


def corr_matrix_cases(rng: np.random.Generator) -> list[Comparison]:
    rows = []
    for kind, x in _kinds(rng).items():
        ours, gemm, corrcoef = best_times(
            lambda x=x: corrlib.corr_matrix(x),
            lambda x=x: x.T @ x,
            lambda x=x: torch.corrcoef(x.T),
            repeats=_REPEATS_LARGE,
        )
        name = f"corr_matrix 100000x256 f32, {kind}"
        rows.append(Comparison(name, ours, "bare X.T @ X", gemm, 1.4))
        rows.append(Comparison(name, ours, "torch.corrcoef", corrcoef, 0.85))
    return rows


# The sizes the course's notebooks use: corrlib against torch.corrcoef (variables in rows).
SMALL_SIZES = [(64, 8), (256, 16), (128, 64), (512, 64), (128, 256), (2048, 128)]


def _looped(fn: Callable[[], object], calls: int) -> Callable[[], None]:
    """``fn`` called ``calls`` times: one timing covers many calls of a few microseconds."""

    def loop() -> None:
        for _ in range(calls):
            fn()

    return loop


def small_cases() -> list[Comparison]:
    """Forward, and forward with backward, on the course's sizes (float32)."""
    rows = []
    for n, d in SMALL_SIZES:
        x = torch.randn(n, d, generator=torch.Generator().manual_seed(n + d))
        calls = max(5, 20_000 // max(n * d // 64, 1))
        ours, ref = best_times(
            _looped(lambda x=x: corrlib.corr_matrix(x), calls),
            _looped(lambda x=x: torch.corrcoef(x.T), calls),
            repeats=9,
        )
        name = f"corr_matrix {n}x{d} f32, forward"
        rows.append(Comparison(name, ours / calls, "torch.corrcoef(x.T)", ref / calls, 2.0))
        xg = x.clone().requires_grad_(True)
        ours, ref = best_times(
            _looped(lambda xg=xg: corrlib.corr_matrix(xg).sum().backward(), calls),
            _looped(lambda xg=xg: torch.corrcoef(xg.T).sum().backward(), calls),
            repeats=9,
        )
        name = f"corr_matrix {n}x{d} f32, forward + backward"
        rows.append(Comparison(name, ours / calls, "torch.corrcoef(x.T)", ref / calls, 1.3))
    return rows


def one_nan_case(rng: np.random.Generator) -> Comparison:
    """One NaN under nan_policy="propagate": the product is not computed a second time."""
    x = _kinds(rng)["offset"]
    holed = x.clone()
    holed[12_345, 7] = float("nan")
    ours, clean = best_times(
        lambda: corrlib.corr_matrix(holed), lambda: corrlib.corr_matrix(x), repeats=_REPEATS_LARGE
    )
    name = "corr_matrix 100000x256 f32, one NaN"
    return Comparison(name, ours, "the same without the NaN", clean, 1.5)


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


def running_cases(rng: np.random.Generator) -> list[Comparison]:
    rows = []
    for kind, x in _kinds(rng).items():
        batches = x.split(10_000)

        def stream(batches: tuple[torch.Tensor, ...] = batches) -> torch.Tensor:
            rc = corrlib.RunningCorrelation(256)
            for b in batches:
                rc.update(b)
            return rc.compute()

        ours, gemm = best_times(stream, lambda x=x: x.T @ x, repeats=_REPEATS_LARGE)
        name = f"RunningCorrelation, 10 batches, {kind}"
        rows.append(Comparison(name, ours, "bare X.T @ X", gemm, 1.5))
    return rows


def _with_nans(rng: np.random.Generator, n: int, d: int, one_per_column: bool) -> np.ndarray:
    x = rng.normal(size=(n, 1)) + rng.normal(size=(n, d)) + np.linspace(0, 100, d)
    if one_per_column:
        x[rng.integers(0, n, size=d), np.arange(d)] = np.nan
    else:
        x[rng.random((n, d)) < 0.01] = np.nan
    return x


def nan_omit_cases(rng: np.random.Generator) -> list[Comparison]:
    """Pairwise-complete correlation against pandas (which ranks per pair for Spearman)."""
    rows = []
    cases = [
        ("500x50, one NaN per column", 500, 50, True, ("pearson", "spearman"), 5),
        ("20000x200, 1% NaN", 20_000, 200, False, ("pearson",), 1),
        ("20000x20, 1% NaN", 20_000, 20, False, ("spearman",), 1),
    ]
    for label, n, d, one, methods, repeats in cases:
        x = _with_nans(rng, n, d, one)
        xt, frame = torch.from_numpy(x), pd.DataFrame(x)
        for method in methods:
            ours, ref = best_times(
                lambda m=method, t=xt: corrlib.corr_matrix(t, method=m, nan_policy="omit"),
                lambda m=method, f=frame: f.corr(method=m),
                repeats=repeats,
            )
            name = f'{method} nan_policy="omit" {label}'
            rows.append(Comparison(name, ours, "pandas DataFrame.corr", ref, 1.0))
    return rows


def two_sample_cases(rng: np.random.Generator) -> list[Comparison]:
    """Two 1-D samples of 2e6 against corr_matrix on the stacked (n, 2) array."""
    x = rng.normal(size=2_000_000).astype(np.float32)
    y = (0.5 * x + rng.normal(size=x.size)).astype(np.float32)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    stacked = torch.stack([xt, yt], dim=1)
    rows = []
    for method, fn in (("pearson", corrlib.pearson), ("spearman", corrlib.spearman)):
        ours, ref = best_times(
            lambda fn=fn: fn(xt, yt),
            lambda m=method: corrlib.corr_matrix(stacked, method=m),
            repeats=5 if method == "pearson" else 3,
        )
        rows.append(
            Comparison(f"{method}(x, y), n=2e6 f32", ours, "corr_matrix on (n, 2)", ref, 1.5)
        )
    return rows


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
    holes = _with_nans(rng, 2_000, 12, one_per_column=False)
    for method in ("pearson", "spearman"):
        np.testing.assert_allclose(
            corrlib.corr_matrix(holes, method=method, nan_policy="omit").numpy(),
            pd.DataFrame(holes).corr(method=method).to_numpy(),
            atol=1e-10,
        )
    for kind, x in _kinds(rng).items():
        x = x[:20_000]
        exact = np.corrcoef(x.double().numpy(), rowvar=False)
        got = corrlib.corr_matrix(x).double().numpy()
        assert np.abs(got - exact).max() < 1e-5, kind


def run() -> list[Comparison]:
    rng = np.random.default_rng(0)
    check_agreement(rng)
    return [
        *small_cases(),
        *corr_matrix_cases(rng),
        one_nan_case(rng),
        spearman_case(rng),
        autocorr_case(rng),
        *running_cases(rng),
        *two_sample_cases(rng),
        *nan_omit_cases(rng),
    ]
