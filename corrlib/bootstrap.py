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
from typing import Any, Literal, NamedTuple

import numpy as np
import torch

__all__ = ["BootstrapInterval", "bootstrap_ci"]

METHODS = ("percentile", "basic")


class BootstrapInterval(NamedTuple):
    """Lower and upper end of a bootstrap confidence interval."""

    low: torch.Tensor
    high: torch.Tensor


def _n_rows(x: Any, name: str) -> int:
    shape = tuple(x.shape) if hasattr(x, "shape") else np.shape(x)
    if len(shape) == 0:
        raise ValueError(f"{name} must have a sample dimension (dim 0), got a scalar of shape ()")
    return int(shape[0])


def _take(x: Any, index: torch.Tensor) -> Any:
    if isinstance(x, torch.Tensor):
        return x[index.to(x.device)]
    return np.asarray(x)[index.numpy()]


def bootstrap_ci(
    statistic: Callable[..., Any],
    data: Any,
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    method: Literal["percentile", "basic"] = "percentile",
) -> BootstrapInterval:
    """Bootstrap confidence interval of ``statistic(data)``.

    Parameters
    ----------
    statistic : callable
        Called on a resample of ``data`` (with the same type: tensor or numpy array); returns
        a number, or a tensor/array of any fixed shape (one interval per entry). When
        ``data`` is a tuple, called with one resampled argument per element.
    data : tensor or array, shape ``(n, ...)``, or a tuple of them
        The sample; rows (dim 0) are resampled with replacement. The elements of a tuple must
        have the same ``n`` and are resampled with the same rows (paired data, e.g.
        ``(x, y)`` for a correlation).
    n_resamples : int
        Number of bootstrap resamples, at least 1.
    confidence : float
        Confidence level, in (0, 1).
    seed : int
        Seed of the ``torch.Generator`` that draws the resamples: the same seed gives the
        same interval.
    method : {"percentile", "basic"}
        ``"percentile"``: the ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles of
        the resampled statistics (linear interpolation, as ``numpy.percentile`` and
        ``scipy.stats.bootstrap``). ``"basic"``: those quantiles reflected about the
        statistic of the full sample, ``(2 t - q_high, 2 t - q_low)``.

    Returns
    -------
    BootstrapInterval
        Named tuple ``(low, high)`` of float64 tensors with the statistic's shape (0-d for a
        scalar statistic). NaN values of the statistic propagate.

    Raises
    ------
    ValueError
        ``confidence`` outside (0, 1), ``n_resamples < 1``, unknown ``method``, an empty
        sample, tuple elements of different lengths, or a statistic whose shape changes.
    TypeError
        ``statistic`` is not callable.

    Examples
    --------
    >>> import torch, corrlib
    >>> x = torch.randn(200, generator=torch.Generator().manual_seed(0))
    >>> low, high = corrlib.bootstrap_ci(torch.mean, x, n_resamples=500, seed=1)
    >>> bool(low < x.mean() < high)
    True
    """
    if not callable(statistic):
        raise TypeError(f"statistic must be callable, got {type(statistic).__name__}")
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int) or n_resamples < 1:
        raise ValueError(f"n_resamples must be an integer >= 1, got {n_resamples!r}")
    if not isinstance(confidence, float | int) or not 0.0 < float(confidence) < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    paired = isinstance(data, tuple)
    parts = list(data) if paired else [data]
    if not parts:
        raise ValueError("data must not be an empty tuple")
    lengths = [_n_rows(p, f"data[{i}]" if paired else "data") for i, p in enumerate(parts)]
    if len(set(lengths)) != 1:
        raise ValueError(f"the elements of data must have the same length, got {lengths}")
    n = lengths[0]
    if n < 1:
        raise ValueError("data must hold at least one sample")

    def evaluate(index: torch.Tensor | None) -> torch.Tensor:
        args = parts if index is None else [_take(p, index) for p in parts]
        value = statistic(*args)
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu()
            if value.is_floating_point():  # numpy holds no bfloat16
                value = value.double()
        return torch.as_tensor(np.asarray(value, dtype=np.float64))

    gen = torch.Generator().manual_seed(int(seed))
    values = []
    for _ in range(n_resamples):
        index = torch.randint(n, (n,), generator=gen)
        values.append(evaluate(index))
    shapes = {tuple(v.shape) for v in values}
    if len(shapes) != 1:
        raise ValueError(f"statistic returned values of different shapes: {sorted(shapes)}")
    stacked = torch.stack(values)
    alpha = (1.0 - float(confidence)) / 2.0
    q = torch.tensor([alpha, 1.0 - alpha], dtype=torch.float64)
    q_low, q_high = _quantile(stacked, q)
    if method == "basic":
        full = evaluate(None)
        q_low, q_high = 2.0 * full - q_high, 2.0 * full - q_low
    return BootstrapInterval(q_low, q_high)


def _quantile(values: torch.Tensor, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Linear-interpolation quantiles along dim 0, with NaN propagating (as numpy.percentile)."""
    quantiles = torch.quantile(values, q, dim=0, interpolation="linear")
    has_nan = torch.isnan(values).any(dim=0)
    nan = torch.full_like(quantiles[0], float("nan"))
    return torch.where(has_nan, nan, quantiles[0]), torch.where(has_nan, nan, quantiles[1])
