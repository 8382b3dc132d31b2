"""Bootstrap confidence intervals for any statistic of a sample.

The bootstrap resamples the rows of the data with replacement, recomputes the statistic on
each resample, and reads an interval off the spread of those values (Efron and Tibshirani,
1993). It needs no formula for the statistic's standard error, which is why it suits
quantities such as "the mean absolute correlation between the channels of a layer". The
rows must be the independent units (images, not pixels): resampling pixels of the same
images would pretend to have far more independent observations than there are.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import torch

from corrlib._lazy import lazy_import
from corrlib._validation import as_integer, check_positive_int
from corrlib._warnings import warn
from corrlib.inference import ConfidenceInterval, _check_confidence, normal_quantile

stats = lazy_import("scipy.stats")  # imported on first use, not with corrlib

__all__ = ["bootstrap_ci"]

METHODS = ("percentile", "basic", "BCa")


def __getattr__(name: str) -> Any:
    if name == "BootstrapInterval":  # the old name of the one interval type
        warn(
            "corrlib.bootstrap.BootstrapInterval is deprecated: use "
            "corrlib.inference.ConfidenceInterval (the same (low, high) named tuple)",
            DeprecationWarning,
        )
        return ConfidenceInterval
    raise AttributeError(f"module 'corrlib.bootstrap' has no attribute {name!r}")


def _n_rows(x: Any, name: str) -> int:
    shape = tuple(x.shape) if hasattr(x, "shape") else np.shape(x)
    if len(shape) == 0:
        raise ValueError(f"{name} must have a sample dimension (dim 0), got a scalar of shape ()")
    return int(shape[0])


def _take(x: Any, index: torch.Tensor) -> Any:
    if isinstance(x, torch.Tensor):
        return x[index.to(x.device)]
    return np.asarray(x)[index.numpy()]


def _generator(rng: int | np.integer | torch.Generator | None) -> torch.Generator:
    """A ``torch.Generator`` from ``rng``: an integer seed, a generator, or None (seed 0)."""
    if isinstance(rng, torch.Generator):
        return rng
    if rng is None:
        return torch.Generator().manual_seed(0)
    seed = as_integer(rng)
    if seed is None:
        raise ValueError(f"rng must be an integer seed or a torch.Generator, got {rng!r}")
    return torch.Generator().manual_seed(seed)


def bootstrap_ci(
    data: Any,
    statistic: Callable[..., Any],
    *,
    paired: bool = False,
    n_resamples: int = 9999,
    confidence_level: float = 0.95,
    method: Literal["percentile", "basic", "BCa"] = "percentile",
    rng: int | torch.Generator | None = None,
    confidence: float | None = None,
    seed: int | None = None,
) -> ConfidenceInterval:
    """Bootstrap confidence interval of ``statistic(*samples)``, shaped like ``scipy.stats.bootstrap``.

    Parameters
    ----------
    data : tensor or array of shape ``(n, ...)``, or a tuple or list of them
        The sample, or several samples (a tuple and a list mean the same: one argument of
        ``statistic`` each); rows (dim 0) are resampled with replacement.
    statistic : callable
        Called with one resampled argument per sample, of the sample's type (tensor or numpy
        array); returns a number, or a tensor/array of any fixed shape (one interval per entry).
    paired : bool
        Several samples: ``True`` resamples them with the same rows (they must have the same
        length; e.g. ``(x, y)`` for a correlation), ``False`` each one independently (e.g. two
        groups for a difference of means), as scipy.
    n_resamples : int
        Number of bootstrap resamples, a positive integer (default 9999, as scipy).
    confidence_level : float
        In (0, 1).
    method : {"percentile", "basic", "BCa"}
        ``"percentile"``: the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of the
        resampled statistics (linear interpolation, as ``numpy.percentile`` and scipy).
        ``"basic"``: those quantiles reflected about the statistic of the full sample,
        ``(2 t - q_high, 2 t - q_low)``. ``"BCa"`` (bias-corrected and accelerated, Efron 1987;
        the letter case does not matter): the quantiles are moved by the resamples' median bias
        ``z0`` and by an acceleration ``a`` from the jackknife (``n`` more evaluations of the
        statistic; one sample or paired samples), as ``scipy.stats.bootstrap(method="BCa")``;
        it corrects the percentile interval's undercoverage for skewed statistics.
    rng : int, torch.Generator or None
        Seed (or generator) of the resampling: the same seed gives the same interval; None
        is seed 0.
    confidence, seed
        Deprecated names of ``confidence_level`` and ``rng``.

    Returns
    -------
    ConfidenceInterval
        ``(low, high)`` of float64 tensors with the statistic's shape (0-d for a scalar
        statistic). NaN values of the statistic propagate.

    Raises
    ------
    ValueError
        A level outside (0, 1), ``n_resamples`` not a positive integer, unknown ``method``, an
        empty sample, paired samples of different lengths, BCa of unpaired samples, or a
        statistic whose shape changes.
    TypeError
        ``statistic`` is not callable.

    Notes
    -----
    The old argument order ``bootstrap_ci(statistic, data)`` still works, with a
    ``DeprecationWarning``, and keeps its old meaning: a tuple of samples is paired.

    Examples
    --------
    >>> import torch, corrlib
    >>> x = torch.randn(200, generator=torch.Generator().manual_seed(0))
    >>> low, high = corrlib.bootstrap_ci(x, torch.mean, n_resamples=500, rng=1)
    >>> bool(low < x.mean() < high)
    True
    """
    if callable(data) and not callable(statistic):
        warn(
            "bootstrap_ci(statistic, data) is deprecated: use bootstrap_ci(data, statistic) "
            "(and paired=True for paired samples), as scipy.stats.bootstrap",
            DeprecationWarning,
        )
        data, statistic = statistic, data
        paired = isinstance(data, tuple | list)
    if not callable(statistic):
        raise TypeError(f"statistic must be callable, got {type(statistic).__name__}")
    n_resamples = check_positive_int(n_resamples, "n_resamples")
    if confidence is not None:
        warn(
            "bootstrap_ci(confidence=...) is deprecated: use confidence_level=", DeprecationWarning
        )
        confidence_level = confidence
    level = _check_confidence(confidence_level)
    if seed is not None:
        warn("bootstrap_ci(seed=...) is deprecated: use rng=", DeprecationWarning)
        rng = seed
    if not isinstance(method, str) or method.lower() not in {m.lower() for m in METHODS}:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    method = next(m for m in METHODS if m.lower() == method.lower())
    several = isinstance(data, tuple | list)
    parts = list(data) if several else [data]
    if not parts:
        raise ValueError("data must not be an empty tuple or list")
    lengths = [_n_rows(p, f"data[{i}]" if several else "data") for i, p in enumerate(parts)]
    if min(lengths) < 1:
        raise ValueError("data must hold at least one sample")
    joint = paired or len(parts) == 1
    if joint and len(set(lengths)) != 1:
        raise ValueError(f"paired samples must have the same length, got {lengths}")
    if method == "BCa" and not joint:
        raise ValueError("method='BCa' needs one sample or paired samples (paired=True)")

    def evaluate(indices: list[torch.Tensor] | None) -> torch.Tensor:
        args = (
            parts if indices is None else [_take(p, i) for p, i in zip(parts, indices, strict=True)]
        )
        value = statistic(*args)
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu()
            if value.is_floating_point():  # numpy holds no bfloat16
                value = value.double()
        return torch.as_tensor(np.asarray(value, dtype=np.float64))

    gen = _generator(rng)
    values = []
    for _ in range(n_resamples):
        if joint:
            index = torch.randint(lengths[0], (lengths[0],), generator=gen)
            values.append(evaluate([index] * len(parts)))
        else:
            values.append(evaluate([torch.randint(m, (m,), generator=gen) for m in lengths]))
    shapes = {tuple(v.shape) for v in values}
    if len(shapes) != 1:
        raise ValueError(f"statistic returned values of different shapes: {sorted(shapes)}")
    stacked = torch.stack(values)
    alpha = (1.0 - level) / 2.0
    if method == "BCa":
        n = lengths[0]
        jackknife = torch.stack([evaluate([_leave_one_out(n, i)] * len(parts)) for i in range(n)])
        return ConfidenceInterval(*_bca_quantiles(stacked, evaluate(None), jackknife, alpha))
    q = torch.tensor([alpha, 1.0 - alpha], dtype=torch.float64)
    q_low, q_high = _quantile(stacked, q)
    if method == "basic":
        full = evaluate(None)
        q_low, q_high = 2.0 * full - q_high, 2.0 * full - q_low
    return ConfidenceInterval(q_low, q_high)


def _leave_one_out(n: int, i: int) -> torch.Tensor:
    """Row indices ``0..n-1`` without ``i`` (one jackknife sample)."""
    return torch.cat([torch.arange(i), torch.arange(i + 1, n)])


def _bca_quantiles(
    values: torch.Tensor, full: torch.Tensor, jackknife: torch.Tensor, alpha: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """BCa interval ends: the percentile levels shifted by the bias ``z0`` and acceleration ``a``.

    ``z0 = Phi^-1(share of resampled statistics below the full-sample one)``;
    ``a = sum((mean_J - J_i)^3) / (6 * sum((mean_J - J_i)^2)^1.5)`` over the jackknife values
    ``J_i``; level ``Phi(z0 + (z0 + z_alpha) / (1 - a (z0 + z_alpha)))`` for each end.
    """
    below = (values < full).double().mean(dim=0).numpy()
    z0 = normal_quantile(below)
    spread = (jackknife.mean(dim=0) - jackknife).numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        accel = (spread**3).sum(axis=0) / (6.0 * ((spread**2).sum(axis=0)) ** 1.5)
    ends = []
    for z_alpha in normal_quantile([alpha, 1.0 - alpha]):
        with np.errstate(divide="ignore", invalid="ignore"):
            level = stats.norm.cdf(z0 + (z0 + z_alpha) / (1.0 - accel * (z0 + z_alpha)))
        level = np.atleast_1d(np.asarray(level, dtype=np.float64))
        flat = values.reshape(values.shape[0], -1)
        end = torch.full((flat.shape[1],), float("nan"), dtype=torch.float64)
        for j, q in enumerate(level):
            if np.isfinite(q) and not torch.isnan(flat[:, j]).any():
                end[j] = torch.quantile(flat[:, j], float(q), interpolation="linear")
        ends.append(end.reshape(values.shape[1:]))
    return ends[0], ends[1]


def _quantile(values: torch.Tensor, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Linear-interpolation quantiles along dim 0, with NaN propagating (as numpy.percentile)."""
    quantiles = torch.quantile(values, q, dim=0, interpolation="linear")
    has_nan = torch.isnan(values).any(dim=0)
    nan = torch.full_like(quantiles[0], float("nan"))
    return torch.where(has_nan, nan, quantiles[0]), torch.where(has_nan, nan, quantiles[1])
