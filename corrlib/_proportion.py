"""Confidence intervals for a proportion (an accuracy): Wilson and Clopper-Pearson.

Re-exported by :mod:`corrlib.inference`, where :func:`proportion_ci` is documented.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from corrlib._intervals import ConfidenceInterval, normal_quantile
from corrlib._intervals import check_confidence as _check_confidence
from corrlib._lazy import lazy_import

stats = lazy_import("scipy.stats")  # imported on first use, not with corrlib

PROPORTION_METHODS = ("wilson", "clopper-pearson")


def proportion_ci(
    successes: Any,
    n: Any,
    confidence_level: float = 0.95,
    method: str = "wilson",
) -> ConfidenceInterval:
    """Confidence interval for a proportion, such as an accuracy over ``n`` test images.

    ``"wilson"``: the score interval (Wilson 1927), which keeps its coverage near the nominal
    level even for accuracies close to 0 or 1, unlike the normal ``p +- 1.96 se``.
    ``"clopper-pearson"``: the exact interval from Beta quantiles, never below the nominal
    coverage (conservative). Equal to ``statsmodels.stats.proportion.proportion_confint`` with
    ``method="wilson"`` and ``method="beta"``.

    Parameters
    ----------
    successes : int or array of int
        Number of successes (correct predictions), ``0 <= successes <= n``.
    n : int or array of int
        Number of trials, ``>= 1``.
    confidence_level : float
        In (0, 1).
    method : {"wilson", "clopper-pearson"}

    Returns
    -------
    ConfidenceInterval
        ``(low, high)``: floats for scalar input, NumPy arrays for array input.

    Raises
    ------
    ValueError
        For ``successes > n``, negative or non-integer counts, ``n < 1``, a level outside
        (0, 1) or an unknown method.

    Examples
    --------
    >>> from corrlib.inference import proportion_ci
    >>> low, high = proportion_ci(90, 100)
    >>> round(low, 4), round(high, 4)
    (0.8256, 0.9448)
    """
    _check_confidence(confidence_level)
    if method not in PROPORTION_METHODS:
        raise ValueError(f"method must be one of {PROPORTION_METHODS}, got {method!r}")
    k = _counts(successes, "successes")
    m = _counts(n, "n")
    if (m < 1).any():
        raise ValueError(f"n must be at least 1, got {n!r}")
    if (k > m).any():
        raise ValueError(f"successes must not exceed n, got successes={successes!r}, n={n!r}")
    alpha = 1.0 - confidence_level
    if method == "wilson":
        q = normal_quantile(1.0 - alpha / 2.0)
        p_hat = k / m
        centre = (p_hat + q**2 / (2 * m)) / (1 + q**2 / m)
        half = q * np.sqrt(p_hat * (1 - p_hat) / m + q**2 / (4 * m**2)) / (1 + q**2 / m)
        # Mathematically low <= p_hat <= high, with ends 0 and 1 at k = 0 and k = n: keep it so.
        low = np.clip(centre - half, 0.0, p_hat)
        high = np.clip(centre + half, p_hat, 1.0)
    else:
        with np.errstate(invalid="ignore"):
            low = np.where(k > 0, stats.beta.ppf(alpha / 2.0, k, m - k + 1), 0.0)
            high = np.where(k < m, stats.beta.isf(alpha / 2.0, k + 1, m - k), 1.0)
    if np.ndim(successes) == 0 and np.ndim(n) == 0:
        return ConfidenceInterval(float(low), float(high))
    return ConfidenceInterval(np.asarray(low, dtype=float), np.asarray(high, dtype=float))


def _counts(value: Any, name: str) -> Any:
    """``value`` as a float64 array of non-negative whole numbers, or a ValueError."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} must be a whole number (or an array of them), got {value!r}"
        ) from None
    if arr.dtype == bool or np.asarray(value).dtype == bool:
        raise ValueError(f"{name} must be a whole number, got a boolean")
    if not np.isfinite(arr).all() or (arr < 0).any() or (arr != np.round(arr)).any():
        raise ValueError(f"{name} must hold non-negative whole numbers, got {value!r}")
    return arr
