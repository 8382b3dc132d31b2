"""Pearson and Spearman correlation: two samples, or every pair of features of a data matrix.

Data are laid out ``(n_samples, n_features)``, as in pandas and scikit-learn. (``torch.corrcoef``
takes the transpose: variables in rows.) Inputs may be tensors, arrays or lists; results are
tensors on the input's device. Result dtype: the input's floating dtype; torch's default float
dtype (float32 unless changed) for integer or boolean input, signed or unsigned; with ``x`` and
``y``, the promotion of the two. Integers are computed in float64 (Spearman ranks them in their
own dtype), float16 and bfloat16 in float32.
"""

from __future__ import annotations

from typing import Any, Literal

import torch

from corrlib import _moments, _pairwise
from corrlib._validation import (
    as_real_tensor,
    check_min_samples,
    check_nan_policy,
    check_ndim,
    check_positive_int,
    check_same_length,
    compute_dtype,
    constant_columns,
    result_dtype,
    scan_nonfinite,
)
from corrlib._warnings import ConstantInputWarning, Note, emit
from corrlib.ranking import rankdata

Method = Literal["pearson", "spearman"]
NanPolicy = Literal["propagate", "omit", "raise"]
METHODS = ("pearson", "spearman")


def pearson(x: Any, y: Any, *, nan_policy: NanPolicy = "propagate") -> torch.Tensor:
    """Pearson's correlation coefficient of two 1-D samples.

    Parameters
    ----------
    x, y : tensor or array, shape ``(n,)``
        Paired observations, ``n >= 2``.
    nan_policy : {"propagate", "omit", "raise"}
        What a NaN does, as in scipy: give NaN, be dropped together with its partner, or
        raise ``ValueError``.

    Returns
    -------
    Tensor, 0-d
        ``r`` in [-1, 1]; NaN (with a :class:`ConstantInputWarning`) when either sample is
        exactly constant. Differentiable with respect to ``x`` and ``y``.

    Examples
    --------
    >>> import corrlib
    >>> round(float(corrlib.pearson([1.0, 2.0, 3.0, 4.0], [1.0, 3.0, 2.0, 4.0])), 3)
    0.8
    """
    return _two_sample(x, y, "pearson", nan_policy)


def spearman(x: Any, y: Any, *, nan_policy: NanPolicy = "propagate") -> torch.Tensor:
    """Spearman's rank correlation of two 1-D samples (Pearson's r of their average ranks).

    Ties get the average of the ranks they span, as in ``scipy.stats.spearmanr``. Parameters
    and return value are as in :func:`pearson`; the result is not differentiable (ranks are
    piecewise constant).

    Examples
    --------
    >>> import corrlib
    >>> float(corrlib.spearman([1.0, 2.0, 3.0, 4.0], [1.0, 8.0, 27.0, 64.0]))
    1.0
    """
    return _two_sample(x, y, "spearman", nan_policy)


def corr_matrix(
    x: Any,
    y: Any = None,
    *,
    method: Method = "pearson",
    nan_policy: NanPolicy = "propagate",
    chunk_size: int | None = None,
) -> torch.Tensor:
    """Correlation between every pair of features (columns).

    Parameters
    ----------
    x : tensor or array, shape ``(n_samples, d_x)``
        Data with samples in rows and features in columns.
    y : tensor or array, shape ``(n_samples, d_y)``, optional
        A second set of features observed on the same samples. When given, the result is the
        cross block: entry ``(i, j)`` correlates ``x[:, i]`` with ``y[:, j]``.
    method : {"pearson", "spearman"}
        Pearson's r, or Spearman's rho (average ranks for ties).
    nan_policy : {"propagate", "omit", "raise"}
        ``"propagate"``: an entry is NaN exactly when one of its two columns holds a NaN.
        ``"omit"``: each pair uses the rows where both of its columns are present
        (pairwise-complete observations, like ``pandas.DataFrame.corr``; Spearman ranks each
        pair's values within those rows, as pandas does), computed with masked matrix
        products. ``"raise"``: ``ValueError``.
    chunk_size : int, optional
        Process the rows this many at a time and merge the centred partial results (Chan's
        rule), so that no centred copy of the whole data is made: useful for tall data on a
        GPU. The result equals the one-shot result up to rounding.

    Returns
    -------
    Tensor, shape ``(d_x, d_x)`` or ``(d_x, d_y)``
        Correlations clipped to [-1, 1]. Without ``y`` the matrix is symmetric with a diagonal
        of exactly 1 (for columns that have a correlation at all). A column that is exactly
        constant gets NaN in its row and column and a :class:`ConstantInputWarning`; a column
        holding an infinite value gets NaN and a ``RuntimeWarning``. Pearson results are
        differentiable.

    Raises
    ------
    ValueError
        Wrong number of dimensions, fewer than 2 samples, mismatched sample counts, unknown
        ``method`` or ``nan_policy``, a NaN under ``nan_policy="raise"``, bad ``chunk_size``.
    TypeError
        Complex or non-numeric data.

    Examples
    --------
    >>> import torch, corrlib
    >>> x = torch.tensor([[1.0, 2.0], [2.0, 4.1], [3.0, 5.9]])
    >>> corrlib.corr_matrix(x).round(decimals=3)
    tensor([[1.0000, 0.9990],
            [0.9990, 1.0000]])
    """
    notes: list[Note] = []
    r = correlate(x, y, method=method, nan_policy=nan_policy, chunk_size=chunk_size, notes=notes)
    emit(notes)
    return r


def correlate(
    x: Any,
    y: Any = None,
    *,
    method: Method = "pearson",
    nan_policy: NanPolicy = "propagate",
    chunk_size: int | None = None,
    notes: list[Note],
) -> torch.Tensor:
    """:func:`corr_matrix` without warning: the warnings are appended to ``notes``.

    For corrlib's own public functions, which raise them at their own level.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    check_nan_policy(nan_policy)
    check_positive_int(chunk_size, "chunk_size", allow_none=True)
    xt, x_dtype = _as_matrix(x, "x", method)
    yt, y_dtype = (None, x_dtype) if y is None else _as_matrix(y, "y", method)
    if yt is not None:
        check_same_length(xt, yt)
        if yt.device != xt.device:
            raise ValueError(f"x and y are on different devices: {xt.device} and {yt.device}")
    out_dtype = torch.promote_types(x_dtype, y_dtype)
    if method == "pearson":
        work = xt.dtype if yt is None else torch.promote_types(xt.dtype, yt.dtype)
        xt = xt.to(work)
        yt = None if yt is None else yt.to(work)
        # Optimistic path: a NaN or an infinity anywhere in a column shows in its mean, so
        # finite moments prove finite data, and the separate scan for them can be skipped.
        m = _gram(xt, yt, chunk_size)
        if _finite(m):
            return _corr_from_moments(xt, yt, m, chunk_size, notes).to(out_dtype)
    xt, nan_x, inf_x = _scan(xt, nan_policy, "x", notes)
    if yt is None:
        r = _correlate(xt, None, nan_x, nan_x, method, nan_policy, chunk_size, notes)
        bad_rows = bad_cols = inf_x
    else:
        yt, nan_y, inf_y = _scan(yt, nan_policy, "y", notes)
        r = _correlate(xt, yt, nan_x, nan_y, method, nan_policy, chunk_size, notes)
        bad_rows, bad_cols = inf_x, inf_y
    r = _mask(r, bad_rows, bad_cols)
    return r.to(out_dtype)


def _scan(
    t: torch.Tensor, nan_policy: NanPolicy, name: str, notes: list[Note]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """NaN and infinite columns of ``t`` (integer data have none); infinities noted."""
    if not t.is_floating_point():
        none = torch.zeros(t.shape[1], dtype=torch.bool, device=t.device)
        return t, none, none
    t, nan_cols, inf_cols = scan_nonfinite(t, nan_policy, name)
    if bool(inf_cols.any()):
        notes.append(
            (
                f"{name} contains infinite values; every correlation that involves those "
                "columns is NaN",
                RuntimeWarning,
            )
        )
    return t, nan_cols, inf_cols


def _two_sample(x: Any, y: Any, method: Method, nan_policy: NanPolicy) -> torch.Tensor:
    check_nan_policy(nan_policy)
    xt, yt = _as_raw(x, "x", method), _as_raw(y, "y", method)
    check_ndim(xt, 1, "x")
    check_ndim(yt, 1, "y")
    check_same_length(xt, yt)
    check_min_samples(xt, 2, "x")
    notes: list[Note] = []
    r = correlate(xt[:, None], yt[:, None], method=method, nan_policy=nan_policy, notes=notes)
    emit(notes, stacklevel=3)
    return r[0, 0]


def _as_matrix(x: Any, name: str, method: Method) -> tuple[torch.Tensor, torch.dtype]:
    """The data as a 2-D tensor in its compute dtype, and the dtype of the result.

    Integer data give a result in torch's default float dtype and are computed in float64
    (exact up to 2^53). For Spearman they are ranked as they are (no cast at all), so large
    integers keep their order and their ties whatever the partner's dtype.
    """
    t = _as_raw(x, name, method)
    check_ndim(t, 2, name)
    check_min_samples(t, 2, name)
    out = result_dtype(t.dtype)
    if method == "spearman" and not t.is_floating_point():
        return t, out
    return t.to(compute_dtype(t.dtype)), out


def _as_raw(x: Any, name: str, method: Method) -> torch.Tensor:
    """``x`` as a real tensor: its own dtype (integers kept, to be cast or ranked later)."""
    return as_real_tensor(x, name)


def _mask(r: torch.Tensor, bad_rows: torch.Tensor, bad_cols: torch.Tensor) -> torch.Tensor:
    """Set to NaN every entry whose row or column is flagged (without touching the others)."""
    if not (bool(bad_rows.any()) or bool(bad_cols.any())):
        return r
    bad = bad_rows[:, None] | bad_cols[None, :]
    return torch.where(bad, torch.full_like(r, float("nan")), r)


def _correlate(
    x: torch.Tensor,
    y: torch.Tensor | None,
    nan_x: torch.Tensor,
    nan_y: torch.Tensor,
    method: Method,
    nan_policy: NanPolicy,
    chunk_size: int | None,
    notes: list[Note],
) -> torch.Tensor:
    """Correlation of finite-or-NaN data, following ``nan_policy`` for the NaN columns."""
    # Complete columns (and, under "propagate", everything) go through the fast kernel with
    # NaNs zeroed, so a NaN cannot leak into other entries or into their gradients.
    xz = torch.nan_to_num(x, nan=0.0) if bool(nan_x.any()) else x
    yz = None if y is None else (torch.nan_to_num(y, nan=0.0) if bool(nan_y.any()) else y)
    if nan_policy == "propagate" or not (bool(nan_x.any()) or bool(nan_y.any())):
        # NaN columns are masked anyway: keep them out of the constancy warning.
        r = _complete_corr(xz, yz, method, chunk_size, notes, nan_x, nan_y)
        return _mask(r, nan_x, nan_y)
    r = _complete_corr(xz, yz, method, chunk_size, notes, nan_x, nan_y)
    return _pairwise.pairwise_complete(r, x, y, nan_x, nan_y, method, notes)


def _complete_corr(
    x: torch.Tensor,
    y: torch.Tensor | None,
    method: Method,
    chunk_size: int | None,
    notes: list[Note],
    skip_x: torch.Tensor | None = None,
    skip_y: torch.Tensor | None = None,
) -> torch.Tensor:
    """Correlation of NaN-free data: ranks for Spearman, then the centred Pearson kernel.

    ``skip_x`` and ``skip_y`` flag columns whose result the caller replaces (they are not
    reported as constant).
    """
    if method == "spearman":
        x, y = spearman_ranks(x, y)
    elif y is not None and y.dtype != x.dtype:
        work = torch.promote_types(x.dtype, y.dtype)
        x, y = x.to(work), y.to(work)
    return _corr_from_moments(x, y, _gram(x, y, chunk_size), chunk_size, notes, skip_x, skip_y)


def spearman_ranks(
    x: torch.Tensor, y: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Exactly centred average ranks of NaN-free ``x`` and ``y``, each ranked in its own dtype.

    Ranks 1..n of NaN-free data average exactly (n + 1) / 2; centring them exactly (halves are
    exact in float64) spares the kernel a cancellation.
    """
    middle = (x.shape[0] + 1) / 2
    rx = rankdata(x) - middle
    ry = None if y is None else rankdata(y) - middle
    return rx, ry


def _corr_from_moments(
    x: torch.Tensor,
    y: torch.Tensor | None,
    m: _moments.Moments,
    chunk_size: int | None,
    notes: list[Note],
    skip_x: torch.Tensor | None = None,
    skip_y: torch.Tensor | None = None,
) -> torch.Tensor:
    """Pearson correlation of NaN-free data from their centred moments ``m``."""
    out_dtype = x.dtype
    const_x = constant_columns(x, mean=m.mean_x, ss=m.ss_x)
    const_y = const_x if y is None else constant_columns(y, mean=m.mean_y, ss=m.ss_y)
    if _out_of_range(m.ss_x, const_x) or _out_of_range(m.ss_y, const_y):
        # Sums of squares under- or overflowed (values near 1e-160 or 1e160 in float64):
        # correlation is scale-free, so divide every column by its largest magnitude.
        x = x / _column_scale(x)
        y = None if y is None else y / _column_scale(y)
        m = _gram(x, y, chunk_size)
    shown_x = const_x if skip_x is None else const_x & ~skip_x
    shown_y = const_y if skip_y is None else const_y & ~skip_y
    if bool(shown_x.any()) or bool(shown_y.any()):
        notes.append(constant_note("x" if y is None else "x or y"))
    r = _moments.correlation(m.cross, m.ss_x, m.ss_y, const_x, const_y, symmetric=y is None)
    return r.to(out_dtype)


def constant_note(name: str) -> Note:
    """The warning for an exactly constant column."""
    return (
        f"{name} has an exactly constant column; its correlations are undefined and "
        "returned as NaN",
        ConstantInputWarning,
    )


def _gram(x: torch.Tensor, y: torch.Tensor | None, chunk_size: int | None) -> _moments.Moments:
    if chunk_size is None:
        return _moments.centred_gram(x, y)
    return _moments.chunked_gram(x, y, chunk_size)


def _finite(m: _moments.Moments) -> bool:
    parts = (m.mean_x, m.mean_y, m.ss_x, m.ss_y)
    return all(bool(torch.isfinite(p).all()) for p in parts) and bool(torch.isfinite(m.cross).all())


def _out_of_range(ss: torch.Tensor, constant: torch.Tensor) -> bool:
    """Whether a sum of squares under- or overflows (or its product would lose precision)."""
    info = torch.finfo(ss.dtype)
    outside = (ss < info.tiny**0.5) | (ss > info.max**0.5) | ~torch.isfinite(ss)
    return bool((~constant & outside).any())


def _column_scale(x: torch.Tensor) -> torch.Tensor:
    scale = x.abs().amax(dim=0)
    return torch.where(scale > 0, scale, torch.ones_like(scale))
