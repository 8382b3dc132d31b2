"""Comparing two arms of an experiment run over the same seeds: a paired Student-t analysis.

The method, in ten lines:

1. *Pair by seed.* Arm A (a penalty) and arm B (its control) trained from the same seed share
   the initialisation and the data order; the differences ``d_i = a_i - b_i`` cancel that
   shared noise, so they judge the effect far more sharply than two separate means.
2. *Student-t, df = n - 1.* With a handful of seeds the standard error is itself noisy: the
   interval ``mean +- t_{n-1} * se`` and the paired t test account for that. (A "2 standard
   errors" rule is a test at alpha ~ 0.18 with 3 seeds and ~ 0.12 with 5.)
3. *A null needs a margin,* declared before the run: "no difference" is claimed only when the
   interval lies inside ``(-margin, margin)`` (two one-sided tests, TOST); else "inconclusive".
4. *Replicate cheap randomness* (label draws, data subsets, attack restarts) within each seed
   and average it there: the seed stays the unit of replication (pass a ``(seeds, draws)`` array).
5. *A family of claims* from one table: adjust the p-values with Holm (:func:`holm`).
   :func:`seeds_needed` says how many seeds a paired test needs to see a given effect.

Examples
--------
>>> res = paired_difference([0.91, 0.93, 0.92, 0.94, 0.92], [0.89, 0.90, 0.90, 0.91, 0.90])
>>> print(res)
+0.024 [+0.017, +0.031] p=6.1e-04 (n = 5 seeds)
>>> str(res.verdict())
'higher'
>>> str(paired_difference([0.5, 0.7, 0.4], [0.5, 0.6, 0.5]).verdict(margin=0.01))
'inconclusive'
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

import numpy as np

from corrlib._lazy import lazy_import
from corrlib._warnings import warn

stats = lazy_import("scipy.stats")  # imported on first use, not with corrlib

__all__ = [
    "PairedDifference",
    "Verdict",
    "corrected_resampled",
    "holm",
    "paired_difference",
    "seeds_needed",
]


class Verdict(StrEnum):
    """Outcome of a paired comparison; ``str(verdict)`` is the plain word."""

    HIGHER = "higher"
    LOWER = "lower"
    EQUIVALENT = "equivalent"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class PairedDifference:
    """The paired t analysis of ``treatment - control`` over seeds.

    Attributes
    ----------
    mean : float
        Mean difference over the seeds.
    se : float
        Standard error of that mean, ``sd(d, ddof=1) / sqrt(n)``.
    n : int
        Number of seeds (pairs).
    differences : tuple of float
        The per-seed differences (each seed's draws averaged first for 2-D input).
    """

    mean: float
    se: float
    n: int
    differences: tuple[float, ...]

    @property
    def df(self) -> int:
        """Degrees of freedom of the t distribution, ``n - 1``."""
        return self.n - 1

    @property
    def t(self) -> float:
        """The paired t statistic ``mean / se`` (0 for identical arms, +-inf for se = 0)."""
        if self.se == 0:
            return math.copysign(math.inf, self.mean) if self.mean != 0 else 0.0
        return self.mean / self.se

    @property
    def p(self) -> float:
        """Two-sided p-value of the paired t test (``scipy.stats.ttest_rel``); 1 for identical arms."""
        if self.se == 0:
            return 1.0 if self.mean == 0 else 0.0
        return float(2.0 * stats.t.sf(abs(self.t), self.df))

    @property
    def z(self) -> float:
        """Deprecated alias of :attr:`t` (the old "standard errors from zero")."""
        warn("PairedDifference.z is deprecated: use .t with .p, or .verdict()", DeprecationWarning)
        return self.t

    def confidence_interval(self, confidence_level: float = 0.95) -> tuple[float, float]:
        """Student-t interval ``mean -+ t_{n-1, (1 + level) / 2} * se`` for the mean difference.

        Equal to ``scipy.stats.ttest_rel(treatment, control).confidence_interval(level)``.
        """
        _check_probability(confidence_level, "confidence_level")
        half = float(stats.t.ppf(0.5 + confidence_level / 2.0, self.df)) * self.se
        return (self.mean - half, self.mean + half)

    def equivalence(self, margin: float) -> float:
        """TOST p-value for "the true difference lies in ``(-margin, margin)``".

        The larger of the two one-sided t tests' p-values (``mean <= -margin`` rejected and
        ``mean >= margin`` rejected), as ``statsmodels.stats.weightstats.ttost_paired``.
        A small value supports equivalence within the margin.
        """
        margin = _check_margin(margin)
        if self.se == 0:
            return 0.0 if abs(self.mean) < margin else 1.0
        p_above_low = stats.t.sf((self.mean + margin) / self.se, self.df)
        p_below_high = stats.t.cdf((self.mean - margin) / self.se, self.df)
        return float(max(p_above_low, p_below_high))

    def verdict(self, margin: float | None = None, alpha: float = 0.05) -> Verdict:
        """``"higher"``/``"lower"`` if the two-sided test rejects at ``alpha``; else
        ``"equivalent"`` if a ``margin`` is given and the TOST p-value is below ``alpha``;
        else ``"inconclusive"``. Without a margin a null is never "equivalent"."""
        _check_probability(alpha, "alpha")
        if self.p < alpha:
            return Verdict.HIGHER if self.mean > 0 else Verdict.LOWER
        if margin is not None and self.equivalence(margin) < alpha:
            return Verdict.EQUIVALENT
        return Verdict.INCONCLUSIVE

    def format(self, digits: int = 3, unit: str = "seeds") -> str:
        """``"+0.023 [+0.011, +0.035] p=0.004 (n = 5 seeds)"``: mean, 95 % interval, p, n.

        ``unit`` names what the ``n`` pairs are (``"folds"`` for cross-validation folds of one
        data set, ``"draws"``, ...); the default is ``"seeds"``.
        """
        low, high = self.confidence_interval()
        p = f"p={self.p:.3f}" if self.p >= 10.0**-digits or self.p == 0 else f"p={self.p:.1e}"
        return (
            f"{self.mean:+.{digits}f} [{low:+.{digits}f}, {high:+.{digits}f}] {p} "
            f"(n = {self.n} {unit})"
        )

    def __str__(self) -> str:
        return self.format()


def paired_difference(
    treatment: Sequence[float] | Any, control: Sequence[float] | Any
) -> PairedDifference:
    """Paired t analysis of ``treatment[i] - control[i]`` over seeds.

    Parameters
    ----------
    treatment, control : sequence, array or tensor, shape ``(seeds,)`` or ``(seeds, draws)``
        One value per seed, in the same seed order; or, in 2-D, several draws of the cheap
        randomness (label draws, data subsets, attack restarts) per seed, which are averaged
        within each seed before the test (the seed is the unit of replication).

    Returns
    -------
    PairedDifference
        ``mean``, ``se``, ``n``, ``df``, ``t``, ``p`` (equal to ``scipy.stats.ttest_rel``),
        ``confidence_interval()``, ``equivalence(margin)`` and ``verdict(margin, alpha)``.

    Raises
    ------
    ValueError
        If the arms hold different numbers of seeds, fewer than two seeds, an array that is
        not 1-D or 2-D, an empty row of draws, or a value that is not finite.

    Examples
    --------
    >>> res = paired_difference([[0.9, 0.8], [0.7, 0.8]], [0.7, 0.6])
    >>> res.n, round(res.mean, 3)
    (2, 0.15)
    """
    a = _seed_means(treatment, "treatment")
    b = _seed_means(control, "control")
    if a.shape != b.shape:
        raise ValueError(
            f"treatment and control must hold one value (or row of draws) per seed each, "
            f"got {a.size} and {b.size} seeds"
        )
    if a.size < 2:
        raise ValueError(f"a paired t test needs at least 2 seeds, got {a.size}")
    d = a - b
    se = float(d.std(ddof=1) / math.sqrt(d.size))
    if se <= 1e-15 * max(1.0, float(np.abs(d).max())):  # equal differences up to rounding
        se = 0.0
    return PairedDifference(float(d.mean()), se, int(d.size), tuple(float(v) for v in d))


def corrected_resampled(result: PairedDifference, test_fraction: float) -> PairedDifference:
    """Nadeau and Bengio's corrected resampled t: ``result`` with its standard error widened.

    When the "seeds" of a paired comparison are train/test splits of **one** data set
    (repeated cross-validation folds, random re-splits), the per-split differences are
    correlated (the training sets overlap), and the plain paired t interval is far too narrow:
    it measures the split noise, not how the result would vary on a new sample. Nadeau and
    Bengio (2003, *Machine Learning* 52, 239-281) replace the variance ``s^2 / J`` of the mean
    of ``J`` split differences by ``(1 / J + n_test / n_train) s^2``; the degrees of freedom
    stay ``J - 1``. The interval, p-value, TOST and verdict of the returned result use it.

    Parameters
    ----------
    result : PairedDifference
        From :func:`paired_difference`, one value per split (e.g. ``repeats * folds`` folds).
    test_fraction : float
        Share of the data held out in each split, in (0, 1) (``1 / k`` for k-fold).

    Examples
    --------
    >>> plain = paired_difference([0.3, 0.1, 0.2, 0.2], [0.0, 0.0, 0.0, 0.0])
    >>> round(corrected_resampled(plain, 0.5).se / plain.se, 4)  # sqrt(1 + 4 * 0.5 / 0.5)
    2.2361
    """
    if not isinstance(result, PairedDifference):
        raise TypeError(f"result must be a PairedDifference, got {type(result).__name__}")
    _check_probability(test_fraction, "test_fraction")
    ratio = test_fraction / (1.0 - test_fraction)
    return replace(result, se=result.se * math.sqrt(1.0 + result.n * ratio))


def holm(p_values: Sequence[float] | Any) -> np.ndarray:
    """Holm's step-down adjusted p-values for a family of claims.

    Sort the ``m`` p-values, multiply the ``k``-th smallest by ``m - k + 1``, make the sequence
    non-decreasing and cap it at 1; reject a claim when its adjusted p-value is below alpha.
    Equal to ``statsmodels.stats.multitest.multipletests(p, method="holm")[1]``; it controls
    the family-wise error rate under any dependence between the tests.

    Parameters
    ----------
    p_values : sequence of float in [0, 1]

    Returns
    -------
    numpy.ndarray
        Adjusted p-values, in the input's order.

    Examples
    --------
    >>> holm([0.01, 0.04, 0.03]).round(2).tolist()
    [0.03, 0.06, 0.06]
    """
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1 or p.size == 0:
        raise ValueError(f"p_values must be a non-empty 1-D sequence, got shape {p.shape}")
    if not np.isfinite(p).all() or (p < 0).any() or (p > 1).any():
        raise ValueError(f"p_values must lie in [0, 1], got {p.tolist()}")
    order = np.argsort(p, kind="stable")
    m = p.size
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted


def seeds_needed(sd: float, margin: float, power: float = 0.8, alpha: float = 0.05) -> int:
    """Seeds a two-sided paired t test needs to detect a mean difference of ``margin``.

    The smallest ``n >= 2`` whose power, from the noncentral t distribution with ``n - 1``
    degrees of freedom and noncentrality ``margin / sd * sqrt(n)``, reaches ``power``: the
    ceiling of ``statsmodels.stats.power.TTestPower().solve_power(margin / sd, alpha=alpha,
    power=power)``.

    Parameters
    ----------
    sd : float
        Standard deviation of the per-seed differences (from a pilot run), > 0.
    margin : float
        The smallest difference worth detecting, > 0.
    power, alpha : float
        Wanted power and the test's level, each in (0, 1).

    Examples
    --------
    >>> seeds_needed(sd=0.02, margin=0.02)
    10
    """
    sd = _check_margin(sd, "sd")
    margin = _check_margin(margin)
    _check_probability(power, "power")
    _check_probability(alpha, "alpha")
    effect = margin / sd

    def achieved(n: int) -> float:
        df, nc = n - 1, effect * math.sqrt(n)
        crit = stats.t.isf(alpha / 2.0, df)
        return float(stats.nct.sf(crit, df, nc) + stats.nct.cdf(-crit, df, nc))

    # Power grows with n: double until it is reached, then bisect for the smallest such n.
    low, high = 1, 2
    while achieved(high) < power:
        low, high = high, high * 2
        if high > 2**24:
            raise ValueError("more than 16 million seeds needed: margin / sd is too small")
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if achieved(mid) >= power else (mid, high)
    return high


def _seed_means(values: Any, name: str) -> np.ndarray:
    if hasattr(values, "detach"):
        values = values.detach().cpu().double().numpy()
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"{name} must be numbers, one per seed (or a row per seed): {err}"
        ) from None
    if arr.ndim not in (1, 2):
        raise ValueError(
            f"{name} must be 1-D (one value per seed) or 2-D (seeds, draws), got shape {arr.shape}"
        )
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} holds a value that is not finite (NaN or inf)")
    if arr.ndim == 2:
        if arr.shape[1] == 0:
            raise ValueError(f"{name} has no draws per seed (shape {arr.shape})")
        arr = arr.mean(axis=1)
    return arr


def _check_probability(value: float, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating):
        raise ValueError(f"{name} must be a number in (0, 1), got {value!r}")
    if not 0.0 < float(value) < 1.0:
        raise ValueError(f"{name} must lie strictly between 0 and 1, got {value!r}")


def _check_margin(value: float, name: str = "margin") -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return value
