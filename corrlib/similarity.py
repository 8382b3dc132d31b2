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
in memory at once; it is a stateful module like :class:`corrlib.RunningCorrelation` (``update``,
``compute``, ``reset``, ``merge``, ``state_dict``, and ``sync`` across ``torch.distributed``
ranks), so that CKA over a distributed evaluation needs only one collective.

One kernel (:mod:`corrlib._cka_kernel`) serves all three, and :class:`MinibatchCKA`, which
lives in :mod:`corrlib.streaming_cka` beside :class:`corrlib.RunningCorrelation` (and is
re-exported here): it gives, for two lists of prepared representations, the
self-similarities of each and the cross-similarity matrix. Each representation is scaled
by a power of two before its products are taken, so CKA is scale invariant numerically too
(activations of size 1e-12 or 1e9 in float32 give the CKA of the same data at size 1). A representation that is exactly constant (the
same row for every sample; exact constancy as in :func:`corrlib.corr_matrix`, judged per
column by :func:`corrlib._validation.constant_columns`) has an undefined CKA: NaN with a
:class:`~corrlib.ConstantInputWarning`. Columns that are exactly constant are set to exactly
zero after centring, so the rounding residue of the centring is never taken for variance.
"""

from __future__ import annotations

from typing import Any

import torch

from corrlib._cka_kernel import (
    Rep,
    as_rep_list,
    check_debiased_n,
    check_sample_counts,
    cka_from_terms,
    constant_message,
    dot,
    dtypes,
    exponents,
    hsic_terms,
    prepare,
    unscaled,
    varies,
)
from corrlib._validation import as_real_tensor, check_same_length
from corrlib._warnings import ConstantInputWarning, warn
from corrlib.streaming_cka import MinibatchCKA

__all__ = ["MinibatchCKA", "cka_matrix", "linear_cka", "unbiased_hsic"]


def _prepare_pair(x: Any, y: Any) -> tuple[Rep, Rep, torch.dtype]:
    """Both representations, checked for a common sample count; and the result dtype."""
    xt = as_real_tensor(x, "x")
    yt = as_real_tensor(y, "y")
    if xt.ndim >= 1 and yt.ndim >= 1:
        check_same_length(xt, yt)
    work, out_dtype = dtypes([xt, yt])
    return prepare(xt, "x", work), prepare(yt, "y", work), out_dtype


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
        CKA, in [0, 1] for the plain estimator (the debiased one can fall slightly below 0),
        in the promoted dtype of the inputs (float16 and bfloat16 are computed in float32).
        NaN with a :class:`~corrlib.ConstantInputWarning` when a representation is exactly
        the same for every sample (any constant, not only zero). Differentiable.

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
        check_debiased_n(a.n)
    constant = [name for rep, name in ((a, "x"), (b, "y")) if not rep.varies]
    if constant:
        warn(constant_message(constant), ConstantInputWarning)
    cross, self_a, self_b = hsic_terms([a], [b], debiased)
    device = cross.device
    r = cka_from_terms(cross, self_a, self_b, varies([a], device), varies([b], device), False)
    return r[0, 0].to(out_dtype)


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
        In the promoted dtype of the inputs (float16 and bfloat16 are computed in float32).
        Exactly 0 when a representation is exactly constant (it has no variance to share).
        HSIC grows with the fourth power of the data's scale: a value beyond float16's range
        (about 6.5e4) becomes ``inf`` with a ``RuntimeWarning``; use float32 inputs then.
    """
    a, b, out_dtype = _prepare_pair(x, y)
    check_debiased_n(a.n)
    n = a.n
    scaled = (dot(a, b, True) / (n * (n - 3)))[None, None]
    value = unscaled(scaled, exponents([a]), exponents([b]))[0, 0]
    out = value.to(out_dtype)
    if bool(torch.isfinite(value)) and not bool(torch.isfinite(out)):
        warn(f"unbiased HSIC = {float(value):.3g} overflows {out_dtype}; pass float32 inputs")
    return out


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
        matrix is symmetric with a unit diagonal, and each pair is computed once. The row and
        column of an exactly constant representation are NaN (its diagonal entry too), with a
        :class:`~corrlib.ConstantInputWarning`.

    Raises
    ------
    ValueError
        An empty set, or representations with different sample counts.
    TypeError
        ``reps_a`` or ``reps_b`` is not a list or dict.
    """
    symmetric = reps_b is None
    list_a = as_rep_list(reps_a, "reps_a")
    list_b = list_a if symmetric else as_rep_list(reps_b, "reps_b")
    if not list_a or not list_b:
        raise ValueError("cka_matrix needs at least one representation in each set")
    tensors_a = [as_real_tensor(r, f"reps_a[{i}]") for i, r in enumerate(list_a)]
    tensors_b = (
        tensors_a
        if symmetric
        else [as_real_tensor(r, f"reps_b[{j}]") for j, r in enumerate(list_b)]
    )
    check_sample_counts([("reps_a", tensors_a), ("reps_b", tensors_b)], "all representations")
    work, dtype = dtypes(tensors_a + tensors_b)
    prep_a = [prepare(t, f"reps_a[{i}]", work) for i, t in enumerate(tensors_a)]
    prep_b = (
        prep_a if symmetric else [prepare(t, f"reps_b[{j}]", work) for j, t in enumerate(tensors_b)]
    )
    if debiased:
        check_debiased_n(prep_a[0].n)
    constant = [f"reps_a[{i}]" for i, r in enumerate(prep_a) if not r.varies]
    if not symmetric:
        constant += [f"reps_b[{j}]" for j, r in enumerate(prep_b) if not r.varies]
    if constant:
        warn(constant_message(constant), ConstantInputWarning)
    cross, self_a, self_b = hsic_terms(prep_a, None if symmetric else prep_b, debiased)
    device = cross.device
    out = cka_from_terms(
        cross, self_a, self_b, varies(prep_a, device), varies(prep_b, device), symmetric
    )
    return out.to(dtype)
