"""Uncertainty for Pearson's r: Fisher's z interval and the exact two-sided test."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch

from corrlib._lazy import lazy_import
from corrlib._validation import as_real_tensor, check_ndim
from corrlib._warnings import Note, emit
from corrlib.correlation import correlate

stats = lazy_import("scipy.stats")  # slow to import; needed only for intervals and p-values


class ConfidenceInterval(NamedTuple):
    """Lower and upper bound of a confidence interval."""

    low: Any
    high: Any


def _check_confidence(confidence: float, name: str = "confidence") -> None:
    if not 0.0 < float(confidence) < 1.0:
        raise ValueError(f"{name} must lie strictly between 0 and 1, got {confidence!r}")


def _normal_quantile(p: float) -> float:
    from scipy import stats  # imported on first use: ``import corrlib`` stays light

    return float(stats.norm.ppf(p))


def fisher_ci(r: Any, n: int, confidence: float = 0.95) -> ConfidenceInterval:
    """Confidence interval for a correlation through Fisher's z transform.

    ``z = atanh(r)`` is close to normal with standard error ``1 / sqrt(n - 3)``; the interval
    ``tanh(z -+ q / sqrt(n - 3))``, with ``q`` the normal quantile, is what
    ``scipy.stats.pearsonr(...).confidence_interval()`` returns.

    Parameters
    ----------
    r : float or tensor
        Sample correlation(s) in [-1, 1].
    n : int
        Number of paired observations; must be at least 4.
    confidence : float
        Confidence level in (0, 1).

    Returns
    -------
    ConfidenceInterval
        ``(low, high)``: floats for a float ``r``, tensors for a tensor ``r``. A NaN ``r``
        (the correlation of a constant input) gives ``(nan, nan)``.
    """
    _check_confidence(confidence)
    if int(n) != n or n < 4:
        raise ValueError(f"fisher_ci needs n >= 4 observations, got n={n!r}")
    q = _normal_quantile(0.5 + confidence / 2)
    half = q / math.sqrt(n - 3)
    if isinstance(r, torch.Tensor):
        z = torch.atanh(r.clamp(-1.0, 1.0))
        return ConfidenceInterval(torch.tanh(z - half), torch.tanh(z + half))
    r = float(r)
    if math.isnan(r):
        return ConfidenceInterval(math.nan, math.nan)
    if not -1.0 <= r <= 1.0:
        raise ValueError(f"r must lie in [-1, 1], got {r!r}")
    z = math.atanh(r) if abs(r) < 1 else math.copysign(math.inf, r)
    return ConfidenceInterval(math.tanh(z - half), math.tanh(z + half))


@dataclass(frozen=True)
class PearsonTestResult:
    """Result of :func:`pearson_test` (shaped like scipy's ``PearsonRResult``).

    It unpacks like scipy's: ``r, p = corrlib.pearson_test(x, y)``.

    Attributes
    ----------
    statistic : float
        Pearson's r.
    pvalue : float
        Two-sided p-value for the null hypothesis of zero correlation (normal data).
    n : int
        Number of paired observations used.
    """

    statistic: float
    pvalue: float
    n: int

    def __iter__(self) -> Iterator[float]:
        """``statistic`` then ``pvalue``, so that ``r, p = pearson_test(x, y)`` works."""
        return iter((self.statistic, self.pvalue))

    def confidence_interval(
        self, confidence_level: float = 0.95, *, confidence: float | None = None
    ) -> ConfidenceInterval:
        """Fisher z interval for the population correlation (see :func:`fisher_ci`).

        ``confidence_level`` is scipy's keyword; ``confidence`` is accepted as an alias.
        ``(nan, nan)`` when the statistic is NaN (a constant input), or for ``n < 4``.
        """
        level = confidence_level if confidence is None else confidence
        _check_confidence(level, "confidence_level")
        if math.isnan(self.statistic) or self.n < 4:
            return ConfidenceInterval(math.nan, math.nan)
        return fisher_ci(self.statistic, self.n, level)


def pearson_test(x: Any, y: Any) -> PearsonTestResult:
    """Pearson's r with its exact two-sided p-value, as ``scipy.stats.pearsonr`` computes it.

    Under independence of normal variables, ``(r + 1) / 2`` follows a Beta(n/2 - 1, n/2 - 1)
    distribution; the p-value is ``2 * P(|R| >= |r|)``.

    Parameters
    ----------
    x, y : tensor or array, shape ``(n,)``
        Paired samples with ``n >= 2``.

    Returns
    -------
    PearsonTestResult
        With ``.statistic``, ``.pvalue`` and ``.confidence_interval(confidence_level=0.95)``;
        unpacks as ``r, p``. A constant input gives NaN for both, with a
        :class:`~corrlib.ConstantInputWarning` (as scipy).

    Examples
    --------
    >>> import numpy as np, corrlib
    >>> res = corrlib.pearson_test([1, 2, 3, 4, 5], [2, 1, 4, 3, 5])
    >>> round(res.statistic, 3), round(res.pvalue, 3)
    (0.8, 0.104)
    """
    from scipy import stats  # imported on first use: ``import corrlib`` stays light

    xt = as_real_tensor(x, "x")
    yt = as_real_tensor(y, "y")
    check_ndim(xt, 1, "x")
    check_ndim(yt, 1, "y")
    notes: list[Note] = []
    r = float(correlate(xt[:, None], yt[:, None], notes=notes)[0, 0])
    emit(notes)
    n = int(xt.shape[0])
    if math.isnan(r):
        return PearsonTestResult(math.nan, math.nan, n)
    if n == 2:
        return PearsonTestResult(r, 1.0, n)
    ab = n / 2 - 1
    dist = stats.beta(ab, ab, loc=-1, scale=2)
    pvalue = float(min(1.0, 2 * dist.sf(abs(r))))
    return PearsonTestResult(r, pvalue, n)
