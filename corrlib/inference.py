"""Uncertainty for correlations and proportions: tests and confidence intervals, shaped like scipy's.

- :func:`pearson_test` and :func:`spearman_test`: r or rho with its p-value (``alternative=``
  and ``nan_policy=`` as in ``scipy.stats.pearsonr`` / ``spearmanr``); the results unpack and
  index like scipy's (``r, p = pearson_test(x, y)``, ``res[0]``).
- :func:`fisher_ci`: Fisher's z interval for a correlation.
- :func:`proportion_ci`: Wilson or Clopper-Pearson interval for an accuracy.

Every interval is a :class:`ConfidenceInterval` ``(low, high)`` and every level is called
``confidence_level``, as in scipy.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from corrlib._intervals import ConfidenceInterval, normal_quantile
from corrlib._intervals import check_confidence as _check_confidence
from corrlib._lazy import lazy_import
from corrlib._proportion import proportion_ci
from corrlib._validation import as_integer, as_real_tensor, check_ndim, check_same_length
from corrlib._warnings import warn

stats = lazy_import("scipy.stats")  # imported on first use, not with corrlib

__all__ = [
    "ConfidenceInterval",
    "PearsonTestResult",
    "SpearmanTestResult",
    "fisher_ci",
    "normal_quantile",
    "pearson_test",
    "proportion_ci",
    "spearman_test",
]

Alternative = Literal["two-sided", "less", "greater"]
ALTERNATIVES = ("two-sided", "less", "greater")
NAN_POLICIES = ("propagate", "omit", "raise")


def _level(confidence_level: float, confidence: float | None, where: str) -> float:
    """``confidence_level``, or the deprecated ``confidence=`` keyword with a warning."""
    if confidence is None:
        return _check_confidence(confidence_level)
    warn(
        f"{where}(confidence=...) is deprecated: use confidence_level=, as in scipy",
        DeprecationWarning,
    )
    return _check_confidence(confidence, "confidence")


def _check_sample_count(n: Any) -> int:
    count = as_integer(n)
    if count is None or count < 4:
        raise ValueError(f"fisher_ci needs an integer n >= 4 observations, got n={n!r}")
    return count


def _z_bounds(z: Any, n: int, level: float, alternative: str, lib: Any) -> tuple[Any, Any]:
    """Ends of Fisher's interval in r, from ``z = atanh(r)`` (``lib``: ``math``, numpy or torch)."""
    se = 1.0 / math.sqrt(n - 3)
    if alternative == "two-sided":
        q = normal_quantile(0.5 + level / 2.0)
        return lib.tanh(z - q * se), lib.tanh(z + q * se)
    q = normal_quantile(level)
    if alternative == "less":
        return -1.0 + 0 * z, lib.tanh(z + q * se)
    return lib.tanh(z - q * se), 1.0 + 0 * z


def fisher_ci(
    r: Any, n: int, confidence_level: float = 0.95, *, confidence: float | None = None
) -> ConfidenceInterval:
    """Confidence interval for a correlation through Fisher's z transform.

    ``z = atanh(r)`` is close to normal with standard error ``1 / sqrt(n - 3)``; the interval
    ``tanh(z -+ q / sqrt(n - 3))``, with ``q`` the normal quantile, is what
    ``scipy.stats.pearsonr(...).confidence_interval()`` returns.

    Parameters
    ----------
    r : float, NumPy array or tensor
        Sample correlation(s) in [-1, 1] (NaN allowed: it gives NaN ends).
    n : int
        Number of paired observations; an integer of at least 4 (NumPy integers accepted).
    confidence_level : float
        Confidence level in (0, 1). (``confidence=`` is its deprecated old name.)

    Returns
    -------
    ConfidenceInterval
        ``(low, high)``: floats for a float ``r``, arrays for an array, tensors for a tensor.

    Raises
    ------
    ValueError
        ``r`` outside [-1, 1], ``n < 4`` or not an integer, a level outside (0, 1).
    """
    level = _level(confidence_level, confidence, "fisher_ci")
    n = _check_sample_count(n)
    if isinstance(r, torch.Tensor):
        if bool(((r.abs() > 1) & ~r.isnan()).any()):
            raise ValueError("r must lie in [-1, 1]; the tensor holds a value outside")
        return ConfidenceInterval(*_z_bounds(torch.atanh(r), n, level, "two-sided", torch))
    if np.ndim(r) > 0:
        arr = np.asarray(r, dtype=np.float64)
        if (np.abs(arr[~np.isnan(arr)]) > 1).any():
            raise ValueError("r must lie in [-1, 1]; the array holds a value outside")
        with np.errstate(divide="ignore"):
            return ConfidenceInterval(*_z_bounds(np.arctanh(arr), n, level, "two-sided", np))
    r = float(r)
    if math.isnan(r):
        return ConfidenceInterval(math.nan, math.nan)
    if not -1.0 <= r <= 1.0:
        raise ValueError(f"r must lie in [-1, 1], got {r!r}")
    z = math.atanh(r) if abs(r) < 1 else math.copysign(math.inf, r)
    return ConfidenceInterval(*_z_bounds(z, n, level, "two-sided", math))


@dataclass(frozen=True)
class _CorrelationTestResult:
    """A correlation and its p-value; unpacks and indexes as ``(statistic, pvalue)``, as scipy's."""

    statistic: float
    pvalue: float
    n: int
    alternative: str = "two-sided"

    def __iter__(self) -> Iterator[float]:
        return iter((self.statistic, self.pvalue))

    def __len__(self) -> int:
        return 2

    def __getitem__(self, index: int | slice) -> Any:
        return (self.statistic, self.pvalue)[index]


@dataclass(frozen=True)
class PearsonTestResult(_CorrelationTestResult):
    """Result of :func:`pearson_test`, shaped like scipy's ``PearsonRResult``.

    Attributes
    ----------
    statistic : float
        Pearson's r.
    pvalue : float
        p-value for the null hypothesis of zero correlation (normal data), for ``alternative``.
    n : int
        Number of paired observations used (after ``nan_policy="omit"``).
    alternative : str
        ``"two-sided"``, ``"less"`` or ``"greater"``.
    """

    def confidence_interval(
        self, confidence_level: float = 0.95, *, confidence: float | None = None
    ) -> ConfidenceInterval:
        """Fisher z interval for the population correlation, one-sided for a one-sided test.

        ``(nan, nan)`` when the statistic is NaN (a constant input), or for ``n < 4``.
        """
        level = _level(confidence_level, confidence, "confidence_interval")
        if math.isnan(self.statistic) or self.n < 4:
            return ConfidenceInterval(math.nan, math.nan)
        r = self.statistic
        z = math.atanh(r) if abs(r) < 1 else math.copysign(math.inf, r)
        return ConfidenceInterval(*_z_bounds(z, self.n, level, self.alternative, math))


@dataclass(frozen=True)
class SpearmanTestResult(_CorrelationTestResult):
    """Result of :func:`spearman_test` (``statistic`` is Spearman's rho), as scipy's ``spearmanr``."""


def _paired_samples(x: Any, y: Any, nan_policy: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``x`` and ``y`` as 1-D float64 tensors of one length, NaN handled by ``nan_policy``."""
    if nan_policy not in NAN_POLICIES:
        raise ValueError(f"nan_policy must be one of {NAN_POLICIES}, got {nan_policy!r}")
    xt = as_real_tensor(x, "x")
    yt = as_real_tensor(y, "y")
    check_ndim(xt, 1, "x")
    check_ndim(yt, 1, "y")
    check_same_length(xt, yt)
    xt, yt = xt.detach().double(), yt.detach().double()
    missing = xt.isnan() | yt.isnan()
    if bool(missing.any()):
        if nan_policy == "raise":
            raise ValueError("the input contains NaN (nan_policy='raise')")
        if nan_policy == "omit":
            xt, yt = xt[~missing], yt[~missing]
    return xt, yt


def _check_alternative(alternative: str) -> None:
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative must be one of {ALTERNATIVES}, got {alternative!r}")


def _coefficient(
    coefficient: Any,
    x: Any,
    y: Any,
    alternative: str,
    nan_policy: str,
    name: str,
    allow_empty: bool = False,
) -> tuple[float, int]:
    """``coefficient(x, y)`` as a float (NaN for NaN input under "propagate") and ``n``.

    ``allow_empty``: empty samples give NaN (as ``scipy.stats.spearmanr``) instead of an error.
    """
    _check_alternative(alternative)
    xt, yt = _paired_samples(x, y, nan_policy)
    n = int(xt.shape[0])
    if n < 2 and not (allow_empty and n == 0):
        raise ValueError(f"{name} needs at least 2 paired observations, got {n}")
    if bool(xt.isnan().any() | yt.isnan().any()):
        return math.nan, n
    return float(coefficient(xt, yt)), n


def _p_value(null: Any, statistic: float, alternative: str) -> float:
    """The p-value of ``statistic`` under the frozen scipy distribution ``null``: two-sided
    ``2 P(S >= |s|)`` (at most 1), ``"greater"`` ``P(S >= s)``, ``"less"`` ``P(S <= s)``."""
    if alternative == "two-sided":
        return float(min(1.0, 2 * null.sf(abs(statistic))))
    return float(null.sf(statistic) if alternative == "greater" else null.cdf(statistic))


def pearson_test(
    x: Any,
    y: Any,
    *,
    alternative: Alternative = "two-sided",
    nan_policy: Literal["propagate", "omit", "raise"] = "propagate",
) -> PearsonTestResult:
    """Pearson's r with its exact p-value, as ``scipy.stats.pearsonr`` computes it.

    Under independence of normal variables, ``(r + 1) / 2`` follows a Beta(n/2 - 1, n/2 - 1)
    distribution; the two-sided p-value is ``2 * P(R >= |r|)``, ``"greater"`` is ``P(R >= r)``
    and ``"less"`` is ``P(R <= r)``.

    Parameters
    ----------
    x, y : tensor or array, shape ``(n,)``
        Paired samples with ``n >= 2`` (after omitting NaN pairs).
    alternative : {"two-sided", "less", "greater"}
        The alternative hypothesis: correlation non-zero, negative or positive.
    nan_policy : {"propagate", "omit", "raise"}
        A NaN gives a NaN result, is dropped with its partner, or raises ``ValueError``.

    Returns
    -------
    PearsonTestResult
        ``.statistic``, ``.pvalue``, ``.n`` and ``.confidence_interval(confidence_level=0.95)``;
        unpacks as ``r, p`` and indexes as ``res[0], res[1]``. A constant input gives NaN for
        both, with a :class:`~corrlib.ConstantInputWarning` (as scipy).

    Examples
    --------
    >>> import corrlib
    >>> res = corrlib.pearson_test([1, 2, 3, 4, 5], [2, 1, 4, 3, 5])
    >>> round(res.statistic, 3), round(res.pvalue, 3)
    (0.8, 0.104)
    """
    from corrlib.correlation import pearson

    r, n = _coefficient(pearson, x, y, alternative, nan_policy, "pearson_test")
    if math.isnan(r):
        return PearsonTestResult(math.nan, math.nan, n, alternative)
    r = min(1.0, max(-1.0, r))
    if n == 2:
        return PearsonTestResult(r, 1.0, n, alternative)
    ab = n / 2 - 1
    p = _p_value(stats.beta(ab, ab, loc=-1, scale=2), r, alternative)
    return PearsonTestResult(r, p, n, alternative)


def spearman_test(
    x: Any,
    y: Any,
    *,
    alternative: Alternative = "two-sided",
    nan_policy: Literal["propagate", "omit", "raise"] = "propagate",
) -> SpearmanTestResult:
    """Spearman's rho with the p-value of ``scipy.stats.spearmanr``.

    The p-value treats ``t = rho * sqrt((n - 2) / (1 - rho**2))`` as Student-t with ``n - 2``
    degrees of freedom (an approximation for small ``n``: for exact p-values use a permutation
    test, ``scipy.stats.permutation_test``). Ties get average ranks.

    Parameters
    ----------
    x, y : tensor or array, shape ``(n,)``
        Paired samples with ``n >= 2`` (after omitting NaN pairs).
    alternative : {"two-sided", "less", "greater"}
    nan_policy : {"propagate", "omit", "raise"}

    Returns
    -------
    SpearmanTestResult
        ``.statistic`` (rho), ``.pvalue``, ``.n``; unpacks and indexes like scipy's result.
        Empty samples give NaN for both, as in scipy.

    Examples
    --------
    >>> import corrlib
    >>> rho, p = corrlib.spearman_test([1, 2, 3, 4, 5], [5, 6, 7, 8, 7])
    >>> round(rho, 3), round(p, 3)
    (0.821, 0.089)
    """
    from corrlib.correlation import spearman

    rho, n = _coefficient(spearman, x, y, alternative, nan_policy, "spearman_test", True)
    if math.isnan(rho):
        return SpearmanTestResult(math.nan, math.nan, n, alternative)
    rho = min(1.0, max(-1.0, rho))
    df = n - 2
    if df == 0:
        return SpearmanTestResult(rho, 1.0, n, alternative)
    with np.errstate(divide="ignore"):
        t = rho * math.sqrt(df / ((rho + 1.0) * (1.0 - rho))) if abs(rho) < 1 else rho * math.inf
    return SpearmanTestResult(rho, _p_value(stats.t(df), t, alternative), n, alternative)
