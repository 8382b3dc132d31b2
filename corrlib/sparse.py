"""Regularised correlation estimates for few samples and many features.

When ``n_samples`` is not much larger than ``n_features`` (and certainly when it is smaller),
the sample covariance is noisy and singular. This module holds the classic remedies in torch,
so that they run on any device:

- :func:`threshold_corr`: set small correlations to zero (hard) or shrink all towards zero
  (soft), the estimators of Bickel and Levina (2008) for sparse correlation matrices;
- :func:`ledoit_wolf`: shrink the covariance towards a multiple of the identity by the amount
  of Ledoit and Wolf (2004), exactly as scikit-learn's ``LedoitWolf``;
- :func:`cov_to_corr`: turn a covariance into a correlation matrix;
- :func:`partial_corr`: partial correlations from data or from a precision matrix (such as
  the sparse one scikit-learn's ``GraphicalLasso`` estimates).
"""

from __future__ import annotations

from typing import Any, Literal

import torch

from corrlib import _moments
from corrlib._validation import (
    as_data,
    check_min_samples,
    check_ndim,
    check_square,
    check_symmetric,
)

__all__ = ["cov_to_corr", "ledoit_wolf", "partial_corr", "threshold_corr"]

ThresholdMode = Literal["hard", "soft"]
MODES = ("hard", "soft")


def threshold_corr(
    C: Any, tau: float, *, mode: ThresholdMode = "hard", sparse: bool = False
) -> torch.Tensor:
    """Threshold the off-diagonal entries of a correlation matrix.

    ``mode="hard"`` keeps an entry ``r`` when ``|r| >= tau`` and sets it to 0 otherwise;
    ``mode="soft"`` maps it to ``sign(r) * max(|r| - tau, 0)``, which also shrinks the entries
    it keeps (and is differentiable almost everywhere). The diagonal is never changed. NaN
    entries stay NaN. Neither rule guarantees a positive semi-definite result.

    Parameters
    ----------
    C : tensor or array, shape ``(d, d)``
        A symmetric correlation (or covariance) matrix.
    tau : float
        Threshold in [0, 1]; ``0`` changes nothing.
    mode : {"hard", "soft"}
        Thresholding rule (see above).
    sparse : bool
        Return a coalesced sparse COO tensor holding only the non-zero entries.

    Returns
    -------
    Tensor, shape ``(d, d)``
        The thresholded matrix, exactly symmetric, on ``C``'s device and in its dtype.

    Raises
    ------
    ValueError
        If ``C`` is not square or not symmetric, ``tau`` is outside [0, 1] or ``mode`` is
        unknown.

    Examples
    --------
    >>> import corrlib
    >>> corrlib.threshold_corr([[1.0, 0.1], [0.1, 1.0]], 0.2)
    tensor([[1., 0.],
            [0., 1.]], dtype=torch.float64)
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    tau = float(tau)
    if not 0.0 <= tau <= 1.0:  # also refuses NaN
        raise ValueError(f"tau must be in [0, 1], got {tau!r}")
    c, out_dtype = _square(C, "C")
    check_symmetric(c, "C")
    c = (c + c.T) / 2  # make the result exactly symmetric
    magnitude = c.abs()
    if mode == "hard":
        out = torch.where((magnitude >= tau) | torch.isnan(c), c, torch.zeros_like(c))
    else:
        out = torch.sign(c) * torch.clamp(magnitude - tau, min=0.0)
    eye = torch.eye(c.shape[0], dtype=torch.bool, device=c.device)
    out = torch.where(eye, c, out).to(out_dtype)
    return out.to_sparse().coalesce() if sparse else out


def ledoit_wolf(x: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Ledoit-Wolf shrinkage covariance, identical to scikit-learn's ``LedoitWolf().fit(x)``.

    The estimate is ``(1 - s) * S + s * mu * I`` where ``S`` is the empirical covariance
    (normalised by ``n``, as scikit-learn's), ``mu = trace(S) / d`` and the shrinkage ``s`` in
    [0, 1] is Ledoit and Wolf's (2004) estimate of the amount that minimises the expected
    squared (Frobenius) error. Unlike ``S``, the result is positive definite whenever
    ``s > 0``, even with fewer samples than features.

    Parameters
    ----------
    x : tensor or array, shape ``(n_samples, n_features)``
        Data, ``n_samples >= 2``; they are centred on their column means.

    Returns
    -------
    covariance : Tensor, shape ``(n_features, n_features)``
        The shrunk covariance (``LedoitWolf().covariance_``).
    shrinkage : Tensor, 0-d
        The shrinkage ``s`` (``LedoitWolf().shrinkage_``); 0 for a single feature.

    Both on ``x``'s device and in its floating dtype (float16/bfloat16 computed in float32).

    Raises
    ------
    ValueError
        If ``x`` is not 2-D, has fewer than two samples, or holds NaN or infinite values.

    Examples
    --------
    >>> import torch, corrlib
    >>> cov, s = corrlib.ledoit_wolf(torch.randn(10, 50, dtype=torch.float64))
    >>> bool(torch.linalg.eigvalsh(cov).min() > 0)
    True
    """
    t, out_dtype = _finite_data(x)
    n, d = t.shape
    xc = t - t.mean(dim=0)
    emp_cov = xc.T @ xc / n
    mu = torch.trace(emp_cov) / d
    if d == 1:
        shrinkage = torch.zeros((), dtype=t.dtype, device=t.device)
    else:
        # The sums of scikit-learn's ledoit_wolf_shrinkage, in closed form:
        # beta_ = sum((X**2).T @ X**2) = sum_k ||x_k||^4, delta_ = ||X.T @ X||_F^2 / n^2.
        beta_ = ((xc * xc).sum(dim=1) ** 2).sum()
        delta_ = (emp_cov * emp_cov).sum()
        beta = (beta_ / n - delta_) / (d * n)
        delta = (delta_ - 2.0 * mu * torch.trace(emp_cov) + d * mu * mu) / d
        beta = torch.minimum(beta, delta)
        safe_delta = torch.where(delta > 0, delta, torch.ones_like(delta))
        shrinkage = torch.where(beta == 0, torch.zeros_like(beta), beta / safe_delta)
    eye = torch.eye(d, dtype=t.dtype, device=t.device)
    covariance = (1.0 - shrinkage) * emp_cov + (shrinkage * mu) * eye
    return covariance.to(out_dtype), shrinkage.to(out_dtype)


def cov_to_corr(S: Any) -> torch.Tensor:
    """Correlation matrix of a covariance matrix: ``S_ij / sqrt(S_ii * S_jj)``.

    Parameters
    ----------
    S : tensor or array, shape ``(d, d)``
        A covariance matrix with a positive diagonal.

    Returns
    -------
    Tensor, shape ``(d, d)``
        Entries clamped to [-1, 1], diagonal exactly 1; on ``S``'s device and in its dtype.

    Raises
    ------
    ValueError
        If ``S`` is not square, not symmetric (see ``corrlib._validation.check_symmetric``),
        or a variance (diagonal entry) is not positive.

    Examples
    --------
    >>> import corrlib
    >>> corrlib.cov_to_corr([[4.0, 2.0], [2.0, 9.0]])
    tensor([[1.0000, 0.3333],
            [0.3333, 1.0000]], dtype=torch.float64)
    """
    s, out_dtype = _square(S, "S")
    check_symmetric(s, "S")
    var = torch.diagonal(s)
    if not bool((var > 0).all()):
        bad = torch.nonzero(~(var > 0)).flatten().tolist()
        raise ValueError(
            f"S of shape {tuple(s.shape)} has non-positive variances at indices {bad[:10]}"
        )
    return _normalise(s).to(out_dtype)


def partial_corr(x: Any = None, *, precision: Any = None) -> torch.Tensor:
    """Partial correlations: each pair's correlation once all other variables are held fixed.

    With ``P`` the precision matrix (the inverse covariance), the partial correlation of
    variables ``i`` and ``j`` given the rest is ``-P_ij / sqrt(P_ii * P_jj)``. It equals the
    correlation of the residuals of ``i`` and ``j`` after a least-squares regression of each
    on all the other variables (with an intercept). A zero means conditional independence
    for Gaussian data, which is why a sparse precision (graphical lasso) draws a graph.

    Give exactly one of:

    Parameters
    ----------
    x : tensor or array, shape ``(n_samples, n_features)``, optional
        Data; the precision is the inverse of their sample covariance, which exists only when
        ``n_samples > n_features`` and no column is a linear combination of the others.
    precision : tensor or array, shape ``(d, d)``, optional
        A symmetric positive definite precision matrix, e.g. scikit-learn's
        ``GraphicalLasso().fit(x).precision_``.

    Returns
    -------
    Tensor, shape ``(d, d)``
        Partial correlations, diagonal exactly 1, on the input's device and in its dtype.

    Raises
    ------
    ValueError
        If neither or both inputs are given, shapes are wrong, the data hold NaN or infinite
        values, or the covariance / precision is singular (not positive definite).
    """
    if (x is None) == (precision is None):
        raise ValueError("give exactly one of x (data) and precision")
    if x is not None:
        t, out_dtype = _finite_data(x)
        n, d = t.shape
        if n <= d:
            raise ValueError(
                f"the sample covariance of x with shape {tuple(t.shape)} is singular "
                "(n_samples <= n_features); estimate a precision matrix instead, e.g. with "
                "sklearn.covariance.GraphicalLasso, and pass precision="
            )
        # partial correlations do not change when a column is scaled: scale each by a power
        # of two near its largest magnitude (exact), so no product under- or overflows
        t = _moments.unit_scaled(t, t.detach().abs().amax(dim=0))[0]
        xc = t - t.mean(dim=0)
        cov = xc.T @ xc / (n - 1)
        _check_positive_definite(cov, "the sample covariance of x")
        p = torch.cholesky_inverse(torch.linalg.cholesky(cov))
    else:
        p, out_dtype = _square(precision, "precision")
        _check_finite(p, "precision")
        check_symmetric(p, "precision")
        p = (p + p.T) / 2
        _check_positive_definite(p, "precision")
    r = -_normalise(p)
    eye = torch.eye(r.shape[0], dtype=torch.bool, device=r.device)
    return torch.where(eye, torch.ones_like(r), r).to(out_dtype)


# --------------------------------------------------------------------------------------------
# helpers


def _square(M: Any, name: str) -> tuple[torch.Tensor, torch.dtype]:
    """``M`` in its compute dtype, checked to be a non-empty square matrix; the result dtype."""
    t, out_dtype = as_data(M, name)
    check_square(t, name)
    return t, out_dtype


def _finite_data(x: Any) -> tuple[torch.Tensor, torch.dtype]:
    """Data ``(n_samples, n_features)`` checked finite, in its compute dtype; and its own dtype."""
    t, out_dtype = as_data(x, "x")
    check_ndim(t, 2, "x")
    check_min_samples(t, 2, "x")
    _check_finite(t, "x")
    return t, out_dtype


def _check_finite(t: torch.Tensor, name: str) -> None:
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} of shape {tuple(t.shape)} contains NaN or infinite values")


def _check_positive_definite(m: torch.Tensor, name: str) -> None:
    """Raise ``ValueError`` unless the symmetric matrix ``m`` is numerically positive definite.

    Singular means: some eigenvalue is not above ``d * eps`` times the largest one, the usual
    numerical-rank tolerance (as in ``numpy.linalg.matrix_rank``).
    """
    d = m.shape[0]
    eig = torch.linalg.eigvalsh(m.detach())
    top = float(eig[-1])
    bottom = float(eig[0])
    tol = d * torch.finfo(m.dtype).eps * max(abs(top), abs(bottom))
    if not (top > 0 and bottom > tol):
        raise ValueError(
            f"{name} of shape {tuple(m.shape)} is singular or not positive definite "
            f"(eigenvalues from {bottom:.3g} to {top:.3g})"
        )


def _normalise(s: torch.Tensor) -> torch.Tensor:
    """``s_ij / sqrt(s_ii s_jj)`` by the library's one moments-to-correlation step."""
    return _moments.correlation(s, torch.diagonal(s))
