"""Input checks shared by corrlib's functions.

Every public function turns its inputs into tensors here, so that the rules are the same
everywhere: tensors, numpy arrays and nested lists are accepted; complex data are refused.

Dtypes (:func:`as_data`): the *result* of a function is in the input's floating dtype, or in
torch's default float dtype (float32 unless changed) for integer and boolean inputs, signed or
unsigned (uint8 to uint64); with two inputs, in the promotion of their two result dtypes. The
*computation* runs in float64 for integer inputs (exact up to 2^53, so timestamps near 1.7e9 or
ids near 2^40 keep their value), in float32 for float16 and bfloat16, and otherwise in the
input's own dtype.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
import torch

NAN_POLICIES = ("propagate", "omit", "raise")

_LOW_PRECISION = (torch.float16, torch.bfloat16)


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype a computation runs in: float32 for float16 and bfloat16, float64 for integer
    and boolean dtypes, otherwise ``dtype`` itself."""
    if dtype in _LOW_PRECISION:
        return torch.float32
    if not dtype.is_floating_point:
        return torch.float64
    return dtype


def result_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype of a result computed from data of ``dtype``: floating dtypes are kept, integer
    and boolean data give torch's default float dtype."""
    return dtype if dtype.is_floating_point else torch.get_default_dtype()


def as_real_tensor(x: Any, name: str = "x") -> torch.Tensor:
    """``x`` as a real (integer, boolean or floating) tensor in its own dtype, without a copy
    when it already is one.

    Raises
    ------
    TypeError
        If ``x`` is complex, or cannot be turned into a numeric tensor.
    """
    if isinstance(x, torch.Tensor):
        t = x
    else:
        try:
            arr = np.asarray(x)
        except Exception as exc:  # pragma: no cover - numpy's own message is clear enough
            raise TypeError(f"{name} could not be converted to an array: {exc}") from exc
        if arr.dtype == object or arr.dtype.kind in "USVmM":
            raise TypeError(f"{name} must be numeric, got an array of dtype {arr.dtype}")
        if arr.dtype.kind == "c":
            raise TypeError(f"{name} must be real, got complex dtype {arr.dtype}")
        if not arr.dtype.isnative:  # big-endian data, as NumPy and pandas accept them
            arr = arr.astype(arr.dtype.newbyteorder("="))
        if not arr.flags.writeable:  # e.g. pandas' read-only views; torch would warn
            arr = arr.copy()
        if not arr.flags.c_contiguous:  # (np.ascontiguousarray would make a scalar 1-D)
            arr = np.ascontiguousarray(arr)
        t = torch.from_numpy(arr)
    if t.is_complex():
        raise TypeError(f"{name} must be real, got complex dtype {t.dtype}")
    return t


def as_data(x: Any, name: str = "x") -> tuple[torch.Tensor, torch.dtype]:
    """``x`` in the dtype it is computed in, and the dtype of the result (module docstring).

    Returns
    -------
    data : Tensor
        float64 for integer or boolean input, float32 for float16/bfloat16, else unchanged.
    out_dtype : torch.dtype
        The input's floating dtype, or torch's default float dtype for integers.
    """
    t = as_real_tensor(x, name)
    return t.to(compute_dtype(t.dtype)), result_dtype(t.dtype)


def check_positive_int(value: Any, name: str, *, allow_none: bool = False) -> Any:
    """``value`` as a Python int, or ``ValueError`` naming ``name`` unless it is a positive
    integer: a Python int, a NumPy integer scalar or a 0-d integer tensor.

    Booleans, floats (even ``3.0``) and values below 1 are refused. With ``allow_none``,
    ``None`` is accepted and returned as it is.
    """
    if allow_none and value is None:
        return None
    number = as_integer(value)
    if number is None or number < 1:
        none = " or None" if allow_none else ""
        raise ValueError(f"{name} must be a positive integer{none}, got {value!r}")
    return number


def as_integer(value: Any) -> int | None:
    """``value`` as a Python int if it is an integer (Python, NumPy or a 0-d integer tensor;
    never a bool or a float), else ``None``."""
    if isinstance(value, torch.Tensor):
        kind = value.dtype
        integer = value.ndim == 0 and not (kind.is_floating_point or kind.is_complex)
        integer = integer and kind != torch.bool
    else:
        integer = isinstance(value, int | np.integer) and not isinstance(value, bool)
    return int(value) if integer else None


def check_lag(max_lag: Any, n: int, name: str = "max_lag") -> int:
    """``max_lag`` as an int, or ``ValueError`` naming it: an integer in ``[0, n - 1]``.

    Infinite, NaN, negative, fractional and boolean values are refused (not truncated).
    """
    value = float(max_lag) if isinstance(max_lag, numbers.Real) else math.nan
    if (
        isinstance(max_lag, bool)
        or not math.isfinite(value)
        or value != int(value)
        or not 0 <= value <= n - 1
    ):
        raise ValueError(f"{name} must be an integer in [0, n - 1] = [0, {n - 1}], got {max_lag!r}")
    return int(value)


def check_nan_policy(nan_policy: str) -> None:
    """Raise ``ValueError`` unless ``nan_policy`` is one of scipy's three policies."""
    if nan_policy not in NAN_POLICIES:
        raise ValueError(f"nan_policy must be one of {NAN_POLICIES}, got {nan_policy!r}")


def check_ndim(t: torch.Tensor, ndim: int, name: str = "x") -> None:
    """Raise ``ValueError`` unless ``t`` has exactly ``ndim`` dimensions."""
    if t.ndim != ndim:
        layout = {1: "(n_samples,)", 2: "(n_samples, n_features)"}.get(ndim, f"{ndim}-D")
        got = "a scalar (shape ())" if t.ndim == 0 else f"shape {tuple(t.shape)}"
        raise ValueError(f"{name} must be {ndim}-D with layout {layout}, got {got}")


def check_min_samples(t: torch.Tensor, minimum: int = 2, name: str = "x") -> None:
    """Raise ``ValueError`` if ``t`` has fewer than ``minimum`` samples (rows)."""
    if t.shape[0] < minimum:
        raise ValueError(f"{name} needs at least {minimum} samples, got shape {tuple(t.shape)}")


def check_same_length(x: torch.Tensor, y: torch.Tensor, names: str = "x and y") -> None:
    """Raise ``ValueError`` if ``x`` and ``y`` have different numbers of samples."""
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"{names} must have the same number of samples, "
            f"got shapes {tuple(x.shape)} and {tuple(y.shape)}"
        )


def scan_nonfinite(
    t: torch.Tensor, nan_policy: str, name: str = "x"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Find the columns of a 2-D ``t`` that hold NaN or infinite values.

    The common case costs one cheap column sum: when every column sum is finite, no value is
    NaN or infinite. Otherwise ``nan_policy='raise'`` raises, and infinite values are taken
    out: an infinity has no finite correlation with anything, and it is not a missing value
    that ``nan_policy='omit'`` may drop. Its entries are replaced by zero (so they cannot
    disturb other columns) and the caller sets every result entry touching such a column to
    NaN, and warns (at the public function, so the warning points at the user's line).

    Returns
    -------
    clean : Tensor
        ``t`` with infinities replaced by 0 (NaN kept).
    nan_columns, infinite_columns : Tensor of bool, shape ``(t.shape[1],)``
    """
    none = torch.zeros(t.shape[1], dtype=torch.bool, device=t.device)
    if bool(torch.isfinite(t.sum(dim=0)).all()):
        return t, none, none
    nan_columns = torch.isnan(t).any(dim=0)
    is_inf = torch.isinf(t)
    infinite_columns = is_inf.any(dim=0)
    if nan_policy == "raise" and bool(nan_columns.any() | infinite_columns.any()):
        raise ValueError(f"{name} contains NaN or infinite values (nan_policy='raise')")
    if bool(infinite_columns.any()):
        t = torch.where(is_inf, torch.zeros_like(t), t)
    return t, nan_columns, infinite_columns


def check_square(t: torch.Tensor, name: str) -> None:
    """Raise ``ValueError`` unless ``t`` is a non-empty square 2-D matrix ``(d, d)``.

    The message names ``name`` and gives the shape (a scalar's shape is ``()``).
    """
    if t.ndim != 2 or t.shape[0] != t.shape[1] or t.shape[0] == 0:
        raise ValueError(
            f"{name} must be a non-empty square 2-D (d, d) matrix, got shape {tuple(t.shape)}"
        )


# Symmetry tolerance, in units of the compute dtype's machine epsilon, relative to the largest
# finite magnitude in the matrix (at least 1): 1e3 eps is about 1.2e-4 in float32 and 2.2e-13
# in float64, loose enough for a covariance computed by a BLAS that blocks its two triangles
# differently, and far below any asymmetry that is a real mistake.
SYMMETRY_EPS_FACTOR = 1e3


def check_symmetric(t: torch.Tensor, name: str) -> None:
    """Raise ``ValueError`` unless the square matrix ``t`` equals its transpose up to rounding.

    One rule for the whole library:

    * **Tolerance**: ``|t[i, j] - t[j, i]| <= 1e3 * eps * max(1, max |t|)``, where ``eps`` is
      the machine epsilon of the dtype ``t`` is computed in (float32 for half precision) and
      ``max |t|`` runs over the finite entries.
    * **NaN**: a NaN must be mirrored by a NaN (``t[i, j]`` is NaN exactly when ``t[j, i]``
      is, as in the NaN row and column of a constant feature); mirrored NaNs, and equal
      mirrored infinities, count as equal. A NaN facing a number is an asymmetry.

    Whether NaN is allowed at all is the caller's decision (check it separately).
    """
    check_square(t, name)
    work = t.detach()
    work = work.to(compute_dtype(work.dtype))
    mirrored = work.T
    same = (work == mirrored) | (torch.isnan(work) & torch.isnan(mirrored))
    if bool(same.all()):
        return
    finite = torch.isfinite(work)
    scale = max(float(torch.where(finite, work.abs(), 0.0).max()), 1.0)
    tol = SYMMETRY_EPS_FACTOR * torch.finfo(work.dtype).eps * scale
    diff = torch.where(same, 0.0, (work - mirrored).abs())
    diff = torch.nan_to_num(diff, nan=float("inf"))
    worst = float(diff.max())
    if not worst <= tol:
        raise ValueError(
            f"{name} of shape {tuple(t.shape)} is not symmetric "
            f"(largest |{name} - {name}.T| is {worst:.3g}, tolerance {tol:.3g})"
        )


# Rows compared first when looking for constant columns: almost every column that varies
# differs from its first value within them, so the full comparison runs on few columns.
_CONSTANT_SCREEN_ROWS = 64


def _equal_head(t: torch.Tensor) -> torch.Tensor:
    """Whether each column's first rows are all equal (NaN equals nothing; ``t`` is real,
    not boolean, with at least one row)."""
    head = t[:_CONSTANT_SCREEN_ROWS]
    return head.amax(dim=0) == head.amin(dim=0)


def constant_columns(t: torch.Tensor) -> torch.Tensor:
    """Which columns of ``t`` are exactly constant: every value equal to the column's first.

    This is the one constancy rule of corrlib (correlation, CKA, monitors). No variance
    threshold decides: data on a tiny scale, such as noise of size 1e-9, are not constant, and
    the rounding residue a constant column leaves after centring is not variance. A column
    holding a NaN is not constant (NaN equals nothing). The test reads the first rows of every
    column and compares the whole column only where those rows were all equal, so it costs
    little beside any correlation.

    Parameters
    ----------
    t : Tensor, shape ``(n, d)`` or ``(n,)``
        Real, non-boolean data with at least one sample (samples in rows).

    Returns
    -------
    Tensor of bool, shape ``(d,)`` (0-d for a 1-D ``t``)
    """
    if t.ndim == 1:
        return constant_columns(t[:, None])[0]
    t = t.detach()
    candidates = _equal_head(t)
    if t.shape[0] <= _CONSTANT_SCREEN_ROWS or not bool(candidates.any()):
        return candidates
    index = torch.nonzero(candidates).squeeze(1)
    sub = t[:, index]
    constant = torch.zeros_like(candidates)
    constant[index] = (sub == sub[:1]).all(dim=0)
    return constant
