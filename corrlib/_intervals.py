"""The interval type and the normal quantile that every corrlib interval shares.

Re-exported by :mod:`corrlib.inference`, where they are documented.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch


class ConfidenceInterval(NamedTuple):
    """Lower and upper bound of a confidence interval (the one interval type of corrlib)."""

    low: Any
    high: Any


def normal_quantile(p: Any) -> Any:
    """The standard-normal quantile ``Phi^-1(p)`` (``scipy.stats.norm.ppf``), corrlib's one.

    ``normal_quantile(0.975)`` is 1.959964..., the ``z`` of a two-sided 95 % interval:
    a two-sided interval at ``confidence_level`` uses ``normal_quantile((1 + level) / 2)``.
    Computed by ``torch.special.ndtri`` in float64 (no scipy import).

    Parameters
    ----------
    p : float or array
        Probabilities in [0, 1] (0 and 1 give ``-inf`` and ``inf``).

    Returns
    -------
    float for a scalar ``p``, else a NumPy float64 array of ``p``'s shape.
    """
    q = torch.special.ndtri(torch.as_tensor(np.asarray(p, dtype=np.float64)))
    return float(q) if q.ndim == 0 else q.numpy()


def check_confidence(confidence_level: Any, name: str = "confidence_level") -> float:
    """``confidence_level`` as a float strictly between 0 and 1, or a ValueError naming ``name``."""
    if isinstance(confidence_level, bool) or not isinstance(
        confidence_level, int | float | np.floating
    ):
        raise ValueError(f"{name} must be a number in (0, 1), got {confidence_level!r}")
    if not 0.0 < float(confidence_level) < 1.0:
        raise ValueError(f"{name} must lie strictly between 0 and 1, got {confidence_level!r}")
    return float(confidence_level)
