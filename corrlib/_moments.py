"""The Pearson core: centred co-moments from one shifted product, and moments to correlation.

The one-pass formula ``sum(x*y) - n*mean(x)*mean(y)`` loses all precision when the data sit
far from zero (in float32, an offset of 1e4 on unit-variance data leaves about one correct
digit). corrlib therefore *shifts* each column by a centre ``c`` close to its mean, the mean
of its first rows, before multiplying:

    G = (x - c)^T (y - c_y),   s = sum(x - c),   cross = G - s s_y^T / n.

The correction ``s s_y^T / n`` is small, so it cancels little: at most ``log2(sq / ss)``
bits, where ``sq`` is a column's sum of squares of the shifted data and ``ss`` its centred
one. :func:`well_shifted` checks that this costs at most two bits (``sq < 4 ss``) and that
every ``ss`` lies where products of two of them neither under- nor overflow; the callers
handle the columns that fail (constant, non-finite, far from typical, extreme in scale).

Tall data are multiplied in row blocks of equal length (up to 16384 rows and 2^22 elements):
each block is shifted into one buffer allocated for the call, multiplied into a second one and
added to the product (in float64 for float32 data), so no shifted copy of the whole data is
made. The same shift serves every block, so the blocks' sums simply add.
Nothing is kept between calls.

Data that arrive in pieces with their own shifts (streams, ranks of a distributed job) are
combined with Chan, Golub and LeVeque's pairwise rule in
:meth:`corrlib.RunningCorrelation._add_moments`.

:func:`correlation` turns moments into correlations with the same edge cases for every caller
(``corr_matrix``, ``RunningCorrelation.compute``, ``sparse.cov_to_corr``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

# The shift is the mean of this many first rows (the exact mean for shorter data).
HEAD_ROWS = 1024
# Tall data are shifted and multiplied in blocks of at most this many elements (16 MiB of
# float32: fewer, longer products run closer to the speed of one product of the whole data).
_BLOCK_ELEMENTS = 1 << 22
_MIN_BLOCK_ROWS, _MAX_BLOCK_ROWS = 256, 16384
# Largest accepted ratio sq / ss (two bits of cancellation).
_MAX_CANCELLATION = 4.0


@dataclass
class Moments:
    """Count, shifted sums and centred co-moments of two blocks of columns.

    ``sums_x`` are the column sums of the shifted data ``x - c`` (so the mean is
    ``c + sums_x / n``); ``sq_x`` their sums of squares; ``cross`` the centred co-moment
    ``sum((x - mean_x)^T (y - mean_y))`` and ``ss_x`` the centred sums of squares. For a block
    with itself (``symmetric``) the ``_y`` fields are the ``_x`` ones and ``cross`` is
    symmetric up to the rounding of the product: consumers symmetrize once, at the end.
    """

    n: int
    sums_x: torch.Tensor
    sums_y: torch.Tensor
    cross: torch.Tensor
    ss_x: torch.Tensor
    ss_y: torch.Tensor
    sq_x: torch.Tensor
    sq_y: torch.Tensor
    symmetric: bool
    dtype: torch.dtype  # the data's: the products' range is judged in it


def head_mean(x: torch.Tensor) -> torch.Tensor:
    """The mean of the first rows of ``x``: the shift of :func:`shifted_moments`."""
    head = x if x.shape[0] <= HEAD_ROWS else x[:HEAD_ROWS]
    # any shift gives the same moments: it carries no gradient
    return (head.detach() if head.requires_grad else head).mean(0)


def block_rows(d: int) -> int:
    """Rows per block for data ``d`` columns wide."""
    return min(max(_BLOCK_ELEMENTS // max(d, 1), _MIN_BLOCK_ROWS), _MAX_BLOCK_ROWS)


def shifted_moments(
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    *,
    shift_x: torch.Tensor | None = None,
    shift_y: torch.Tensor | None = None,
    rows: int | None = None,
) -> Moments:
    """Moments of ``x`` with itself (``y=None``) or with ``y``, from one shifted product.

    Parameters
    ----------
    x, y : Tensor, shape ``(n, d_x)`` and ``(n, d_y)``
        NaN-free floating data of one dtype (NaN and infinities only spoil their own columns).
    shift_x, shift_y : Tensor, shape ``(d,)``, optional
        The centres; by default the mean of the first rows (:func:`head_mean`).
    rows : int, optional
        Rows per block, if fewer than :func:`block_rows`. Differentiable data are multiplied
        in one block.
    """
    cx = head_mean(x) if shift_x is None else shift_x
    if y is None:
        gram, sums, _, _, _ = _products(x, cx, None, None, rows)
        return symmetric_moments(gram, sums, x.shape[0], x.dtype)
    cy = head_mean(y) if shift_y is None else shift_y
    gram, sums_x, sums_y, sq_x, sq_y = _products(x, cx, y, cy, rows)
    n = x.shape[0]
    cross = gram.addr(sums_x, sums_y, alpha=-1.0 / n)
    ss_x = torch.addcmul(sq_x, sums_x, sums_x, value=-1.0 / n)
    ss_y = torch.addcmul(sq_y, sums_y, sums_y, value=-1.0 / n)
    return Moments(n, sums_x, sums_y, cross, ss_x, ss_y, sq_x, sq_y, False, x.dtype)


def shifted_gram(x: torch.Tensor, rows: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``G = (x - c)^T (x - c)`` and ``s = sum(x - c)`` for the shift ``c`` of
    :func:`head_mean`: the one product of :func:`shifted_moments` (``rows`` as there)."""
    gram, sums, _, _, _ = _products(x, head_mean(x), None, None, rows)
    return gram, sums


def symmetric_moments(
    gram: torch.Tensor, sums: torch.Tensor, n: int, dtype: torch.dtype
) -> Moments:
    """The :class:`Moments` of ``n`` rows of data of ``dtype`` with themselves, from their
    shifted product ``gram`` and sums ``sums`` (:func:`shifted_gram`)."""
    cross = gram.addr(sums, sums, alpha=-1.0 / n)
    sq, ss = torch.diagonal(gram), torch.diagonal(cross)
    return Moments(n, sums, sums, cross, ss, ss, sq, sq, True, dtype)


def self_correlation(
    gram: torch.Tensor, sums: torch.Tensor, n: int, dtype: torch.dtype
) -> tuple[torch.Tensor, None] | tuple[None, torch.Tensor]:
    """The correlation matrix of ``n`` rows of data of ``dtype`` with themselves, from their
    shifted product (:func:`shifted_gram`), and ``None``, if every column is
    :func:`well_shifted` (one host sync); otherwise ``None`` and the per-column flags of that
    check.

    The co-moment is formed four times over, ``F = 2 C + 2 C^T`` (the factors are exact): it
    is exactly symmetric, its diagonal ``4 ss`` is what the check compares ``sq`` with, and
    ``F / sqrt(diag(F) diag(F)^T)`` is the correlation with a diagonal of exactly 1, because
    ``sqrt(fl(s * s)) == s`` in binary floating point.
    """
    four = gram.addr(sums, sums, beta=2.0, alpha=-2.0 / n)
    four = four + four.T  # the last operation: a + b == b + a exactly
    sq, ss4 = gram.diagonal(), four.diagonal()
    if not _all_pass(sq, ss4, dtype):
        return None, _passes(sq, ss4, dtype)
    return four.div_(torch.outer(ss4, ss4).sqrt_()).clamp_(-1.0, 1.0), None


def _products(
    x: torch.Tensor,
    cx: torch.Tensor,
    y: torch.Tensor | None,
    cy: torch.Tensor | None,
    rows: int | None,
) -> tuple[torch.Tensor, ...]:
    """``(G, sums_x, sums_y, sq_x, sq_y)`` of the shifted data (the last three ``None``
    without ``y``): in one product, or block by block.

    The blocks are shifted into one buffer and multiplied into a second one; their products
    and sums are added up in float64 for float32 data: one long product would add its rows
    one after the other into a float32 sum, off by 1e-4 relative after millions of rows. Each
    block's product is converted before it is added (a mixed-dtype in-place addition takes
    several times longer).
    """
    n, d_x = x.shape
    d_y = 0 if y is None else y.shape[1]
    # a user's chunk is split further into blocks of the default size, never joined (no
    # block has fewer than _MIN_BLOCK_ROWS rows: shorter data need not ask block_rows)
    limit = n if n <= _MIN_BLOCK_ROWS else block_rows(d_x + d_y)
    rows = limit if rows is None else min(rows, limit)
    if n > rows:  # blocks of equal length: no short last block
        blocks = -(-n // rows)  # ceil(n / rows)
        rows = -(-n // blocks)
    if n <= rows or x.requires_grad or (y is not None and y.requires_grad):
        xs = x - cx
        if y is None:
            return xs.T @ xs, xs.sum(0), None, None, None
        ys = y - cy
        return xs.T @ ys, xs.sum(dim=0), ys.sum(dim=0), (xs * xs).sum(0), (ys * ys).sum(0)
    device = x.device
    wide = torch.float64 if x.dtype == torch.float32 and device.type != "mps" else x.dtype
    buffer = torch.empty(rows, d_x + d_y, dtype=x.dtype, device=device)
    product = torch.empty(d_x, d_y or d_x, dtype=x.dtype, device=device)
    gram = torch.zeros(d_x, d_y or d_x, dtype=wide, device=device)
    sums = torch.zeros(d_x + d_y, dtype=wide, device=device)
    squares = torch.zeros(d_x + d_y, dtype=wide, device=device) if y is not None else None
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        block = buffer[: stop - start]
        xs = block[:, :d_x]
        torch.sub(x[start:stop], cx, out=xs)
        if y is None:
            torch.mm(xs.T, xs, out=product)
        else:
            ys = block[:, d_x:]
            torch.sub(y[start:stop], cy, out=ys)
            torch.mm(xs.T, ys, out=product)
            assert squares is not None
            squares += (block * block).sum(dim=0)
        gram += product.to(wide)  # (a converted copy adds faster than a promoting add_)
        sums += block.sum(dim=0)
    if squares is None:
        return gram, sums, None, None, None
    return gram, sums[:d_x], sums[d_x:], squares[:d_x], squares[d_x:]


def well_shifted(ss: torch.Tensor, sq: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Per column: the correction cancelled at most two bits and ``ss`` is in range.

    In range means ``ss > sqrt(tiny)`` and ``sq < sqrt(max) / 4`` of the data's ``dtype`` (so
    ``4 ss < sqrt(max) / 4`` too: ``ss <= sq``), so that the product of two such sums, even
    four times over, is a normal number. False for NaN, infinite, zero and constant columns
    (a constant column's ``ss`` is rounding residue, far below ``sq / 4``).
    """
    return _passes(sq, _MAX_CANCELLATION * ss, dtype)


def all_well_shifted(ss: torch.Tensor, sq: torch.Tensor, dtype: torch.dtype) -> bool:
    """``bool(well_shifted(ss, sq, dtype).all())``, in one comparison (one host sync)."""
    return _all_pass(sq, _MAX_CANCELLATION * ss, dtype)


def _all_pass(sq: torch.Tensor, ss4: torch.Tensor, dtype: torch.dtype) -> bool:
    """Every column passes :func:`_passes` (up to ties at the bounds): ``sq <= 4 ss`` and
    ``lo <= 4 ss <= hi``, asked as ``clamp(max(sq, 4 ss), lo, hi) == 4 ss`` for all columns
    at once (NaN compares unequal)."""
    lo, hi = _bounds(dtype)
    return torch.equal(torch.maximum(sq, ss4).clamp_(lo, hi), ss4)


def _passes(sq: torch.Tensor, ss4: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """:func:`well_shifted` given ``ss4 = 4 ss``: ``max(sq, 4 sqrt(tiny)) < min(4 ss,
    sqrt(max) / 4)``, one comparison (NaN compares false)."""
    lo, hi = _bounds(dtype)
    return sq.clamp_min(lo) < ss4.clamp_max(hi)


@functools.cache
def _bounds(dtype: torch.dtype) -> tuple[float, float]:
    """The bounds of :func:`_passes` for data of ``dtype``."""
    lo, hi = _normal_roots(dtype)
    return _MAX_CANCELLATION * lo, hi / _MAX_CANCELLATION


@functools.cache
def _normal_roots(dtype: torch.dtype) -> tuple[float, float]:
    """``sqrt(tiny)`` and ``sqrt(max)`` of ``dtype``: two numbers whose product is normal."""
    info = torch.finfo(dtype)
    return info.tiny**0.5, info.max**0.5


def correlation(
    cross: torch.Tensor,
    ss_x: torch.Tensor,
    ss_y: torch.Tensor | None = None,
    *,
    bad_x: torch.Tensor | None = None,
    bad_y: torch.Tensor | None = None,
    in_range: bool = False,
) -> torch.Tensor:
    """The moments-to-correlation step: ``cross[i, j] / sqrt(ss_x[i] * ss_y[j])``.

    The same edge cases for every caller:

    * entries clipped to [-1, 1];
    * ``sqrt(a * b)`` rather than ``sqrt(a) * sqrt(b)``, so identical columns give exactly 1;
      where the product would under- or overflow, the roots are multiplied;
    * rows flagged in ``bad_x`` and columns in ``bad_y`` (constant, NaN or infinite features:
      the caller decides and warns) are NaN, without NaN in the gradient of the others;
    * ``ss_y=None`` (a matrix with itself) averages ``cross`` with its transpose, so the
      result is exactly symmetric, and sets the diagonal to 1.

    ``in_range=True`` (the cross block of two sets of columns that all passed
    :func:`well_shifted`, no flags) skips every check. Differentiable with respect to
    ``cross``, ``ss_x`` and ``ss_y``.
    """
    symmetric = ss_y is None
    if in_range:
        assert ss_y is not None and bad_x is None and bad_y is None
        return cross.div(torch.outer(ss_x, ss_y).sqrt_()).clamp_(-1.0, 1.0)
    # a sum of squares that is not a positive number has no correlation
    bad_x = _no_spread(ss_x, bad_x)
    bad_y = bad_x if symmetric else _no_spread(ss_y, bad_y)
    ss_x = torch.where(bad_x, 1.0, ss_x)
    if symmetric:  # (c + c^T) / 2 / sqrt(ss ss^T), with the halving in the root (exact)
        r = (cross + cross.T) / _outer_sqrt(ss_x, 4 * ss_x)
        r = r.clamp(-1.0, 1.0)
        r.diagonal().fill_(1.0)
    else:
        r = (cross / _outer_sqrt(ss_x, torch.where(bad_y, 1.0, ss_y))).clamp(-1.0, 1.0)
    return r.masked_fill(bad_x[:, None] | bad_y[None, :], float("nan"))


def _no_spread(ss: torch.Tensor, bad: torch.Tensor | None) -> torch.Tensor:
    """``bad``, and every feature whose sum of squares is not a positive finite number."""
    none = ~((ss > 0) & torch.isfinite(ss))
    return none if bad is None else bad | none


def _outer_sqrt(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``sqrt(a[i] * b[j])`` for every pair, the product form wherever it stays in range."""
    lo, hi = _normal_roots(a.dtype)
    ok_a, ok_b = (a > lo) & (a < hi), (b > lo) & (b < hi)
    if bool(ok_a.all() & ok_b.all()):
        return torch.sqrt(a[:, None] * b)
    both = ok_a[:, None] & ok_b[None, :]
    product = torch.sqrt(torch.where(both, a[:, None] * b, 1.0))
    return torch.where(both, product, torch.sqrt(a)[:, None] * torch.sqrt(b))


def unit_scaled(t: torch.Tensor, top: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``t / 2^e`` (exact) with ``2^(e-1) <= top < 2^e``, and ``e``; ``top`` is a largest
    magnitude (per column, or one for all; 0 leaves ``t`` as it is).

    Correlation and CKA do not see such a scale, and data scaled so keep every product and
    sum of squares far from under- and overflow. Two factors, each within range, also for
    subnormal and huge data.
    """
    _, exponent = torch.frexp(torch.where(top > 0, top, 1.0))
    half = torch.div(exponent, 2, rounding_mode="floor")
    scaled = torch.ldexp(torch.ldexp(t, -half.to(t.dtype)), (half - exponent).to(t.dtype))
    return scaled, exponent
