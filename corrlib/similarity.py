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

One kernel serves all three: :func:`_hsic_terms` gives, for two lists of prepared
representations, the self-similarities of each and the cross-similarity matrix, and
:func:`_cka_from_terms` turns them into CKA. A representation that is exactly constant (the
same row for every sample; exact constancy as in :func:`corrlib.corr_matrix`, judged per
column by :func:`corrlib._validation.constant_columns`) has an undefined CKA: NaN with a
:class:`~corrlib.ConstantInputWarning`. Columns that are exactly constant are set to exactly
zero after centring, so the rounding residue of the centring is never taken for variance.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from corrlib._validation import (
    as_real_tensor,
    check_min_samples,
    check_same_length,
    compute_dtype,
    constant_columns,
    result_dtype,
)
from corrlib._warnings import ConstantInputWarning

__all__ = ["MinibatchCKA", "cka_matrix", "linear_cka", "unbiased_hsic"]

# Result dtypes a MinibatchCKA state can have, by code (for exchanging them between ranks).
_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


# --------------------------------------------------------------------------------------------
# the kernel


@dataclass
class _Rep:
    """A centred representation and the pieces every CKA formula needs from it."""

    xc: torch.Tensor  # (n, d), column-centred; exactly constant columns exactly 0
    row_sq: torch.Tensor  # (n,), squared norm of each centred row = diagonal of Kc
    sq_norm: torch.Tensor  # 0-d, sum of row_sq = tr(Kc)
    varies: bool  # False when every column is exactly constant (every row the same)
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


def _as_samples_matrix(x: Any, name: str) -> torch.Tensor:
    """``x`` as a float tensor ``(n, d)``: one row per sample, extra dimensions flattened."""
    t = as_real_tensor(x, name)
    if t.ndim < 2:
        raise ValueError(
            f"{name} must be (n_samples, n_features) or (n_samples, ...), got shape {tuple(t.shape)}"
        )
    check_min_samples(t, 2, name)
    t = t.reshape(t.shape[0], -1)
    if t.shape[1] == 0:
        raise ValueError(f"{name} has no features, got shape {tuple(t.shape)}")
    return t


def _prepare(x: Any, name: str, dtype: torch.dtype | None = None) -> _Rep:
    t = _as_samples_matrix(x, name)
    t = t.to(dtype if dtype is not None else compute_dtype(t.dtype))
    constant = constant_columns(t)
    xc = t - t.mean(dim=0, keepdim=True)
    if bool(constant.any()):
        xc = xc.masked_fill(constant, 0.0)
    row_sq = (xc * xc).sum(dim=1)
    return _Rep(xc, row_sq, row_sq.sum(), varies=not bool(constant.all()))


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


def _hsic_terms(
    reps_a: Sequence[_Rep], reps_b: Sequence[_Rep] | None, debiased: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The HSIC terms of every pair: ``(cross (k, l), self_a (k,), self_b (l,))``.

    ``cross[i, j]`` is ``_dot(reps_a[i], reps_b[j])``; with ``reps_b=None`` the set is
    compared with itself, each pair computed once, and ``cross`` has ``self_a`` on its diagonal.
    Differentiable.
    """
    self_a = torch.stack([_dot(r, r, debiased) for r in reps_a])
    if reps_b is None:
        k = len(reps_a)
        entries: dict[tuple[int, int], torch.Tensor] = {}
        for i in range(k):
            entries[i, i] = self_a[i]
            for j in range(i + 1, k):
                entries[i, j] = entries[j, i] = _dot(reps_a[i], reps_a[j], debiased)
        rows = [torch.stack([entries[i, j] for j in range(k)]) for i in range(k)]
        return torch.stack(rows), self_a, self_a
    self_b = torch.stack([_dot(r, r, debiased) for r in reps_b])
    rows = [torch.stack([_dot(a, b, debiased) for b in reps_b]) for a in reps_a]
    return torch.stack(rows), self_a, self_b


def _cka_from_terms(
    cross: torch.Tensor,
    self_a: torch.Tensor,
    self_b: torch.Tensor,
    varies_a: torch.Tensor,
    varies_b: torch.Tensor,
    symmetric: bool,
) -> torch.Tensor:
    """CKA ``cross / sqrt(self_a self_b)`` for every pair; NaN where a side does not vary or
    has no positive self-similarity. A symmetric set gets an exact unit diagonal."""
    ok_a = varies_a & (self_a > 0)
    ok_b = varies_b & (self_b > 0)
    ok = ok_a[:, None] & ok_b[None, :]
    one = torch.ones((), dtype=cross.dtype, device=cross.device)
    # sqrt of each factor, not of their product, which could overflow in float32
    root_a = torch.sqrt(torch.where(ok_a, self_a, one))
    root_b = torch.sqrt(torch.where(ok_b, self_b, one))
    cka = cross / (root_a[:, None] * root_b[None, :])
    if symmetric:
        eye = torch.eye(cka.shape[0], dtype=torch.bool, device=cka.device)
        cka = torch.where(eye, one, cka)
    return torch.where(ok, cka, torch.full_like(cka, float("nan")))


def _varies(reps: Sequence[_Rep], device: torch.device) -> torch.Tensor:
    return torch.tensor([r.varies for r in reps], dtype=torch.bool, device=device)


def _constant_message(names: Sequence[str], within: str = "for every sample") -> str:
    which = ", ".join(names)
    return f"{which}: the same {within}; its CKA is undefined and returned as NaN"


def _check_debiased_n(n: int) -> None:
    if n < 4:
        raise ValueError(f"debiased CKA needs at least 4 samples, got {n}")


# --------------------------------------------------------------------------------------------
# functional CKA


def _prepare_pair(x: Any, y: Any) -> tuple[_Rep, _Rep, torch.dtype]:
    """Both representations, checked for a common sample count; and the result dtype."""
    xt = as_real_tensor(x, "x")
    yt = as_real_tensor(y, "y")
    if xt.ndim >= 1 and yt.ndim >= 1:
        check_same_length(xt, yt)
    work, out_dtype = _dtypes([xt, yt])
    return _prepare(xt, "x", work), _prepare(yt, "y", work), out_dtype


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
        _check_debiased_n(a.n)
    constant = [name for rep, name in ((a, "x"), (b, "y")) if not rep.varies]
    if constant:
        warnings.warn(_constant_message(constant), ConstantInputWarning, stacklevel=2)
    cross, self_a, self_b = _hsic_terms([a], [b], debiased)
    device = cross.device
    r = _cka_from_terms(cross, self_a, self_b, _varies([a], device), _varies([b], device), False)
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
    _check_debiased_n(a.n)
    n = a.n
    value = _dot(a, b, True) / (n * (n - 3))
    out = value.to(out_dtype)
    if bool(torch.isfinite(value)) and not bool(torch.isfinite(out)):
        warnings.warn(
            f"unbiased HSIC = {float(value):.3g} overflows {out_dtype}; pass float32 inputs",
            RuntimeWarning,
            stacklevel=2,
        )
    return out


def _dtypes(tensors: Sequence[torch.Tensor]) -> tuple[torch.dtype, torch.dtype]:
    """The dtype to compute in and the result dtype, for representations compared together.

    Each input counts with its own compute dtype (float32 for half precision, float64 for
    integers, whose values float32 would round) and its own result dtype (integers give
    torch's default float); the promotion of each set decides.
    """
    work = functools.reduce(torch.promote_types, (compute_dtype(t.dtype) for t in tensors))
    out = functools.reduce(torch.promote_types, (result_dtype(t.dtype) for t in tensors))
    return work, out


def _as_rep_list(reps: Any, name: str) -> list[Any]:
    if isinstance(reps, Mapping):
        return list(reps.values())
    if isinstance(reps, torch.Tensor) or not isinstance(reps, Sequence):
        raise TypeError(
            f"{name} must be a list or dict of representations, got {type(reps).__name__}"
        )
    return list(reps)


def _check_sample_counts(groups: Sequence[tuple[str, Sequence[torch.Tensor]]], what: str) -> None:
    """Every tensor of every group has the first one's number of samples (rows)."""
    first = groups[0][1][0]
    for label, group in groups:
        for i, t in enumerate(group):
            if t.ndim < 1 or t.shape[0] != first.shape[0]:
                raise ValueError(
                    f"{what} must have the same number of samples, got shapes "
                    f"{tuple(first.shape)} ({groups[0][0]}[0]) and {tuple(t.shape)} ({label}[{i}])"
                )


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
    list_a = _as_rep_list(reps_a, "reps_a")
    list_b = list_a if symmetric else _as_rep_list(reps_b, "reps_b")
    if not list_a or not list_b:
        raise ValueError("cka_matrix needs at least one representation in each set")
    tensors_a = [as_real_tensor(r, f"reps_a[{i}]") for i, r in enumerate(list_a)]
    tensors_b = (
        tensors_a
        if symmetric
        else [as_real_tensor(r, f"reps_b[{j}]") for j, r in enumerate(list_b)]
    )
    _check_sample_counts([("reps_a", tensors_a), ("reps_b", tensors_b)], "all representations")
    work, dtype = _dtypes(tensors_a + tensors_b)
    prep_a = [_prepare(t, f"reps_a[{i}]", work) for i, t in enumerate(tensors_a)]
    prep_b = (
        prep_a
        if symmetric
        else [_prepare(t, f"reps_b[{j}]", work) for j, t in enumerate(tensors_b)]
    )
    if debiased:
        _check_debiased_n(prep_a[0].n)
    constant = [f"reps_a[{i}]" for i, r in enumerate(prep_a) if not r.varies]
    if not symmetric:
        constant += [f"reps_b[{j}]" for j, r in enumerate(prep_b) if not r.varies]
    if constant:
        warnings.warn(_constant_message(constant), ConstantInputWarning, stacklevel=2)
    cross, self_a, self_b = _hsic_terms(prep_a, None if symmetric else prep_b, debiased)
    device = cross.device
    out = _cka_from_terms(
        cross, self_a, self_b, _varies(prep_a, device), _varies(prep_b, device), symmetric
    )
    return out.to(dtype)


# --------------------------------------------------------------------------------------------
# streaming CKA


def _is_single(reps: Any) -> bool:
    return isinstance(reps, torch.Tensor) or not isinstance(reps, Sequence | Mapping)


class MinibatchCKA(nn.Module):
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

    Like :class:`corrlib.RunningCorrelation` it is a module whose buffers are the whole state:
    the sums of the per-batch HSIC terms (float64), which representations varied within some
    batch, and the batch and sample counts. States of disjoint data therefore add up:
    :meth:`merge` folds another state in, :meth:`sync` pools the states of every
    ``torch.distributed`` rank, and ``state_dict`` / ``load_state_dict`` save and restore it
    (also into a fresh ``MinibatchCKA()``, which takes the saved shapes).

    Attributes
    ----------
    n_batches, n_samples : int
        Batches and samples seen.

    Examples
    --------
    >>> import torch
    >>> from corrlib.similarity import MinibatchCKA
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.randn(512, 8, generator=g)
    >>> acc = MinibatchCKA()
    >>> for xb in x.split(128):
    ...     _ = acc.update(xb, 2 * xb)
    >>> round(float(acc.compute()), 6)
    1.0
    """

    cross: torch.Tensor
    self_x: torch.Tensor
    self_y: torch.Tensor
    varies_x: torch.Tensor
    varies_y: torch.Tensor
    batch_count: torch.Tensor
    sample_count: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        f64 = torch.float64
        self.register_buffer("cross", torch.zeros(0, 0, dtype=f64))
        self.register_buffer("self_x", torch.zeros(0, dtype=f64))
        self.register_buffer("self_y", torch.zeros(0, dtype=f64))
        self.register_buffer("varies_x", torch.zeros(0, dtype=torch.bool))
        self.register_buffer("varies_y", torch.zeros(0, dtype=torch.bool))
        self.register_buffer("batch_count", torch.zeros((), dtype=torch.int64))
        self.register_buffer("sample_count", torch.zeros((), dtype=torch.int64))
        self._single: bool | None = None
        self._symmetric: bool | None = None
        self.result_dtype = torch.get_default_dtype()

    # -- state -----------------------------------------------------------------------------

    @property
    def n_batches(self) -> int:
        """Number of batches seen."""
        return int(self.batch_count)

    @property
    def n_samples(self) -> int:
        """Number of samples seen (summed over batches)."""
        return int(self.sample_count)

    @property
    def shape(self) -> tuple[int, int]:
        """``(len(x), len(y))``: the number of representations per side (``(0, 0)`` if empty)."""
        return (self.cross.shape[0], self.cross.shape[1])

    def extra_repr(self) -> str:
        return f"shape={self.shape}, n_batches={self.n_batches}, n_samples={self.n_samples}"

    def reset(self) -> MinibatchCKA:
        """Forget every batch seen (the state returns to that of ``MinibatchCKA()``)."""
        device = self.cross.device
        self._resize(0, 0, device)
        self.batch_count.zero_()
        self.sample_count.zero_()
        self._single = self._symmetric = None
        self.result_dtype = torch.get_default_dtype()
        return self

    def _resize(self, k: int, m: int, device: torch.device) -> None:
        """Empty sums for ``k`` x ``m`` representations on ``device``."""
        f64 = torch.float64
        self.cross = torch.zeros(k, m, dtype=f64, device=device)
        self.self_x = torch.zeros(k, dtype=f64, device=device)
        self.self_y = torch.zeros(m, dtype=f64, device=device)
        self.varies_x = torch.zeros(k, dtype=torch.bool, device=device)
        self.varies_y = torch.zeros(m, dtype=torch.bool, device=device)
        self.batch_count = self.batch_count.to(device)
        self.sample_count = self.sample_count.to(device)

    def _check_form(self, single: bool, symmetric: bool, shape: tuple[int, int]) -> None:
        """Raise unless a state that has a form has this one (an empty state takes any)."""
        if self._single is None:
            return
        if (single, symmetric) != (self._single, self._symmetric):
            raise ValueError("every update must have the same form (tensor/list, with/without y)")
        if shape != self.shape:
            raise ValueError(f"expected {self.shape} representations per side, got {shape}")

    def _adopt_form(
        self, single: bool, symmetric: bool, shape: tuple[int, int], device: torch.device
    ) -> None:
        """Give an empty state its form, or check that a non-empty one has the same."""
        self._check_form(single, symmetric, shape)
        if self._single is None:
            self._single, self._symmetric = single, symmetric
            self._resize(*shape, device)

    def get_extra_state(self) -> dict[str, Any]:
        """The form of the updates and the result dtype (saved in ``state_dict``)."""
        return {
            "single": self._single,
            "symmetric": self._symmetric,
            "dtype": str(self.result_dtype).removeprefix("torch."),
        }

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self._single, self._symmetric = state["single"], state["symmetric"]
        self.result_dtype = getattr(torch, state["dtype"])

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args: Any) -> None:
        # a fresh state takes the saved shapes before the buffers are copied in
        incoming = state_dict.get(prefix + "cross")
        if incoming is not None and tuple(incoming.shape) != self.shape:
            self._resize(*incoming.shape, self.cross.device)
        super()._load_from_state_dict(state_dict, prefix, *args)

    # -- updating ------------------------------------------------------------------------------

    @torch.no_grad()
    def update(self, x: Any, y: Any = None) -> MinibatchCKA:
        """Add one batch: a tensor ``(b, ...)`` per side, or a list of them (``b >= 4``).

        Returns ``self``.

        Raises
        ------
        ValueError
            Fewer than 4 samples, sides with different sample counts, or a batch of another
            form or number of representations than the first one.
        TypeError
            One side a tensor and the other a list.
        """
        single = _is_single(x)
        symmetric = y is None
        if single and symmetric:
            raise ValueError("MinibatchCKA.update needs y when x is a single representation")
        list_x = [x] if single else _as_rep_list(x, "x")
        if symmetric:
            list_y = list_x
        else:
            if _is_single(y) != single:
                raise TypeError("x and y must both be tensors or both be lists of tensors")
            list_y = [y] if single else _as_rep_list(y, "y")
        tensors_x = [as_real_tensor(t, f"x[{i}]") for i, t in enumerate(list_x)]
        tensors_y = (
            tensors_x if symmetric else [as_real_tensor(t, f"y[{j}]") for j, t in enumerate(list_y)]
        )
        if not tensors_x or not tensors_y:
            raise ValueError("MinibatchCKA.update needs at least one representation per side")
        _check_sample_counts(
            [("x", tensors_x), ("y", tensors_y)], "every representation in a batch"
        )
        n = tensors_x[0].shape[0]
        if n < 4:
            raise ValueError(f"each batch needs at least 4 samples for the unbiased HSIC, got {n}")
        device = tensors_x[0].device
        if self.n_batches > 0 and device != self.cross.device:
            raise ValueError(
                f"batch is on {device} but the state holding data is on {self.cross.device}"
            )
        shape = (len(tensors_x), len(tensors_y))
        self._check_form(single, symmetric, shape)
        work, dtype = _dtypes(tensors_x + tensors_y)
        prep_x = [_prepare(t, f"x[{i}]", work) for i, t in enumerate(tensors_x)]
        prep_y = (
            prep_x if symmetric else [_prepare(t, f"y[{j}]", work) for j, t in enumerate(tensors_y)]
        )
        cross, self_x, self_y = _hsic_terms(prep_x, None if symmetric else prep_y, True)
        self._adopt_form(single, symmetric, shape, device)
        scale = n * (n - 3)
        self.cross += cross.to(torch.float64) / scale
        self.self_x += self_x.to(torch.float64) / scale
        self.self_y += self_y.to(torch.float64) / scale
        self.varies_x |= _varies(prep_x, device)
        self.varies_y |= _varies(prep_y, device)
        self.result_dtype = (
            dtype if self.n_batches == 0 else torch.promote_types(self.result_dtype, dtype)
        )
        self.batch_count += 1
        self.sample_count += n
        return self

    def merge(self, other: MinibatchCKA) -> MinibatchCKA:
        """Fold ``other``'s state (of other batches) into this one, in place; return ``self``.

        The result is the state of all the batches of both, in any order of merging.
        """
        if not isinstance(other, MinibatchCKA):
            raise TypeError(f"can only merge a MinibatchCKA, got {type(other).__name__}")
        if other.n_batches == 0:
            return self
        assert other._single is not None and other._symmetric is not None
        was_empty = self.n_batches == 0
        if was_empty:
            self.reset()
        self._adopt_form(other._single, other._symmetric, other.shape, self.cross.device)
        self._fold(
            other.cross,
            other.self_x,
            other.self_y,
            other.varies_x,
            other.varies_y,
            other.n_batches,
            other.n_samples,
        )
        self.result_dtype = (
            other.result_dtype
            if was_empty
            else torch.promote_types(self.result_dtype, other.result_dtype)
        )
        return self

    def _fold(
        self,
        cross: torch.Tensor,
        self_x: torch.Tensor,
        self_y: torch.Tensor,
        varies_x: torch.Tensor,
        varies_y: torch.Tensor,
        n_batches: int,
        n_samples: int,
    ) -> None:
        device = self.cross.device
        self.cross += cross.to(device, torch.float64)
        self.self_x += self_x.to(device, torch.float64)
        self.self_y += self_y.to(device, torch.float64)
        self.varies_x |= varies_x.to(device)
        self.varies_y |= varies_y.to(device)
        self.batch_count += n_batches
        self.sample_count += n_samples

    @torch.no_grad()
    def sync(self, group: Any = None) -> MinibatchCKA:
        """Replace this state by the pooled state of every rank of a ``torch.distributed`` group.

        Every rank must call it (it is a collective); afterwards all ranks hold the same state,
        that of all their batches together (summed in rank order, so the result is identical
        on every rank), and :meth:`compute` gives what one process fed every batch would get.
        A rank that saw no batch takes the others' form and shape. Without an initialised
        process group it does nothing. Works on gloo (CPU) and NCCL (state on the GPU). Call
        it once, right before :meth:`compute`: a second call would count every batch again.

        Raises
        ------
        ValueError
            On every rank, if the ranks with data have different forms or shapes.
        """
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            return self
        world = dist.get_world_size(group)
        device = self.cross.device
        k, m = self.shape
        header = torch.tensor(
            [
                self.n_batches,
                self.n_samples,
                k,
                m,
                -1 if self._single is None else int(self._single),
                -1 if self._symmetric is None else int(self._symmetric),
                _DTYPES.index(self.result_dtype) if self.result_dtype in _DTYPES else 3,
            ],
            dtype=torch.int64,
            device=device,
        )
        headers = [torch.zeros_like(header) for _ in range(world)]
        dist.all_gather(headers, header, group=group)
        rows = [[int(v) for v in h.tolist()] for h in headers]
        with_data = [r for r in rows if r[0] > 0]
        if not with_data:
            return self
        forms = {tuple(r[2:6]) for r in with_data}
        if len(forms) > 1:
            raise ValueError(
                "MinibatchCKA.sync: the ranks' states have different forms or shapes "
                f"(len(x), len(y), single, symmetric): {sorted(forms)}"
            )
        k, m, single, symmetric = next(iter(forms))
        if self.n_batches == 0:
            self._resize(k, m, device)
        flat = torch.cat(
            [
                self.cross.flatten(),
                self.self_x,
                self.self_y,
                self.varies_x.to(torch.float64),
                self.varies_y.to(torch.float64),
            ]
        )
        flats = [torch.empty_like(flat) for _ in range(world)]
        dist.all_gather(flats, flat, group=group)
        self.reset()
        self._adopt_form(bool(single), bool(symmetric), (k, m), device)
        for row, state in zip(rows, flats, strict=True):
            if row[0] == 0:
                continue
            cross, rest = state[: k * m].view(k, m), state[k * m :]
            self_x, self_y, rest = rest[:k], rest[k : k + m], rest[k + m :]
            varies_x, varies_y = rest[:k] != 0, rest[k : k + m] != 0
            self._fold(cross, self_x, self_y, varies_x, varies_y, row[0], row[1])
        dtypes = [_DTYPES[r[6]] for r in with_data]
        self.result_dtype = functools.reduce(torch.promote_types, dtypes)
        return self

    # -- result --------------------------------------------------------------------------------

    def compute(self) -> torch.Tensor:
        """CKA from the batches seen: a 0-d tensor, or the ``(len(x), len(y))`` matrix.

        In the promoted dtype of the data (float16 and bfloat16 are computed in float32), on
        the state's device. A representation that was exactly constant within every batch
        gets NaN with a :class:`~corrlib.ConstantInputWarning`; an entry whose summed
        self-similarity is not positive is NaN too. Without ``y`` the matrix has an exact unit
        diagonal.

        Raises
        ------
        RuntimeError
            Before any update.
        """
        if self.n_batches == 0:
            raise RuntimeError("MinibatchCKA.compute called before any update")
        names = [f"x[{i}]" for i, v in enumerate(self.varies_x.tolist()) if not v]
        if not self._symmetric:
            names += [f"y[{j}]" for j, v in enumerate(self.varies_y.tolist()) if not v]
        if names:
            if self._single:
                names = [name[0] for name in names]
            warnings.warn(
                _constant_message(names, "within every batch"),
                ConstantInputWarning,
                stacklevel=2,
            )
        cka = _cka_from_terms(
            self.cross,
            self.self_x,
            self.self_y,
            self.varies_x,
            self.varies_y,
            bool(self._symmetric),
        )
        cka = cka.to(self.result_dtype)
        return cka[0, 0] if self._single else cka
