"""Whitening: linear maps that turn correlated features into uncorrelated, unit-variance ones.

Correlated inputs make gradient descent slow: the Hessian of a least-squares loss is the
input covariance, and the number of steps plain gradient descent needs grows with its
condition number (:func:`condition_number`). A whitening transform ``z = (x - mean) @ W``
makes the covariance of ``z`` the identity, whose condition number is 1.

Two whitening matrices are provided. Both are built from the eigendecomposition
``cov = U diag(lam) U^T`` of the training covariance:

* :class:`PCAWhitening` rotates onto the principal axes and rescales them:
  ``W = U diag(1 / sqrt(lam + eps))``. Component ``k`` of the output is the ``k``-th principal
  component, in order of decreasing variance.
* :class:`ZCAWhitening` rotates back afterwards: ``W = U diag(1 / sqrt(lam + eps)) U^T``, a
  symmetric matrix. Of all whitening matrices it is the one whose output stays closest to the
  (centred) input in mean squared distance (Kessy, Lewin and Strimmer, 2018), so whitened
  images still look like images.

``eps`` is added to every eigenvalue. It keeps the transform finite when the covariance is
singular (more features than samples, or a feature that is a linear combination of others):
directions without variance are then multiplied by ``1 / sqrt(eps)`` instead of infinity, and
since the training data have no extent along them, the whitened training data stay finite.
The price is that the output covariance is ``lam / (lam + eps)`` along each principal axis
rather than exactly 1; with ``eps=0`` it is exactly the identity, but a singular covariance
is then refused.

References
----------
Kessy, A., Lewin, A., & Strimmer, K. (2018). Optimal whitening and decorrelation.
*The American Statistician*, 72(4), 309-314.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from corrlib._validation import (
    SYMMETRY_EPS_FACTOR,
    as_data,
    check_min_samples,
    check_ndim,
    check_square,
    check_symmetric,
)

__all__ = ["PCAWhitening", "ZCAWhitening", "condition_number"]


def condition_number(cov: Any, eps: float = 0.0) -> torch.Tensor:
    """Ratio of the largest to the smallest eigenvalue of a symmetric PSD matrix.

    Parameters
    ----------
    cov : tensor or array, shape (d, d)
        A symmetric positive semi-definite matrix, such as a covariance or a correlation matrix.
    eps : float, default 0.0
        Added to every eigenvalue first, as the whiteners in this module do: the result is the
        condition number of ``cov + eps * I``, which is finite for every ``eps > 0``.

    Returns
    -------
    Tensor, 0-d
        ``(lam_max + eps) / (lam_min + eps)``, in the input's (floating) dtype and on its device.
        Eigenvalues that rounding makes slightly negative are clipped at zero. With ``eps=0`` a
        singular matrix gives ``inf`` when its smallest eigenvalue comes out as exactly zero
        (or negative) and a very large finite number when rounding leaves it a tiny positive
        value: numerically, a condition number above ``1 / finfo(dtype).eps`` (about 4.5e15 in
        float64, 8.4e6 in float32) means "singular". The all-zero matrix gives ``nan``.

    Raises
    ------
    ValueError
        If ``cov`` is not a square 2-D matrix, is not symmetric, is indefinite (an eigenvalue
        below ``-1e3 * eps(dtype) * max |eigenvalue|``, beyond rounding), or ``eps`` is
        negative.
    """
    c, out_dtype = as_data(cov, "cov")
    check_square(c, "cov")
    if eps < 0:
        raise ValueError(f"eps must be >= 0, got {eps}")
    work = c
    if not bool(torch.isfinite(work).all()):
        raise ValueError(f"cov of shape {tuple(c.shape)} contains NaN or infinite values")
    check_symmetric(work, "cov")
    eigvals = torch.linalg.eigvalsh(work)
    # Rounding leaves a PSD matrix's zero eigenvalues within a few eps of the largest one.
    tol = SYMMETRY_EPS_FACTOR * torch.finfo(work.dtype).eps * float(eigvals.abs().max())
    if float(eigvals[0]) < -tol:
        raise ValueError(
            f"cov is not positive semi-definite: its smallest eigenvalue is "
            f"{float(eigvals[0]):.3g} (largest {float(eigvals[-1]):.3g}); the condition number "
            "of a covariance is defined for PSD matrices only"
        )
    eigvals = eigvals.clamp(min=0) + eps
    return (eigvals[-1] / eigvals[0]).to(out_dtype)


class _Whitening(nn.Module):
    """Shared machinery: fit the mean and the eigendecomposition, apply ``(x - mean) @ W``."""

    def __init__(self, eps: float = 1e-5) -> None:
        super().__init__()
        if not eps >= 0:
            raise ValueError(f"eps must be >= 0, got {eps}")
        self.eps = float(eps)
        self.register_buffer("mean_", None)
        self.register_buffer("eigenvalues_", None)
        self.register_buffer("eigenvectors_", None)
        self.register_buffer("whitening_matrix_", None)
        self.register_buffer("coloring_matrix_", None)

    # --- the part each whitener defines -------------------------------------------------
    def _matrices(
        self, eigvals: torch.Tensor, eigvecs: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(W, W_inv)`` from eigenvalues (descending, eps added) and eigenvectors."""
        raise NotImplementedError

    # --- public API -----------------------------------------------------------------------
    @property
    def is_fitted(self) -> bool:
        """Whether :meth:`fit` has been called."""
        return self.whitening_matrix_ is not None

    @property
    def num_features(self) -> int | None:
        """Number of features seen by :meth:`fit` (``None`` before fitting)."""
        return None if self.mean_ is None else int(self.mean_.shape[0])

    @torch.no_grad()
    def fit(self, x: Any) -> _Whitening:
        """Estimate the mean and the whitening matrix from training data.

        Parameters
        ----------
        x : tensor or array, shape (n_samples, n_features)
            Training data, at least 2 samples. The covariance uses the ``n - 1`` denominator
            (as ``numpy.cov`` and ``torch.cov``), so ``numpy.cov`` of the whitened training
            data is the identity (up to ``eps``).

        Returns
        -------
        self
            The buffers (``mean_``, ``eigenvalues_`` in decreasing order, ``eigenvectors_`` as
            columns, ``whitening_matrix_``, ``coloring_matrix_``) live on ``x``'s device, in
            its dtype (float32 for half precision inputs).

        Raises
        ------
        ValueError
            If ``x`` is not 2-D, has fewer than 2 samples or non-finite values, or if
            ``eps=0`` and the covariance is singular.
        """
        t, _ = as_data(x, "x")
        check_ndim(t, 2, "x")
        check_min_samples(t, 2, "x")
        if not bool(torch.isfinite(t).all()):
            raise ValueError("x contains NaN or infinite values; whitening needs finite data")
        mean = t.mean(dim=0)
        xc = t - mean
        cov = xc.T @ xc / (t.shape[0] - 1)
        cov = (cov + cov.T) / 2
        eigvals, eigvecs = torch.linalg.eigh(cov)
        # Decreasing order, and a deterministic sign: the largest entry of each vector positive.
        eigvals = eigvals.flip(0).clamp(min=0)
        eigvecs = eigvecs.flip(1)
        idx = eigvecs.abs().argmax(dim=0)
        signs = torch.sign(eigvecs[idx, torch.arange(eigvecs.shape[1], device=t.device)])
        eigvecs = eigvecs * torch.where(signs == 0, torch.ones_like(signs), signs)
        if self.eps == 0:
            floor = eigvals[0] * t.shape[1] * torch.finfo(t.dtype).eps
            if bool(eigvals[-1] <= floor):
                raise ValueError(
                    f"the covariance of x (shape {tuple(t.shape)}) is singular "
                    f"(smallest eigenvalue {float(eigvals[-1]):.3e}); use eps > 0"
                )
        w, w_inv = self._matrices(eigvals + self.eps, eigvecs)
        self.mean_ = mean
        self.eigenvalues_ = eigvals
        self.eigenvectors_ = eigvecs
        self.whitening_matrix_ = w
        self.coloring_matrix_ = w_inv
        return self

    def transform(self, x: Any) -> torch.Tensor:
        """Whiten ``x``: ``(x - mean_) @ whitening_matrix_``.

        Differentiable with respect to ``x``. The result has ``x``'s dtype (torch's default
        float dtype for integer inputs; float16 and bfloat16 are computed in float32) and lives
        on ``x``'s device; the fitted buffers are moved there.

        Raises
        ------
        RuntimeError
            If the whitener has not been fitted.
        ValueError
            If ``x`` is not 2-D or its number of features differs from the training data's.
        """
        t, out_dtype = self._check_input(x)
        w = self.whitening_matrix_.to(device=t.device, dtype=t.dtype)
        mean = self.mean_.to(device=t.device, dtype=t.dtype)
        return ((t - mean) @ w).to(out_dtype)

    def inverse_transform(self, z: Any) -> torch.Tensor:
        """Undo :meth:`transform`: ``z @ coloring_matrix_ + mean_``."""
        t, out_dtype = self._check_input(z, "z")
        w_inv = self.coloring_matrix_.to(device=t.device, dtype=t.dtype)
        mean = self.mean_.to(device=t.device, dtype=t.dtype)
        return (t @ w_inv + mean).to(out_dtype)

    def fit_transform(self, x: Any) -> torch.Tensor:
        """:meth:`fit` on ``x``, then :meth:`transform` it."""
        return self.fit(x).transform(x)

    def forward(self, x: Any) -> torch.Tensor:
        """Same as :meth:`transform`, so that a fitted whitener can sit in ``nn.Sequential``."""
        return self.transform(x)

    def extra_repr(self) -> str:
        return f"eps={self.eps}, num_features={self.num_features}"

    def _check_input(self, x: Any, name: str = "x") -> tuple[torch.Tensor, torch.dtype]:
        """``x`` in its compute dtype (checked against the fit), and the result dtype."""
        if not self.is_fitted:
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit(x) first")
        t, out_dtype = as_data(x, name)
        check_ndim(t, 2, name)
        if t.shape[1] != self.num_features:
            raise ValueError(
                f"{name} has {t.shape[1]} features (shape {tuple(t.shape)}), but the whitener "
                f"was fitted on {self.num_features}"
            )
        return t, out_dtype


class PCAWhitening(_Whitening):
    """PCA whitening: project onto the principal axes and give each unit variance.

    ``z = (x - mean) @ U diag(1 / sqrt(lam + eps))``, with the eigenvalues ``lam`` of the
    training covariance in decreasing order, so column ``k`` of ``z`` is the ``k``-th principal
    component scaled to unit variance. Eigenvector signs are fixed (largest entry positive),
    so the output is deterministic.

    Parameters
    ----------
    eps : float, default 1e-5
        Added to every eigenvalue; see the module docstring. ``eps=0`` gives an exactly
        identity output covariance but refuses singular training data.

    Examples
    --------
    >>> import torch
    >>> from corrlib.whitening import PCAWhitening
    >>> x = torch.randn(500, 3, dtype=torch.float64) @ torch.tensor(
    ...     [[2.0, 0.0, 0.0], [1.5, 0.5, 0.0], [0.0, 0.3, 1.0]], dtype=torch.float64)
    >>> z = PCAWhitening(eps=0).fit_transform(x)
    >>> torch.allclose(torch.cov(z.T), torch.eye(3, dtype=torch.float64))
    True
    """

    def _matrices(
        self, eigvals: torch.Tensor, eigvecs: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        scale = eigvals.rsqrt()
        w = eigvecs * scale
        w_inv = eigvecs.T * eigvals.sqrt()[:, None]
        return w, w_inv


class ZCAWhitening(_Whitening):
    """ZCA (Mahalanobis) whitening: the symmetric whitening matrix ``cov^(-1/2)``.

    ``z = (x - mean) @ U diag(1 / sqrt(lam + eps)) U^T``. Among all matrices that whiten the
    training data it keeps ``z`` closest to ``x - mean`` in mean squared distance, so each
    output feature still corresponds to one input feature.

    Parameters
    ----------
    eps : float, default 1e-5
        Added to every eigenvalue; see the module docstring.

    Examples
    --------
    >>> import torch
    >>> from corrlib.whitening import ZCAWhitening
    >>> x = torch.randn(500, 2, dtype=torch.float64) @ torch.tensor(
    ...     [[1.0, 0.9], [0.0, 0.4]], dtype=torch.float64)
    >>> zca = ZCAWhitening(eps=0).fit(x)
    >>> torch.allclose(zca.whitening_matrix_, zca.whitening_matrix_.T)
    True
    """

    def _matrices(
        self, eigvals: torch.Tensor, eigvecs: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        w = (eigvecs * eigvals.rsqrt()) @ eigvecs.T
        w_inv = (eigvecs * eigvals.sqrt()) @ eigvecs.T
        return (w + w.T) / 2, (w_inv + w_inv.T) / 2
