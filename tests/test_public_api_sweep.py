"""Sweeps over every public function: half precision, the caller's line in warnings, argument
errors that name the argument."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

import corrlib
import corrlib.hooks
import corrlib.losses
import corrlib.similarity
import corrlib.sparse
import corrlib.whitening

N, D = 200, 4


def _inputs(dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """Data of magnitude ~300 in ``dtype`` (what a half-precision model produces)."""
    rng = np.random.default_rng(0)
    base = rng.normal(size=(N, 1))
    x = 300 + 300 * (0.6 * base + 0.8 * rng.normal(size=(N, D)))
    a = rng.normal(scale=17.0, size=(50, D))
    cov = a.T @ a / 50 + np.eye(D) * 30  # symmetric positive definite, entries ~300
    maps = 4.0 + rng.normal(size=(2, 8, 64, 64))  # magnitude ~4 at 64 x 64
    big_maps = 300 * rng.normal(size=(2, 3, 8, 8))
    return {
        name: torch.from_numpy(value).to(dtype)
        for name, value in {"x": x, "cov": cov, "maps": maps, "big_maps": big_maps}.items()
    }


def _stat(r: Any) -> torch.Tensor:
    return torch.as_tensor(r.statistic)


def _streamed(x: torch.Tensor) -> torch.Tensor:
    rc = corrlib.RunningCorrelation(x.shape[1])
    for part in x.split(37):
        rc.update(part)
    return rc.compute()


def _minibatch_cka(x: torch.Tensor) -> torch.Tensor:
    acc = corrlib.similarity.MinibatchCKA()
    for xb, yb in zip(x[:, :2].split(50), x[:, 2:].split(50), strict=True):
        acc.update(xb, yb)
    return acc.compute()


# name -> function of the inputs dict; every one returns a tensor (or a tuple of tensors).
SWEEP: dict[str, Callable[[dict[str, torch.Tensor]], Any]] = {
    "pearson": lambda d: corrlib.pearson(d["x"][:, 0], d["x"][:, 1]),
    "spearman": lambda d: corrlib.spearman(d["x"][:, 0], d["x"][:, 1]),
    "corr_matrix": lambda d: corrlib.corr_matrix(d["x"]),
    "corr_matrix cross": lambda d: corrlib.corr_matrix(d["x"][:, :2], d["x"][:, 2:]),
    "corr_matrix chunked": lambda d: corrlib.corr_matrix(d["x"], chunk_size=30),
    "corr_matrix spearman": lambda d: corrlib.corr_matrix(d["x"], method="spearman"),
    "pearson_test": lambda d: _stat(corrlib.pearson_test(d["x"][:, 0], d["x"][:, 1])),
    "fisher_ci": lambda d: corrlib.fisher_ci(corrlib.pearson(d["x"][:, 0], d["x"][:, 1]), N),
    "autocorr": lambda d: corrlib.autocorr(d["x"][:, 0], 5),
    "crosscorr": lambda d: corrlib.crosscorr(d["x"][:, 0], d["x"][:, 1], 5),
    "estimate_lag": lambda d: torch.tensor(float(corrlib.estimate_lag(d["x"][:, 0], d["x"][:, 1]))),
    "RunningCorrelation": lambda d: _streamed(d["x"]),
    "RunningCorrelation.covariance": lambda d: (
        corrlib.RunningCorrelation(D).update(d["x"] / 10).covariance()
    ),
    "threshold_corr": lambda d: corrlib.threshold_corr(d["cov"], 0.5),
    "ledoit_wolf": lambda d: corrlib.ledoit_wolf(d["x"] / 10),
    "cov_to_corr": lambda d: corrlib.cov_to_corr(d["cov"]),
    "partial_corr": lambda d: corrlib.partial_corr(d["x"]),
    "partial_corr precision": lambda d: corrlib.partial_corr(precision=d["cov"]),
    "channel_correlation": lambda d: corrlib.channel_correlation(d["big_maps"]),
    "gram_matrix": lambda d: corrlib.gram_matrix(d["maps"]),
    "bootstrap_ci": lambda d: corrlib.bootstrap_ci(d["x"][:, 0], torch.mean, n_resamples=30),
    "barlow_twins_loss": lambda d: corrlib.losses.barlow_twins_loss(d["x"], d["x"].flip(0)),
    "BarlowTwinsLoss": lambda d: corrlib.losses.BarlowTwinsLoss()(d["x"], d["x"].flip(0)),
    "cross_correlation": lambda d: corrlib.losses.cross_correlation(d["x"], d["x"].flip(0)),
    "decov_loss": lambda d: corrlib.losses.decov_loss(d["x"] / 30),
    "DeCovLoss": lambda d: corrlib.losses.DeCovLoss()(d["x"] / 30),
    "correlation_loss": lambda d: corrlib.losses.correlation_loss(d["x"][:, 0], d["x"][:, 1]),
    "CorrelationLoss": lambda d: corrlib.losses.CorrelationLoss()(d["x"][:, :2], d["x"][:, 2:]),
    "PCAWhitening": lambda d: corrlib.whitening.PCAWhitening().fit_transform(d["x"]),
    "ZCAWhitening": lambda d: corrlib.whitening.ZCAWhitening().fit_transform(d["x"]),
    "ZCAWhitening.inverse": lambda d: (
        corrlib.whitening.ZCAWhitening().fit(d["x"]).inverse_transform(d["x"][:5] / 300)
    ),
    "condition_number": lambda d: corrlib.whitening.condition_number(d["cov"]),
    "linear_cka": lambda d: corrlib.similarity.linear_cka(d["x"][:, :2], d["x"][:, 2:]),
    "linear_cka debiased": lambda d: corrlib.similarity.linear_cka(
        d["x"][:, :2], d["x"][:, 2:], debiased=True
    ),
    "cka_matrix": lambda d: corrlib.similarity.cka_matrix([d["x"][:, :2], d["x"][:, 2:]]),
    "MinibatchCKA": lambda d: _minibatch_cka(d["x"]),
    "mean_abs_offdiag": lambda d: corrlib.hooks.mean_abs_offdiag(d["cov"]),
    "effective_rank": lambda d: corrlib.hooks.effective_rank(corrlib.cov_to_corr(d["cov"])),
}


# Functions that return Python numbers by design (no dtype to check).
PYTHON_SCALARS = {"estimate_lag", "pearson_test"}


def _flat(value: Any) -> list[torch.Tensor]:
    if isinstance(value, tuple | list):
        return [t for v in value for t in _flat(v)]
    return [torch.as_tensor(value)]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", sorted(SWEEP))
def test_half_precision_is_computed_in_float32(name: str, dtype: torch.dtype) -> None:
    """Finite, and within output rounding of float64 on the same (rounded) inputs."""
    low = _inputs(dtype)
    wide = {k: v.double() for k, v in low.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = _flat(SWEEP[name](low))
        ref = _flat(SWEEP[name](wide))
    eps = torch.finfo(dtype).eps
    for g, r in zip(got, ref, strict=True):
        if name not in PYTHON_SCALARS and g.is_floating_point() and g.dtype != torch.float64:
            assert g.dtype == dtype, f"{name} returned {g.dtype} for {dtype} input"
        g, r = g.double(), r.double()
        assert torch.isfinite(g).all(), f"{name}: {g}"
        scale = float(r.abs().max())
        tol = 2 * eps * r.abs() + 1e-4 * max(scale, 1e-3)
        assert ((g - r).abs() <= tol).all(), f"{name}: {g} vs {r}"


# --- every warning points at the caller's line ----------------------------------------------


def _constant_pair() -> tuple[torch.Tensor, torch.Tensor]:
    return torch.full((20,), 0.1), torch.arange(20.0)


WARNING_CALLS: dict[str, Callable[[], Any]] = {
    "pearson": lambda: corrlib.pearson(*_constant_pair()),
    "spearman": lambda: corrlib.spearman(*_constant_pair()),
    "corr_matrix pearson": lambda: corrlib.corr_matrix(torch.stack(_constant_pair(), 1)),
    "corr_matrix spearman": lambda: corrlib.corr_matrix(
        torch.stack(_constant_pair(), 1), method="spearman"
    ),
    "corr_matrix chunked": lambda: corrlib.corr_matrix(
        torch.stack(_constant_pair(), 1), chunk_size=7
    ),
    "corr_matrix omit": lambda: corrlib.corr_matrix(
        torch.stack([_constant_pair()[0], torch.tensor([math.nan] + [1.0] * 19)], 1),
        nan_policy="omit",
    ),
    "corr_matrix infinite": lambda: corrlib.corr_matrix(
        torch.tensor([[1.0, 2.0], [math.inf, 1.0], [3.0, 0.0]])
    ),
    "pearson_test": lambda: corrlib.pearson_test(*_constant_pair()),
    "autocorr": lambda: corrlib.autocorr(_constant_pair()[0], 3),
    "crosscorr": lambda: corrlib.crosscorr(*_constant_pair(), 3),
    "RunningCorrelation.compute": lambda: (
        corrlib.RunningCorrelation(2).update(torch.stack(_constant_pair(), 1)).compute()
    ),
    "channel_correlation": lambda: corrlib.channel_correlation(torch.zeros(2, 2, 3, 3)),
    "linear_cka": lambda: corrlib.similarity.linear_cka(
        torch.full((20, 3), 0.1), torch.randn(20, 3)
    ),
}


@pytest.mark.parametrize("name", sorted(WARNING_CALLS))
def test_every_warning_names_the_callers_line(name: str) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        WARNING_CALLS[name]()
    assert caught, f"{name} did not warn"
    for w in caught:
        assert w.filename == __file__, f"{name}: warning points at {w.filename}:{w.lineno}"


# --- argument errors name the argument -------------------------------------------------------


@pytest.mark.parametrize("bad", [math.inf, math.nan, -1, 2.5, True, "3"])
@pytest.mark.parametrize(
    "call",
    [
        lambda lag: corrlib.autocorr(torch.randn(50), lag),
        lambda lag: corrlib.crosscorr(torch.randn(50), torch.randn(50), lag),
        lambda lag: corrlib.estimate_lag(torch.randn(50), torch.randn(50), lag),
    ],
)
def test_bad_max_lag_is_a_value_error_naming_it(call: Callable[[Any], Any], bad: Any) -> None:
    with pytest.raises(ValueError, match="max_lag"):
        call(bad)


@pytest.mark.parametrize("bad", [0, -5, 2.5, True])
def test_bad_chunk_size_is_a_value_error_naming_it(bad: Any) -> None:
    with pytest.raises(ValueError, match="chunk_size"):
        corrlib.corr_matrix(torch.randn(10, 2), chunk_size=bad)


SCALAR_CALLS: dict[str, Callable[[torch.Tensor], Any]] = {
    "pearson": lambda s: corrlib.pearson(s, s),
    "spearman": lambda s: corrlib.spearman(s, s),
    "corr_matrix": lambda s: corrlib.corr_matrix(s),
    "pearson_test": lambda s: corrlib.pearson_test(s, s),
    "autocorr": lambda s: corrlib.autocorr(s),
    "crosscorr": lambda s: corrlib.crosscorr(s, s, 0),
    "estimate_lag": lambda s: corrlib.estimate_lag(s, s),
    "RunningCorrelation.update": lambda s: corrlib.RunningCorrelation(1).update(s),
    "threshold_corr": lambda s: corrlib.threshold_corr(s, 0.5),
    "ledoit_wolf": lambda s: corrlib.ledoit_wolf(s),
    "cov_to_corr": lambda s: corrlib.cov_to_corr(s),
    "partial_corr": lambda s: corrlib.partial_corr(s),
    "channel_correlation": lambda s: corrlib.channel_correlation(s),
    "gram_matrix": lambda s: corrlib.gram_matrix(s),
    "bootstrap_ci": lambda s: corrlib.bootstrap_ci(s, torch.mean, n_resamples=30),
    "barlow_twins_loss": lambda s: corrlib.losses.barlow_twins_loss(s, s),
    "decov_loss": lambda s: corrlib.losses.decov_loss(s),
    "condition_number": lambda s: corrlib.whitening.condition_number(s),
    "PCAWhitening": lambda s: corrlib.whitening.PCAWhitening().fit(s),
}


@pytest.mark.parametrize("name", sorted(SCALAR_CALLS))
def test_a_scalar_reports_its_shape_as_empty_parentheses(name: str) -> None:
    with pytest.raises(ValueError, match=r"\(\)"):
        SCALAR_CALLS[name](torch.tensor(3.0))
