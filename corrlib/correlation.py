"""Pearson and Spearman correlation: two samples, or every pair of features of a data matrix.

Data are laid out ``(n_samples, n_features)``, as in pandas and scikit-learn. (``torch.corrcoef``
takes the transpose: variables in rows.) Inputs may be tensors, arrays or lists; results are
tensors on the input's device and in its floating dtype.
"""

from __future__ import annotations

import warnings
from typing import Any, Literal

import numpy as np
import torch

from corrlib import _moments
from corrlib._validation import (
    as_float_tensor,
    check_min_samples,
    check_nan_policy,
    check_ndim,
    check_same_length,
    compute_dtype,
    constant_columns,
    scan_nonfinite,
)
from corrlib._warnings import ConstantInputWarning
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
        (pairwise-complete observations, like ``pandas.DataFrame.corr``); this runs a loop over
        the pairs that involve an incomplete column. ``"raise"``: ``ValueError``.
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
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    check_nan_policy(nan_policy)
    if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
        raise ValueError(f"chunk_size must be a positive integer or None, got {chunk_size!r}")
    xt, x_dtype = _as_matrix(x, "x", method)
    yt, y_dtype = (None, x_dtype) if y is None else _as_matrix(y, "y", method)
    if yt is not None:
        check_same_length(xt, yt)
        if yt.device != xt.device:
            raise ValueError(f"x and y are on different devices: {xt.device} and {yt.device}")
    out_dtype = torch.promote_types(x_dtype, y_dtype)
    work = xt.dtype if yt is None else torch.promote_types(xt.dtype, yt.dtype)
    work = compute_dtype(work)
    xt = xt.to(work)
    yt = None if yt is None else yt.to(work)
    if method == "pearson":
        # Optimistic path: a NaN or an infinity anywhere in a column shows in its mean, so
        # finite moments prove finite data, and the separate scan for them can be skipped.
        m = _gram(xt, yt, chunk_size)
        if _finite(m):
            return _corr_from_moments(xt, yt, m, chunk_size).to(out_dtype)
    xt, nan_x, inf_x = scan_nonfinite(xt, nan_policy, "x")
    if yt is None:
        r = _correlate(xt, None, nan_x, nan_x, method, nan_policy, chunk_size)
        bad_rows = bad_cols = inf_x
    else:
        yt, nan_y, inf_y = scan_nonfinite(yt, nan_policy, "y")
        r = _correlate(xt, yt, nan_x, nan_y, method, nan_policy, chunk_size)
        bad_rows, bad_cols = inf_x, inf_y
    r = _mask(r, bad_rows, bad_cols)
    return r.to(out_dtype)


def _two_sample(x: Any, y: Any, method: Method, nan_policy: NanPolicy) -> torch.Tensor:
    check_nan_policy(nan_policy)
    xt, yt = _as_data(x, "x", method), _as_data(y, "y", method)
    check_ndim(xt, 1, "x")
    check_ndim(yt, 1, "y")
    check_same_length(xt, yt)
    check_min_samples(xt, 2, "x")
    r = corr_matrix(xt[:, None], yt[:, None], method=method, nan_policy=nan_policy)
    return r[0, 0]


def _as_matrix(x: Any, name: str, method: Method) -> tuple[torch.Tensor, torch.dtype]:
    """The data as a tensor, and the dtype of the result.

    Integer data give a result in torch's default float dtype. For Spearman they are ranked as
    they are (no cast), so large integers keep their order and their ties.
    """
    t = _as_data(x, name, method)
    check_ndim(t, 2, name)
    check_min_samples(t, 2, name)
    return t, (t.dtype if t.is_floating_point() else torch.get_default_dtype())


def _as_data(x: Any, name: str, method: Method) -> torch.Tensor:
    """A float tensor, except integer data for Spearman, which are ranked without a cast."""
    integers = _integer_tensor(x) if method == "spearman" else None
    return as_float_tensor(x, name) if integers is None else integers


def _integer_tensor(x: Any) -> torch.Tensor | None:
    """``x`` as an integer tensor if it holds integers (or booleans), else ``None``."""
    if isinstance(x, torch.Tensor):
        return None if (x.is_floating_point() or x.is_complex()) else x
    arr = np.asarray(x)
    if arr.dtype.kind not in "biu":
        return None
    return torch.from_numpy(np.array(arr, copy=not arr.flags.writeable, order="C"))


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
) -> torch.Tensor:
    """Correlation of finite-or-NaN data, following ``nan_policy`` for the NaN columns."""
    # Complete columns (and, under "propagate", everything) go through the fast kernel with
    # NaNs zeroed, so a NaN cannot leak into other entries or into their gradients.
    xz = torch.nan_to_num(x, nan=0.0) if bool(nan_x.any()) else x
    yz = None if y is None else (torch.nan_to_num(y, nan=0.0) if bool(nan_y.any()) else y)
    r = _complete_corr(xz, yz, method, chunk_size)
    if nan_policy == "propagate" or not (bool(nan_x.any()) or bool(nan_y.any())):
        return _mask(r, nan_x, nan_y)
    return _pairwise_complete(r, x, y if y is not None else x, nan_x, nan_y, method)


def _complete_corr(
    x: torch.Tensor, y: torch.Tensor | None, method: Method, chunk_size: int | None
) -> torch.Tensor:
    """Correlation of NaN-free data: ranks for Spearman, then the centred Pearson kernel."""
    if method == "spearman":
        # Ranks 1..n of NaN-free data average exactly (n + 1) / 2; centring them exactly
        # (halves are exact in float64) spares the kernel a cancellation.
        middle = (x.shape[0] + 1) / 2
        x = rankdata(x) - middle
        y = None if y is None else rankdata(y) - middle
    return _corr_from_moments(x, y, _gram(x, y, chunk_size), chunk_size)


def _corr_from_moments(
    x: torch.Tensor, y: torch.Tensor | None, m: _moments.Moments, chunk_size: int | None
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
    _warn_constant(const_x, const_y, "x" if y is None else "x or y")
    one = torch.ones((), dtype=m.ss_x.dtype, device=m.ss_x.device)
    ss_x = torch.where(const_x | (m.ss_x <= 0), one, m.ss_x)
    ss_y = torch.where(const_y | (m.ss_y <= 0), one, m.ss_y)
    cross = m.cross if y is not None else (m.cross + m.cross.T) / 2  # exactly symmetric
    # sqrt(a * b) rather than sqrt(a) * sqrt(b): identical columns then give exactly 1.
    r = (cross / torch.sqrt(ss_x[:, None] * ss_y[None, :])).clamp(-1.0, 1.0)
    if y is None:
        r = _unit_diagonal(r)
    return _mask(r, const_x, const_y).to(out_dtype)


def _gram(x: torch.Tensor, y: torch.Tensor | None, chunk_size: int | None) -> _moments.Moments:
    if chunk_size is None:
        return _moments.centred_gram(x, y)
    return _moments.chunked_gram(x, y, chunk_size)


def _finite(m: _moments.Moments) -> bool:
    parts = (m.mean_x, m.mean_y, m.ss_x, m.ss_y)
    return all(bool(torch.isfinite(p).all()) for p in parts) and bool(torch.isfinite(m.cross).all())


def _out_of_range(ss: torch.Tensor, constant: torch.Tensor) -> bool:
    """Whether a sum of squares, or the product of two, under- or overflows."""
    info = torch.finfo(ss.dtype)
    outside = (ss < info.tiny**0.5) | (ss > info.max**0.5) | ~torch.isfinite(ss)
    return bool((~constant & outside).any())


def _column_scale(x: torch.Tensor) -> torch.Tensor:
    scale = x.abs().amax(dim=0)
    return torch.where(scale > 0, scale, torch.ones_like(scale))


def _unit_diagonal(r: torch.Tensor) -> torch.Tensor:
    eye = torch.eye(r.shape[0], dtype=torch.bool, device=r.device)
    return torch.where(eye, torch.ones_like(r), r)


def _warn_constant(const_x: torch.Tensor, const_y: torch.Tensor, name: str) -> None:
    if bool(const_x.any()) or bool(const_y.any()):
        warnings.warn(
            f"{name} has an exactly constant column; its correlations are undefined and "
            "returned as NaN",
            ConstantInputWarning,
            stacklevel=5,
        )


def _pairwise_complete(
    r: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
    nan_x: torch.Tensor,
    nan_y: torch.Tensor,
    method: Method,
) -> torch.Tensor:
    """Recompute, on pairwise-complete rows, every entry that involves an incomplete column."""
    symmetric = x is y
    valid_x, valid_y = ~torch.isnan(x), ~torch.isnan(y)
    rows = []
    for i in range(x.shape[1]):
        row = []
        for j in range(y.shape[1]):
            if not (nan_x[i] or nan_y[j]):
                row.append(r[i, j])
            elif symmetric and j < i:
                row.append(rows[j][i])
            else:
                keep = valid_x[:, i] & valid_y[:, j]
                row.append(_pair(x[keep, i], y[keep, j], method, same=symmetric and i == j))
        rows.append(row)
    return torch.stack([torch.stack(row) for row in rows])


def _pair(a: torch.Tensor, b: torch.Tensor, method: Method, same: bool) -> torch.Tensor:
    """Correlation of one pair of NaN-free columns; NaN when fewer than 2 rows remain."""
    if a.shape[0] < 2:
        return torch.full((), float("nan"), dtype=a.dtype, device=a.device)
    if same:
        const = bool((a == a[0]).all())
        if const:
            _warn_constant(torch.ones(1, dtype=torch.bool), torch.zeros(1, dtype=torch.bool), "x")
            return torch.full((), float("nan"), dtype=a.dtype, device=a.device)
        return torch.ones((), dtype=a.dtype, device=a.device)
    return _complete_corr(a[:, None], b[:, None], method, None)[0, 0]
