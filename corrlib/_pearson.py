"""Pearson correlation matrices: one product, one check, and the rare columns that fail it.

:func:`pearson_matrix` computes the shifted product of :mod:`corrlib._moments` once and asks
one question of it (one host sync): does every column pass :func:`~corrlib._moments.well_shifted`?
(For data with itself, and for ``x`` and ``y`` stacked side by side when they have few
columns, :func:`~corrlib._moments.self_correlation` asks it and normalises in one go.)
For finite data of ordinary scale the answer is yes and the correlations follow at once.
Otherwise :func:`_careful` finds, column by column, what went wrong:

* NaN and infinite columns (their entries are masked; the product is not computed again);
* exactly constant columns (NaN with a :class:`~corrlib.ConstantInputWarning`);
* columns whose first rows were far from typical, or whose sums of squares left the
  floating range: the data are then scaled by a power of two per column (exact) and centred
  on their exact means, and the product is computed once more.
"""

from __future__ import annotations

import torch

from corrlib import _moments
from corrlib._validation import constant_columns, scan_nonfinite
from corrlib._warnings import ConstantInputWarning, constant_input_message, warn

# Up to this many columns in all, x and y are multiplied as one stacked matrix.
STACK_COLUMNS = 64


def pearson_matrix(
    x: torch.Tensor,
    y: torch.Tensor | None,
    *,
    nan_policy: str,
    rows: int | None,
) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None]:
    """Pearson correlations of the columns of ``x`` (with those of ``y``), one dtype.

    Returns the matrix and, if there are any, the NaN columns of ``x`` and ``y`` (whose
    entries the caller recomputes under ``nan_policy="omit"``; ``None`` when the data are
    finite). Infinite and constant columns are NaN, with a warning.
    """
    d_x = x.shape[1]
    stacked = y is not None and d_x + y.shape[1] <= STACK_COLUMNS
    left = torch.cat([x, y], dim=1) if stacked else x
    right = None if stacked else y
    grad = left.requires_grad or (right is not None and right.requires_grad)
    # the product needs no autograd graph: its gradient is written out in _WithGradient
    data = left.detach() if grad else left
    if right is None:
        gram, sums = _moments.shifted_gram(data, rows)
        r, ok = _moments.self_correlation(gram, sums, data.shape[0], data.dtype)
        if ok is None:  # every column passed
            assert r is not None
            if stacked:
                r = r[:d_x, d_x:]
            return (_WithGradient.apply(x, y, r) if grad else r), None
        m = _moments.symmetric_moments(gram, sums, data.shape[0], data.dtype)
    else:
        m = _moments.shifted_moments(data, right.detach() if grad else right, rows=rows)
        ss, sq = torch.cat([m.ss_x, m.ss_y]), torch.cat([m.sq_x, m.sq_y])
        if _moments.all_well_shifted(ss, sq, m.dtype):
            r = _moments.correlation(m.cross, m.ss_x, m.ss_y, in_range=True)
            return (_WithGradient.apply(x, y, r) if grad else r), None
        ok = _moments.well_shifted(ss, sq, m.dtype)
    r, nan = _careful(left, right, m, ok, nan_policy, rows, "x" if y is None else "x or y")
    if stacked:
        r = r[:d_x, d_x:]
    return r, (nan[:d_x], nan[d_x:] if y is not None else nan)


class _WithGradient(torch.autograd.Function):
    """The correlation matrix ``r`` of ``x`` (with ``y``), computed without autograd, given
    its gradient.

    With centred columns ``c = x - mean`` of lengths ``l = |c|`` the matrix is
    ``r = (c_x / l_x)^T (c_y / l_y)``. For an upstream gradient ``G`` the chain rule gives

        dL/dx = c_y (G^T / (l_y l_x^T)) - c_x diag(w_x / l_x^2),   w_x = rowsums(r * G),

    one product of the centred data with a small matrix (for ``x`` with itself, ``G + G^T``
    with a zero diagonal replaces ``G``, as the diagonal of ``r`` is the constant 1; the
    result is centred because ``c`` is). The backward pass is made of differentiable
    operations on ``x``, ``y`` and the saved result, so second derivatives work too.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, y: torch.Tensor | None, r: torch.Tensor) -> torch.Tensor:
        out = r.clone()
        ctx.save_for_backward(x, y, out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, y, r = ctx.saved_tensors
        c_x, len_x = _centred(x)
        if y is None:
            g = grad + grad.T
            g = g - torch.diag_embed(g.diagonal())
            return _data_gradient(c_x, g, len_x, len_x, c_x, (r * g).sum(0)), None, None
        c_y, len_y = _centred(y)
        weighted = r * grad
        grad_x = grad_y = None
        if ctx.needs_input_grad[0]:
            grad_x = _data_gradient(c_y, grad.T, len_y, len_x, c_x, weighted.sum(1))
        if ctx.needs_input_grad[1]:
            grad_y = _data_gradient(c_x, grad, len_x, len_y, c_y, weighted.sum(0))
        return grad_x, grad_y, None


def _centred(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Columns centred on their means, and their lengths."""
    centred = t - t.mean(dim=0)
    return centred, (centred * centred).sum(dim=0).sqrt()


def _data_gradient(
    c_other: torch.Tensor,
    g: torch.Tensor,
    len_other: torch.Tensor,
    length: torch.Tensor,
    centred: torch.Tensor,
    along: torch.Tensor,
) -> torch.Tensor:
    """``c_other (g / (len_other length^T)) - centred diag(along / length^2)``: the gradient
    of :class:`_WithGradient` with respect to one input (``g`` the upstream gradient
    arranged as ``(d_other, d)``, ``along`` the row sums of ``r * G`` for that input)."""
    small = g / (len_other[:, None] * length)
    return torch.addcmul(c_other @ small, centred, along / (length * length), value=-1.0)


def _careful(
    x: torch.Tensor,
    y: torch.Tensor | None,
    m: _moments.Moments,
    ok: torch.Tensor,
    nan_policy: str,
    rows: int | None,
    name: str,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The correlations when some column failed the check; and the NaN columns (x's, then y's).

    ``ok`` flags the columns of ``x`` (then of ``y``) that passed.
    """
    d_x = x.shape[1]
    x, nan_x, inf_x = _scan_failed(x, ~ok[:d_x], nan_policy, "x")
    if y is not None:
        y, nan_y, inf_y = _scan_failed(y, ~ok[d_x:], nan_policy, "y")
        nan, inf = torch.cat([nan_x, nan_y]), torch.cat([inf_x, inf_y])
    else:
        nan, inf = nan_x, inf_x
    if bool(inf.any()):
        warn_infinite(name)
    failed = ~ok & ~nan & ~inf
    constant = torch.zeros_like(failed)
    if bool(failed.any()):
        both = x if y is None else torch.cat([x, y], dim=1)
        index = torch.nonzero(failed).squeeze(1)
        constant[index] = constant_columns(both[:, index])
    if bool(constant.any()):
        warn(constant_input_message(name), ConstantInputWarning)
    bad = nan | inf | constant
    grad = x.requires_grad or (y is not None and y.requires_grad)
    if bool((failed & ~constant).any()) or (grad and bool(bad.any())):
        m = _exactly_centred(x, y, bad, rows)
    if y is None:
        r = _moments.correlation(m.cross, m.ss_x, bad_x=bad)
    else:
        r = _moments.correlation(m.cross, m.ss_x, m.ss_y, bad_x=bad[:d_x], bad_y=bad[d_x:])
    return r, nan


def _scan_failed(
    t: torch.Tensor, failed: torch.Tensor, nan_policy: str, name: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`~corrlib._validation.scan_nonfinite` of the columns flagged in ``failed`` only.

    A column that passed the check has a finite sum of squares, so it holds no NaN and no
    infinity: only the failed columns (usually few) are read again.
    """
    nan = torch.zeros_like(failed)
    inf = torch.zeros_like(failed)
    index = torch.nonzero(failed).squeeze(1)
    if index.numel() == 0:
        return t, nan, inf
    columns, nan[index], inf[index] = scan_nonfinite(t[:, index], nan_policy, name)
    if bool(inf.any()):  # infinities are replaced by zero in a copy, as scan_nonfinite does
        t = t.index_copy(1, index, columns)
    return t, nan, inf


def _exactly_centred(
    x: torch.Tensor, y: torch.Tensor | None, bad: torch.Tensor, rows: int | None
) -> _moments.Moments:
    """Moments of the data scaled per column by a power of two (exact) and shifted by their
    exact means; the ``bad`` columns (NaN, infinite, constant) are set to zero."""
    d_x = x.shape[1]
    x = _rescaled(x, bad[:d_x])
    cy = None
    if y is not None:
        y = _rescaled(y, bad[d_x:])
        cy = y.mean(dim=0).detach()
    return _moments.shifted_moments(x, y, shift_x=x.mean(dim=0).detach(), shift_y=cy, rows=rows)


def _rescaled(t: torch.Tensor, bad: torch.Tensor) -> torch.Tensor:
    """``t`` with its ``bad`` columns zeroed and every column divided by a power of two near
    its largest magnitude (which correlation does not see, and which keeps every sum of
    squares far from under- and overflow)."""
    t = t.masked_fill(bad, 0.0)
    return _moments.unit_scaled(t, t.detach().abs().amax(dim=0))[0]


def warn_infinite(name: str) -> None:
    """The warning for data holding an infinite value."""
    warn(f"{name} contains infinite values; every correlation that involves those columns is NaN")
