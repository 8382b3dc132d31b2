"""One-number summaries of a correlation matrix: how redundant a set of features is.

:func:`mean_abs_offdiag` is the average strength of the pairwise correlations;
:func:`effective_rank` counts how many independent directions the features span. Both take
a square matrix (a correlation matrix from :func:`corrlib.corr_matrix`,
:class:`corrlib.RunningCorrelation` or :class:`corrlib.hooks.FeatureCorrelationMonitor`).
"""

from __future__ import annotations

from typing import Any

import torch

from corrlib._validation import as_data, check_square

__all__ = ["effective_rank", "mean_abs_offdiag"]


def mean_abs_offdiag(c: Any) -> torch.Tensor:
    """Mean absolute off-diagonal entry of a square matrix (a redundancy score in ``[0, 1]``
    for a correlation matrix).

    Parameters
    ----------
    c : tensor or array, shape (d, d)
        Correlation (or any square) matrix, ``d >= 2``.

    Returns
    -------
    Tensor
        0-d tensor in ``c``'s dtype and device (float16 and bfloat16 are averaged in float32).
        NaN entries (the rows and columns of constant
        features) are left out of the mean; NaN if no off-diagonal entry is finite.
    """
    t, out_dtype = as_data(c, "C")
    check_square(t, "C")
    d = t.shape[0]
    if d < 2:
        raise ValueError(f"C needs at least 2 features to have off-diagonal entries, got {d}")
    off = t[~torch.eye(d, dtype=torch.bool, device=t.device)].abs()
    # summed in float32 for half precision: a float16 sum of d^2 entries overflows early
    return off.nanmean().to(out_dtype)


def effective_rank(c: Any) -> torch.Tensor:
    """Effective rank of a matrix (Roy and Vetterli, 2007).

    With the singular values ``s_i`` (the eigenvalues, for a correlation matrix) normalised to
    ``p_i = s_i / sum(s)``, the effective rank is ``exp(-sum p_i log p_i)``: ``d`` for the
    ``d x d`` identity (uncorrelated features), 1 for a rank-one matrix (perfectly correlated
    features), and in between for partial redundancy.

    Parameters
    ----------
    c : tensor or array, shape (d, d)
        A square matrix without NaN (drop constant features first).

    Returns
    -------
    Tensor
        0-d tensor in ``c``'s dtype and device (float16 and bfloat16 are computed in float32).

    References
    ----------
    O. Roy and M. Vetterli, "The effective rank: a measure of effective dimensionality",
    EUSIPCO 2007.
    """
    t, out_dtype = as_data(c, "C")
    check_square(t, "C")
    if t.shape[0] == 0:
        raise ValueError("C must have at least one feature, got shape (0, 0)")
    if not bool(torch.isfinite(t).all()):
        raise ValueError("C contains NaN or infinite entries; drop those features first")
    s = torch.linalg.svdvals(t)
    total = s.sum()
    if not bool(total > 0):
        raise ValueError("C is the zero matrix; its effective rank is undefined")
    p = s / total
    entropy = -torch.special.xlogy(p, p).sum()
    return entropy.exp().to(out_dtype)
