"""Input checks shared by corrlib's functions.

Every public function turns its inputs into tensors here, so that the rules are the same
everywhere: tensors, numpy arrays and nested lists are accepted; integer and boolean data are
cast to torch's default float dtype; complex data are refused; half precision is computed in
float32 and the result cast back.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

NAN_POLICIES = ("propagate", "omit", "raise")

_LOW_PRECISION = (torch.float16, torch.bfloat16)


def as_float_tensor(x: Any, name: str = "x") -> torch.Tensor:
    """Return ``x`` as a floating-point tensor, without copying when it already is one.

    Parameters
    ----------
    x : tensor, array or nested sequence
        The data.
    name : str
        Name used in error messages.

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
        if arr.dtype == object or arr.dtype.kind in "USV":
            raise TypeError(f"{name} must be numeric, got an array of dtype {arr.dtype}")
        if arr.dtype.kind == "c":
            raise TypeError(f"{name} must be real, got complex dtype {arr.dtype}")
        if not arr.flags.writeable:  # e.g. pandas' read-only views; torch would warn
            arr = arr.copy()
        t = torch.from_numpy(np.ascontiguousarray(arr))
    if t.is_complex():
        raise TypeError(f"{name} must be real, got complex dtype {t.dtype}")
    if not t.is_floating_point():
        t = t.to(torch.get_default_dtype())
    return t


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype a computation runs in: float16 and bfloat16 are promoted to float32."""
    return torch.float32 if dtype in _LOW_PRECISION else dtype


def check_nan_policy(nan_policy: str) -> None:
    """Raise ``ValueError`` unless ``nan_policy`` is one of scipy's three policies."""
    if nan_policy not in NAN_POLICIES:
        raise ValueError(f"nan_policy must be one of {NAN_POLICIES}, got {nan_policy!r}")


def check_ndim(t: torch.Tensor, ndim: int, name: str = "x") -> None:
    """Raise ``ValueError`` unless ``t`` has exactly ``ndim`` dimensions."""
    if t.ndim != ndim:
        layout = {1: "(n_samples,)", 2: "(n_samples, n_features)"}.get(ndim, f"{ndim}-D")
        raise ValueError(
            f"{name} must be {ndim}-D with layout {layout}, got shape {tuple(t.shape)}"
        )


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
    NaN, after a ``RuntimeWarning``.

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
        warnings.warn(
            f"{name} contains infinite values; every correlation that involves "
            "those columns is NaN",
            RuntimeWarning,
            stacklevel=3,
        )
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


def constant_columns(
    t: torch.Tensor, *, mean: torch.Tensor | None = None, ss: torch.Tensor | None = None
) -> torch.Tensor:
    """Which columns of ``t`` are exactly constant: every value equal to the column's first.

    This is the one constancy rule of corrlib (correlation, CKA, monitors). No variance
    threshold decides: data on a tiny scale, such as noise of size 1e-9, are not constant, and
    the rounding residue a constant column leaves after centring is not variance. A column
    holding a NaN is not constant (NaN equals nothing).

    Parameters
    ----------
    t : Tensor, shape ``(n, d)`` or ``(n,)``
        The data (samples in rows).
    mean, ss : Tensor, shape ``(d,)``, optional
        The columns' computed means and centred sums of squares, when the caller has them. They
        only pick *candidates* (a constant column's computed mean is off by at most about
        ``n * eps`` relative, so its ``ss`` is below ``n * (2 n eps |mean|)^2``); the candidates
        are then compared value by value, so the exact test costs almost nothing on ordinary
        data. Without them every column is compared.

    Returns
    -------
    Tensor of bool, shape ``(d,)`` (0-d for a 1-D ``t``)
    """
    if t.ndim == 1:
        return constant_columns(t[:, None], mean=mean, ss=ss)[0]
    t = t.detach()
    if mean is None or ss is None:
        return (t == t[:1]).all(dim=0)
    n = t.shape[0]
    ss = ss.detach()
    eps = torch.finfo(ss.dtype).eps if ss.is_floating_point() else 0.0
    bound = n * (2 * n * eps * mean.detach().abs()) ** 2
    candidates = torch.nonzero(~(ss > bound)).squeeze(1)
    constant = torch.zeros(t.shape[1], dtype=torch.bool, device=t.device)
    if candidates.numel():
        sub = t[:, candidates]
        constant[candidates] = (sub == sub[:1]).all(dim=0)
    return constant
