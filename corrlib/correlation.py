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

from corrlib import _pairwise, _pearson
from corrlib._validation import (
    as_real_tensor,
    check_min_samples,
    check_nan_policy,
    check_ndim,
    check_positive_int,
    check_same_length,
    compute_dtype,
    result_dtype,
    scan_nonfinite,
)
from corrlib._warnings import warn
from corrlib.ranking import rankdata

__all__ = ["corr_matrix", "pearson", "spearman"]

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
    and return value are as in :func:`pearson`, except that two empty samples give NaN without
    a warning, as ``scipy.stats.spearmanr([], [])`` does; the result is not differentiable
    (ranks are piecewise constant).

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
        Process the rows at most this many at a time (tall data are always processed in
        blocks of up to 16384 rows, shifted by one common centre, so that no shifted copy
        of the whole data is made). The result equals the one-shot result up to rounding.

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
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    check_nan_policy(nan_policy)
    if chunk_size is not None:
        chunk_size = check_positive_int(chunk_size, "chunk_size")
    xt, x_dtype = _as_matrix(x, "x", method)
    yt, y_dtype = (None, x_dtype) if y is None else _as_matrix(y, "y", method)
    if yt is not None:
        check_same_length(xt, yt)
        if yt.device != xt.device:
            raise ValueError(f"x and y are on different devices: {xt.device} and {yt.device}")
    out_dtype = x_dtype if y_dtype == x_dtype else torch.promote_types(x_dtype, y_dtype)
    if method == "spearman":
        return _spearman(xt, yt, nan_policy, chunk_size).to(out_dtype)
    if yt is not None and yt.dtype != xt.dtype:
        work = torch.promote_types(xt.dtype, yt.dtype)
        xt, yt = xt.to(work), yt.to(work)
    r, nan = _pearson.pearson_matrix(xt, yt, nan_policy=nan_policy, rows=chunk_size)
    if nan_policy == "omit" and nan is not None and bool(nan[0].any() | nan[1].any()):
        r = _pairwise.pairwise_complete(r, xt, yt, nan[0], nan[1], "pearson")
    return r if r.dtype == out_dtype else r.to(out_dtype)


def _spearman(
    x: torch.Tensor,
    y: torch.Tensor | None,
    nan_policy: NanPolicy,
    chunk_size: int | None,
) -> torch.Tensor:
    """Spearman's rho: Pearson's r of the ranks, pairwise-complete ranks under ``"omit"``.

    Infinite values rank like any other but give NaN, as in :func:`corr_matrix`'s Pearson.
    """
    x, nan_x, inf_x = _scan(x, nan_policy, "x")
    if y is None:
        y_, nan_y, inf_y = None, nan_x, inf_x
    else:
        y_, nan_y, inf_y = _scan(y, nan_policy, "y")
    rx, ry = spearman_ranks(x, y_, nan_x, nan_y)
    r, _ = _pearson.pearson_matrix(rx, ry, nan_policy="propagate", rows=chunk_size)
    if nan_policy == "omit" and bool(nan_x.any() | nan_y.any()):
        r = _pairwise.pairwise_complete(r, x, y_, nan_x, nan_y, "spearman")
    return _mask(r, inf_x, inf_y)


def _scan(
    t: torch.Tensor, nan_policy: NanPolicy, name: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """NaN and infinite columns of ``t`` (integer data have none); infinities warned of."""
    if not t.is_floating_point():
        none = torch.zeros(t.shape[1], dtype=torch.bool, device=t.device)
        return t, none, none
    t, nan_cols, inf_cols = scan_nonfinite(t, nan_policy, name)
    if bool(inf_cols.any()):
        _pearson.warn_infinite(name)
    return t, nan_cols, inf_cols


def _two_sample(x: Any, y: Any, method: Method, nan_policy: NanPolicy) -> torch.Tensor:
    check_nan_policy(nan_policy)
    xt, yt = as_real_tensor(x, "x"), as_real_tensor(y, "y")
    check_ndim(xt, 1, "x")
    check_ndim(yt, 1, "y")
    check_same_length(xt, yt)
    if method == "spearman" and xt.shape[0] == 0:  # as scipy.stats.spearmanr: NaN, no warning
        dtype = torch.promote_types(result_dtype(xt.dtype), result_dtype(yt.dtype))
        return torch.tensor(float("nan"), dtype=dtype, device=xt.device)
    check_min_samples(xt, 2, "x")
    r = corr_matrix(xt[:, None], yt[:, None], method=method, nan_policy=nan_policy)
    return r[0, 0]


def correlate(x: Any, y: Any = None, **kwargs: Any) -> torch.Tensor:
    """Deprecated: :func:`corr_matrix` (this was corrlib's internal name for it)."""
    warn("corrlib.correlation.correlate is deprecated: use corr_matrix", DeprecationWarning)
    kwargs.pop("notes", None)
    return corr_matrix(x, y, **kwargs)


def _as_matrix(x: Any, name: str, method: Method) -> tuple[torch.Tensor, torch.dtype]:
    """The data as a 2-D tensor in its compute dtype, and the dtype of the result.

    Integer data give a result in torch's default float dtype and are computed in float64
    (exact up to 2^53). For Spearman they are ranked as they are (no cast at all), so large
    integers keep their order and their ties whatever the partner's dtype.
    """
    t = as_real_tensor(x, name)
    check_ndim(t, 2, name)
    check_min_samples(t, 2, name)
    out = result_dtype(t.dtype)
    if method == "spearman" and not t.is_floating_point():
        return t, out
    work = compute_dtype(t.dtype)
    return (t if t.dtype == work else t.to(work)), out


def _mask(r: torch.Tensor, bad_rows: torch.Tensor, bad_cols: torch.Tensor) -> torch.Tensor:
    """Set to NaN every entry whose row or column is flagged (without touching the others)."""
    if not bool(bad_rows.any() | bad_cols.any()):
        return r
    return r.masked_fill(bad_rows[:, None] | bad_cols[None, :], float("nan"))


def spearman_ranks(
    x: torch.Tensor,
    y: torch.Tensor | None,
    nan_x: torch.Tensor | None = None,
    nan_y: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Exactly centred average ranks of ``x`` and ``y``, each ranked in its own dtype.

    Ranks 1..n average exactly (n + 1) / 2; centring them exactly (halves are exact in
    float64) spares the product a cancellation. Columns flagged in ``nan_x`` / ``nan_y``
    (holding a NaN) get NaN ranks, so that they are masked rather than ranked.
    """
    middle = (x.shape[0] + 1) / 2
    rx = _nan_columns(rankdata(x) - middle, nan_x)
    ry = None if y is None else _nan_columns(rankdata(y) - middle, nan_y)
    return rx, ry


def _nan_columns(ranks: torch.Tensor, nan: torch.Tensor | None) -> torch.Tensor:
    if nan is None or not bool(nan.any()):
        return ranks
    return ranks.masked_fill(nan, float("nan"))
