"""Layer similarity with linear CKA (centred kernel alignment).

Two representations of the same ``n`` inputs, ``X`` of shape ``(n, d_x)`` and ``Y`` of shape
``(n, d_y)`` (conv activations ``(n, C, H, W)`` are flattened per sample to ``(n, C*H*W)``),
are compared through their centred linear kernels. With ``Xc``, ``Yc`` the column-centred
data,

    HSIC(X, Y) ~ || Yc^T Xc ||_F^2 = tr(Kc Lc),    K = X X^T, L = Y Y^T, Kc = H K H,

and linear CKA is ``HSIC(X, Y) / sqrt(HSIC(X, X) HSIC(Y, Y))``, a number in [0, 1] that does
not change under orthogonal transformations or isotropic scaling of either representation
(Kornblith et al., 2019), but does change under arbitrary invertible linear maps (unlike CCA).

Cost. The left form needs ``d x d`` matrices and ``O(n d^2)`` work; the right one needs
``n x n`` Gram matrices and ``O(n^2 d)`` work. corrlib uses the feature-space form unless
``n < max(d_x, d_y)``, so an ``n x n`` matrix is only ever built when it is the smaller one.

The plain ("biased") estimator is inflated for small ``n`` and wide layers: two unrelated
random representations with ``d >> n`` get a CKA well above 0. ``debiased=True`` replaces
HSIC by the unbiased estimator of Song et al. (2012), as proposed by Nguyen, Raghu and Kornblith
(2021), which removes most of that bias. :class:`MinibatchCKA` averages those unbiased
estimates over mini-batches, so that CKA of a large data set never needs all the activations
in memory at once.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from corrlib._validation import as_float_tensor, check_min_samples, check_same_length, compute_dtype
from corrlib._warnings import ConstantInputWarning

__all__ = ["MinibatchCKA", "cka_matrix", "linear_cka", "unbiased_hsic"]


@dataclass
class _Rep:
    """A centred representation and the pieces every CKA formula needs from it."""

    xc: torch.Tensor  # (n, d), column-centred
    row_sq: torch.Tensor  # (n,), squared norm of each centred row = diagonal of Kc
    sq_norm: torch.Tensor  # 0-d, sum of row_sq = tr(Kc)
    _gram: torch.Tensor | None = None

    @property
    def n(self) -> int:
        return self.xc.shape[0]

    @property
    def d(self) -> int:
        return self.xc.shape[1]

    @property
    def gram(self) -> torch.Tensor:
        """The centred ``n x n`` Gram matrix, built on first use only."""
        if self._gram is None:
            self._gram = self.xc @ self.xc.T
        return self._gram


def _prepare(x: Any, name: str, dtype: torch.dtype | None = None) -> _Rep:
    t = as_float_tensor(x, name)
    if t.ndim < 2:
        raise ValueError(
            f"{name} must be (n_samples, n_features) or (n_samples, ...), got shape {tuple(t.shape)}"
        )
    check_min_samples(t, 2, name)
    t = t.reshape(t.shape[0], -1)
    if t.shape[1] == 0:
        raise ValueError(f"{name} has no features, got shape {tuple(t.shape)}")
    t = t.to(dtype if dtype is not None else compute_dtype(t.dtype))
    xc = t - t.mean(dim=0, keepdim=True)
    row_sq = (xc * xc).sum(dim=1)
    return _Rep(xc, row_sq, row_sq.sum())


def _prepare_pair(x: Any, y: Any) -> tuple[_Rep, _Rep, torch.dtype]:
    """Both representations, checked for a common sample count; and the result dtype."""
    xt = as_float_tensor(x, "x")
    yt = as_float_tensor(y, "y")
    if xt.ndim >= 1 and yt.ndim >= 1:
        check_same_length(xt, yt)
    out_dtype = torch.promote_types(xt.dtype, yt.dtype)
    work = compute_dtype(out_dtype)
    return _prepare(xt, "x", work), _prepare(yt, "y", work), out_dtype


def _dot(a: _Rep, b: _Rep, debiased: bool) -> torch.Tensor:
    """``n (n - 3)`` times the unbiased HSIC (``debiased``) or ``||Yc^T Xc||_F^2``."""
    n = a.n
    if a is b:
        s = (a.gram * a.gram).sum() if n < a.d else torch.linalg.matrix_norm(a.xc.T @ a.xc) ** 2
    elif n < max(a.d, b.d):
        s = (a.gram * b.gram).sum()  # tr(Kc Lc) with symmetric Gram matrices
    else:
        s = torch.linalg.matrix_norm(b.xc.T @ a.xc) ** 2
    if debiased:
        # Song et al. (2012), written for column-centred data (whose Gram rows sum to zero);
        # the estimator does not depend on the centring, so this is the general formula.
        s = s - n / (n - 2) * (a.row_sq @ b.row_sq) + a.sq_norm * b.sq_norm / ((n - 1) * (n - 2))
    return s


def _cka(a: _Rep, b: _Rep, debiased: bool, xx: torch.Tensor, yy: torch.Tensor) -> torch.Tensor:
    xy = _dot(a, b, debiased)
    return xy / torch.sqrt(xx * yy)


def _check_debiased_n(n: int) -> None:
    if n < 4:
        raise ValueError(f"debiased CKA needs at least 4 samples, got {n}")


def _warn_if_constant(*reps: tuple[_Rep, str]) -> None:
    for rep, name in reps:
        if not bool((rep.xc != 0).any()):
            warnings.warn(
                f"{name} is the same for every sample; its CKA is undefined and returned as NaN",
                ConstantInputWarning,
                stacklevel=3,
            )


def linear_cka(x: Any, y: Any, *, debiased: bool = False) -> torch.Tensor:
    """Linear CKA between two representations of the same samples.

    Parameters
    ----------
    x : tensor or array, shape ``(n, d_x)`` or ``(n, ...)``
        One representation, a row per sample; extra dimensions (e.g. ``(n, C, H, W)``
        feature maps) are flattened per sample.
    y : tensor or array, shape ``(n, d_y)`` or ``(n, ...)``
        The other representation of the same ``n`` samples, in the same order.
    debiased : bool
        Use the unbiased HSIC estimator (needs ``n >= 4``). Recommended when ``d`` is large
        compared with ``n``.

    Returns
    -------
    Tensor, 0-d
        CKA, in [0, 1] for the plain estimator (the debiased one can fall slightly below 0).
        NaN with a :class:`~corrlib.ConstantInputWarning` when a representation is the same
        for every sample. Differentiable.

    Raises
    ------
    ValueError
        Different sample counts (the message names both shapes), fewer than 2 samples (4 when
        debiased), or no features.

    Notes
    -----
    Computed as ``||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F)`` in ``O(n d^2)`` when
    ``n >= max(d_x, d_y)``; otherwise through the equal ``n x n`` centred Gram matrices, which
    are then the smaller objects.

    Examples
    --------
    >>> import torch, corrlib
    >>> x = torch.randn(100, 5, generator=torch.Generator().manual_seed(0))
    >>> round(float(corrlib.similarity.linear_cka(x, 3 * x)), 6)
    1.0
    """
    a, b, out_dtype = _prepare_pair(x, y)
    if debiased:
        _check_debiased_n(a.n)
    _warn_if_constant((a, "x"), (b, "y"))
    r = _cka(a, b, debiased, _dot(a, a, debiased), _dot(b, b, debiased))
    return r.to(out_dtype)


def unbiased_hsic(x: Any, y: Any) -> torch.Tensor:
    """Unbiased estimator of HSIC with linear kernels (Song et al., 2012).

    ``HSIC_1 = [tr(K~ L~) + 1^T K~ 1 1^T L~ 1 / ((n-1)(n-2)) - 2/(n-2) 1^T K~ L~ 1] / (n(n-3))``,
    with ``K~``, ``L~`` the Gram matrices ``X X^T``, ``Y Y^T`` with zeroed diagonals; computed
    here without ``n x n`` matrices when ``n >= max(d_x, d_y)``.

    Parameters
    ----------
    x, y : tensor or array, shape ``(n, ...)``
        Representations of the same ``n >= 4`` samples (flattened per sample).

    Returns
    -------
    Tensor, 0-d
    """
    a, b, out_dtype = _prepare_pair(x, y)
    _check_debiased_n(a.n)
    n = a.n
    return (_dot(a, b, True) / (n * (n - 3))).to(out_dtype)


def _common_dtype(tensors: Sequence[torch.Tensor]) -> torch.dtype:
    return functools.reduce(torch.promote_types, (t.dtype for t in tensors))


def _as_rep_list(reps: Any, name: str) -> list[Any]:
    if isinstance(reps, Mapping):
        return list(reps.values())
    if isinstance(reps, torch.Tensor) or not isinstance(reps, Sequence):
        raise TypeError(
            f"{name} must be a list or dict of representations, got {type(reps).__name__}"
        )
    return list(reps)


def cka_matrix(reps_a: Any, reps_b: Any = None, *, debiased: bool = False) -> torch.Tensor:
    """Linear CKA between every pair of representations (layers) of the same samples.

    Parameters
    ----------
    reps_a : list or dict of tensors, each ``(n, ...)``
        Representations of the same ``n`` samples, e.g. the recorded activations of a
        network's layers. For a dict, rows follow its order (``list(reps_a)``).
    reps_b : list or dict of tensors, optional
        A second set (e.g. the layers of another network), on the same samples. Default:
        ``reps_a`` itself.
    debiased : bool
        Use the unbiased HSIC estimator, as in :func:`linear_cka`.

    Returns
    -------
    Tensor, shape ``(len(reps_a), len(reps_b))``
        Entry ``(i, j)`` is ``linear_cka(reps_a[i], reps_b[j])``. Without ``reps_b`` the
        matrix is symmetric with a unit diagonal, and each pair is computed once.

    Raises
    ------
    ValueError
        An empty set, or representations with different sample counts.
    TypeError
        ``reps_a`` or ``reps_b`` is not a list or dict.
    """
    list_a = _as_rep_list(reps_a, "reps_a")
    list_b = list_a if reps_b is None else _as_rep_list(reps_b, "reps_b")
    if not list_a or not list_b:
        raise ValueError("cka_matrix needs at least one representation in each set")
    tensors_a = [as_float_tensor(r, f"reps_a[{i}]") for i, r in enumerate(list_a)]
    tensors_b = (
        tensors_a
        if reps_b is None
        else [as_float_tensor(r, f"reps_b[{j}]") for j, r in enumerate(list_b)]
    )
    first = tensors_a[0]
    for label, group in (("reps_a", tensors_a), ("reps_b", tensors_b)):
        for i, t in enumerate(group):
            if t.ndim < 1 or t.shape[0] != first.shape[0]:
                raise ValueError(
                    "all representations must have the same number of samples, got shapes "
                    f"{tuple(first.shape)} (reps_a[0]) and {tuple(t.shape)} ({label}[{i}])"
                )
    dtype = _common_dtype(tensors_a + tensors_b)
    work = compute_dtype(dtype)
    prep_a = [_prepare(t, f"reps_a[{i}]", work) for i, t in enumerate(tensors_a)]
    prep_b = (
        prep_a
        if reps_b is None
        else [_prepare(t, f"reps_b[{j}]", work) for j, t in enumerate(tensors_b)]
    )
    if debiased:
        _check_debiased_n(prep_a[0].n)
    _warn_if_constant(*((rep, f"reps_a[{i}]") for i, rep in enumerate(prep_a)))
    if reps_b is not None:
        _warn_if_constant(*((rep, f"reps_b[{j}]") for j, rep in enumerate(prep_b)))
    self_a = [_dot(r, r, debiased) for r in prep_a]
    self_b = self_a if reps_b is None else [_dot(r, r, debiased) for r in prep_b]
    out = torch.empty(len(prep_a), len(prep_b), dtype=work, device=first.device)
    for i, a in enumerate(prep_a):
        for j, b in enumerate(prep_b):
            if reps_b is None and j < i:
                out[i, j] = out[j, i]
            elif reps_b is None and i == j:
                out[i, j] = self_a[i] / self_a[i]  # 1, or NaN for a constant representation
            else:
                out[i, j] = _cka(a, b, debiased, self_a[i], self_b[j])
    return out.to(dtype)


class MinibatchCKA:
    """Linear CKA accumulated over mini-batches (Nguyen, Raghu and Kornblith, 2021).

    For each batch the unbiased HSIC (Song et al., 2012) of every pair is computed; the
    result is ``mean(HSIC_xy) / sqrt(mean(HSIC_xx) mean(HSIC_yy))`` over the batches. Memory
    does not grow with the number of batches, and no activation needs to be kept. The value
    estimates the same quantity as ``linear_cka(X, Y, debiased=True)`` on all the data, with
    an error that shrinks as the batches grow; batches should be shuffled, and the same batch
    must be fed to both representations.

    Each :meth:`update` takes one tensor per side (a single pair: :meth:`compute` gives a 0-d
    tensor), or a list of tensors per side (several layers: :meth:`compute` gives the
    ``(len(x), len(y))`` CKA matrix); ``y=None`` compares the layers of ``x`` with themselves.

    Examples
    --------
    >>> import torch
    >>> from corrlib.similarity import MinibatchCKA
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.randn(512, 8, generator=g)
    >>> acc = MinibatchCKA()
    >>> for xb in x.split(128):
    ...     acc.update(xb, 2 * xb)
    >>> round(float(acc.compute()), 6)
    1.0
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget every batch seen."""
        self.n_batches = 0
        self.n_samples = 0
        self._single: bool | None = None
        self._symmetric: bool | None = None
        self._xy: torch.Tensor | None = None
        self._xx: torch.Tensor | None = None
        self._yy: torch.Tensor | None = None
        self._dtype = torch.get_default_dtype()

    def update(self, x: Any, y: Any = None) -> None:
        """Add one batch: a tensor ``(b, ...)`` per side, or a list of them (``b >= 4``)."""
        single = isinstance(x, torch.Tensor) or not isinstance(x, Sequence | Mapping)
        symmetric = y is None
        if single and symmetric:
            raise ValueError("MinibatchCKA.update needs y when x is a single representation")
        list_x = [x] if single else _as_rep_list(x, "x")
        if symmetric:
            list_y = list_x
        else:
            y_single = isinstance(y, torch.Tensor) or not isinstance(y, Sequence | Mapping)
            if y_single != single:
                raise TypeError("x and y must both be tensors or both be lists of tensors")
            list_y = [y] if y_single else _as_rep_list(y, "y")
        if self._single is not None and (single, symmetric) != (self._single, self._symmetric):
            raise ValueError("every update must have the same form (tensor/list, with/without y)")
        tensors_x = [as_float_tensor(t, f"x[{i}]") for i, t in enumerate(list_x)]
        tensors_y = (
            tensors_x
            if symmetric
            else [as_float_tensor(t, f"y[{j}]") for j, t in enumerate(list_y)]
        )
        if not tensors_x or not tensors_y:
            raise ValueError("MinibatchCKA.update needs at least one representation per side")
        first = tensors_x[0]
        for t in tensors_x + tensors_y:
            if t.ndim < 1 or t.shape[0] != first.shape[0]:
                raise ValueError(
                    "every representation in a batch must have the same number of samples, "
                    f"got shapes {tuple(first.shape)} and {tuple(t.shape)}"
                )
        if first.shape[0] < 4:
            raise ValueError(
                f"each batch needs at least 4 samples for the unbiased HSIC, got {first.shape[0]}"
            )
        if self._xy is not None and self._xy.shape != (len(tensors_x), len(tensors_y)):
            raise ValueError(
                f"expected {tuple(self._xy.shape)} representations per side, "
                f"got ({len(tensors_x)}, {len(tensors_y)})"
            )
        work = compute_dtype(_common_dtype(tensors_x + tensors_y))
        prep_x = [_prepare(t, f"x[{i}]", work) for i, t in enumerate(tensors_x)]
        prep_y = (
            prep_x if symmetric else [_prepare(t, f"y[{j}]", work) for j, t in enumerate(tensors_y)]
        )
        n = first.shape[0]
        scale = n * (n - 3)
        xx = torch.stack([_dot(r, r, True) for r in prep_x]) / scale
        yy = xx if symmetric else torch.stack([_dot(r, r, True) for r in prep_y]) / scale
        xy = torch.empty(len(prep_x), len(prep_y), dtype=work, device=first.device)
        for i, a in enumerate(prep_x):
            for j, b in enumerate(prep_y):
                if symmetric and j < i:
                    xy[i, j] = xy[j, i]
                elif symmetric and i == j:
                    xy[i, j] = xx[i]
                else:
                    xy[i, j] = _dot(a, b, True) / scale
        xy, xx, yy = (t.detach().to(torch.float64) for t in (xy, xx, yy))
        if self._xy is None:
            self._xy, self._xx, self._yy = xy, xx, yy
            self._single, self._symmetric = single, symmetric
            self._dtype = work
        else:
            self._xy = self._xy + xy
            self._xx = self._xx + xx
            self._yy = self._yy + yy
        self.n_batches += 1
        self.n_samples += n

    def compute(self) -> torch.Tensor:
        """CKA from the batches seen: a 0-d tensor, or the ``(len(x), len(y))`` matrix.

        Entries whose self-similarity is not positive (e.g. a layer that was constant in
        every batch) are NaN.
        """
        if self._xy is None or self._xx is None or self._yy is None:
            raise RuntimeError("MinibatchCKA.compute called before any update")
        denom = self._xx[:, None] * self._yy[None, :]
        cka = torch.where(
            denom > 0,
            self._xy / torch.sqrt(denom.clamp_min(torch.finfo(torch.float64).tiny)),
            torch.full_like(denom, float("nan")),
        )
        cka = cka.to(self._dtype)
        return cka[0, 0] if self._single else cka
