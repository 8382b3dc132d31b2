"""Comparing two arms of an experiment run over the same seeds: paired differences.

When arm A (say, a penalty) and arm B (its control, lambda = 0) are trained from the same seeds,
seed ``i`` gives a pair ``(a_i, b_i)`` that shares the initialisation and the data order. The
differences ``d_i = a_i - b_i`` remove what the seeds have in common, so their mean and its
standard error ``sd(d) / sqrt(n)`` judge the effect far more sharply than two separate means.
A claim "A beats B" is then held by ``mean > 2 * se``; a null result by ``|mean| < 2 * se``.

Examples
--------
>>> res = paired_difference([0.91, 0.93, 0.92], [0.89, 0.90, 0.90])
>>> print(res)
+0.023 ± 0.003 (n = 3 seeds)
>>> round(res.z, 1)
7.0
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["PairedDifference", "paired_difference"]


@dataclass(frozen=True)
class PairedDifference:
    """Mean of paired differences ``treatment - control`` and its standard error.

    Attributes
    ----------
    mean : float
        Mean difference over the seeds.
    se : float
        Standard error of that mean, ``sd(d, ddof=1) / sqrt(n)``.
    n : int
        Number of pairs (seeds).
    differences : tuple of float
        The per-seed differences.
    """

    mean: float
    se: float
    n: int
    differences: tuple[float, ...]

    @property
    def z(self) -> float:
        """``mean / se``: how many standard errors the mean lies from zero (inf if se is 0)."""
        if self.se == 0:
            return math.copysign(math.inf, self.mean) if self.mean != 0 else 0.0
        return self.mean / self.se

    def format(self, digits: int = 3) -> str:
        """``"+0.023 ± 0.003 (n = 3 seeds)"`` with ``digits`` decimals."""
        return f"{self.mean:+.{digits}f} ± {self.se:.{digits}f} (n = {self.n} seeds)"

    def __str__(self) -> str:
        return self.format()


def paired_difference(
    treatment: Sequence[float] | Any, control: Sequence[float] | Any
) -> PairedDifference:
    """Paired differences ``treatment[i] - control[i]`` over seeds, with their standard error.

    Parameters
    ----------
    treatment, control : sequence of float, array or tensor, shape ``(n,)``
        One value per seed, in the same seed order.

    Returns
    -------
    PairedDifference
        ``mean``, ``se``, ``n``, ``differences`` and ``z = mean / se``.

    Raises
    ------
    ValueError
        If the two arms differ in length, hold fewer than two seeds, are not 1-D, or hold a
        value that is not finite.
    """
    a = _as_vector(treatment, "treatment")
    b = _as_vector(control, "control")
    if a.shape != b.shape:
        raise ValueError(
            f"treatment and control must hold one value per seed each, got {a.size} and {b.size}"
        )
    if a.size < 2:
        raise ValueError(f"a standard error needs at least 2 seeds, got {a.size}")
    d = a - b
    se = float(d.std(ddof=1) / math.sqrt(d.size))
    return PairedDifference(float(d.mean()), se, int(d.size), tuple(float(v) for v in d))


def _as_vector(values: Any, name: str) -> np.ndarray:
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one value per seed), got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} holds a value that is not finite: {arr.tolist()}")
    return arr
