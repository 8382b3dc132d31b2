"""Centred co-moments and the one moments-to-correlation step behind every Pearson correlation.

The one-pass formula ``sum(x*y) - n*mean(x)*mean(y)`` loses all precision when the data sit
far from zero (in float32, an offset of 1e4 on unit-variance data leaves about one correct
digit). corrlib therefore *shifts* each column by a centre ``c`` close to its mean before
multiplying, and subtracts ``n * m m^T`` for the small remaining mean ``m`` of the shifted
data. That subtraction loses about ``log2(kappa)`` bits, ``kappa = sum(xs^2) / sum((xs - m)^2)``
(at most 2 bits here, or the data are shifted again by their exact mean).
The centre is the mean of the first rows, so no separate pass over the data finds it, and
``x - c`` is exact in floating point for values within a factor 2 of ``c`` (Sterbenz). The
shifted data carry a column of ones, so that one product also gives the column sums; on the
CPU they are written block by block into a reused buffer and multiplied there (a fresh
full-size copy costs more in page faults than the product saves). Data whose
columns already sit close to zero (zero-mean or post-ReLU activations) skip the shift and
multiply the raw data.

Data that arrive in pieces are shifted by one fixed reference row and merged with Chan,
Golub and LeVeque's pairwise rule (:func:`merge`, :func:`chunked_gram`): with a fixed shift
the running mean stays small, so its updates do not fall below half an ulp (a running mean
near 1e5 in float32 stops moving for updates under 4e-3).

:func:`correlation` turns moments into correlations, with the same edge cases for every
caller (``corr_matrix``, ``RunningCorrelation.compute``, ``sparse.cov_to_corr``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from corrlib import _cpu_gram

# Largest cancellation factor sum(xs^2) / sum((xs - m)^2) accepted for the shifted product,
# and the largest one for which the first rows send the raw data to a product unshifted.
_MAX_CANCELLATION = 4.0
_SCREEN_CANCELLATION = 2.0
# Rows whose mean is the shift, and which screen whether the raw data need a shift at all.
_SCREEN_ROWS = 1024
# Rows whose mean centres each batch of a stream (its error, about sd / sqrt(rows), costs
# well under a bit in the product; fewer rows read less of a batch that is not yet in cache).
_CENTRE_ROWS = 128
# Up to this many columns in all, x and y share one shifted copy and one product.
_STACK_COLUMNS = 64


@dataclass
class Moments:
    """Count, means and centred cross-products of two blocks of columns.

    ``cross`` is ``sum((x - mean_x)^T (y - mean_y))`` with shape ``(d_x, d_y)``;
    ``ss_x`` and ``ss_y`` are the centred sums of squares of each column. For a block with
    itself, ``cross`` is symmetric up to rounding (a matrix product need not be exactly
    symmetric): consumers symmetrize once, at the end, as :func:`correlation` does.
    """

    n: int
    mean_x: torch.Tensor
    mean_y: torch.Tensor
    cross: torch.Tensor
    ss_x: torch.Tensor
    ss_y: torch.Tensor


def centred_gram(x: torch.Tensor, y: torch.Tensor | None = None) -> Moments:
    """Centred cross-products of ``x`` and ``y`` (``y=None`` means ``x`` itself).

    Differentiable (plain two-pass centring) when an input requires a gradient.
    """
    if x.requires_grad or (y is not None and y.requires_grad):
        return _two_pass(x, y)
    if y is not None and x.shape[1] == 1 and y.shape[1] == 1:
        return _pair_gram(x[:, 0], y[:, 0])
    if y is None and _well_centred(x[:_SCREEN_ROWS]):
        m = _raw_gram(x)
        if m is not None:
            return m
    cx = x[:_SCREEN_ROWS].mean(dim=0)
    cy = None if y is None else y[:_SCREEN_ROWS].mean(dim=0)
    m = _shifted_gram(x, cx, y, cy)
    if m is None:  # the first rows were far from typical: shift by the exact means
        m = _shifted_gram(x, x.mean(dim=0), y, None if y is None else y.mean(dim=0))
    return _two_pass(x, y) if m is None else m


def _two_pass(x: torch.Tensor, y: torch.Tensor | None) -> Moments:
    n = x.shape[0]
    mean_x = x.mean(dim=0)
    xc = x - mean_x
    if y is None:
        cross = xc.T @ xc
        ss = torch.diagonal(cross).clone()
        return Moments(n, mean_x, mean_x, cross, ss, ss)
    mean_y = y.mean(dim=0)
    yc = y - mean_y
    return Moments(n, mean_x, mean_y, xc.T @ yc, (xc * xc).sum(dim=0), (yc * yc).sum(dim=0))


def _well_centred(head: torch.Tensor) -> bool:
    """Whether the first rows suggest that the raw product loses at most one bit.

    The screen asks for ``sum(h^2) <= 2 * sum((h - mean)^2)``, written as
    ``n * mean^2 <= sum(h^2) / 2``: no centred copy is needed, and where that form cancels
    (data far from zero) the answer is "no" either way. It is stricter than the test the
    whole product must then pass (two bits, :func:`_acceptable`), so that a product made on
    the screen's word is rarely thrown away.
    """
    n = head.shape[0]
    head_mean = head.mean(dim=0)
    head_sq = (head * head).sum(dim=0)
    limit = 1 - 1 / _SCREEN_CANCELLATION
    return bool((n * head_mean * head_mean <= limit * head_sq).all())


def _raw_gram(x: torch.Tensor) -> Moments | None:
    """``x^T x - n m m^T`` on the raw data, or ``None`` if that cancels more than two bits."""
    n = x.shape[0]
    gram = _cpu_gram.symmetric_product(x)
    mean = _cpu_gram.column_sums(x) / n  # after the product: x is still in the cache
    return _from_shifted_products(n, None, mean, gram, None, None, None)


def _pair_gram(x: torch.Tensor, y: torch.Tensor) -> Moments:
    """:func:`centred_gram` of two single columns, given as 1-D tensors.

    Two columns need no matrix product: sums and dot products read each one a few times
    (from cache), where a product would first copy them side by side. Columns that sit close
    to zero are used as they are; others are shifted by the mean of their first rows (and by
    their exact means if that was not close enough).
    """
    head = slice(0, _SCREEN_ROWS)
    if _well_centred(x[head, None]) and _well_centred(y[head, None]):
        m = _pair_products(x, y, None, None)
        if m is not None:
            return m
    for cx, cy in ((x[head].mean(), y[head].mean()), (x.mean(), y.mean())):
        cx = torch.nan_to_num(cx, nan=0.0, posinf=0.0, neginf=0.0)
        cy = torch.nan_to_num(cy, nan=0.0, posinf=0.0, neginf=0.0)
        m = _pair_products(x, y, cx, cy)
        if m is not None:
            return m
    return _two_pass(x[:, None], y[:, None])


def _pair_products(
    x: torch.Tensor, y: torch.Tensor, cx: torch.Tensor | None, cy: torch.Tensor | None
) -> Moments | None:
    """Moments of two 1-D columns, shifted by ``cx`` and ``cy`` (``None``: not shifted)."""
    if cx is not None and cy is not None:
        x, y = x - cx, y - cy
    else:
        cx = cy = torch.zeros((), dtype=x.dtype, device=x.device)
    n = x.shape[0]
    squares = (_cpu_gram.tree_dot(x, x)[None], _cpu_gram.tree_dot(y, y)[None])
    gram = _cpu_gram.tree_dot(x, y).reshape(1, 1)
    return _from_shifted_products(
        n, cx[None], x.sum()[None], gram, cy[None], y.sum()[None], squares
    )


def frame_moments(x: torch.Tensor, shift: torch.Tensor | None) -> Moments:
    """Moments of ``x - shift`` with means *relative to* ``shift`` (``None``: no shift).

    For streams kept in a fixed frame: no screening, no shifted copy of the whole batch.
    """
    if shift is None:
        m = _raw_gram(x)
        return centred_gram(x) if m is None else m
    # Centre on the batch's own first rows (x - c is exact near c), then move the means into
    # the frame: c - shift is exact too when the stream stays within a factor 2 of the shift.
    c = torch.nan_to_num(x[:_CENTRE_ROWS].mean(dim=0), nan=0.0, posinf=0.0, neginf=0.0)
    m = _shifted_gram(x, c, None, None, add_back=False)
    if m is None:  # means relative to c either way
        m = centred_gram(x - c)
    mean = (c - shift) + m.mean_x
    return Moments(m.n, mean, mean, m.cross, m.ss_x, m.ss_y)


def _shifted_gram(
    x: torch.Tensor,
    cx: torch.Tensor,
    y: torch.Tensor | None,
    cy: torch.Tensor | None,
    *,
    add_back: bool = True,
) -> Moments | None:
    """Moments from one product of the shifted data ``[x - cx, (y - cy), 1]``.

    ``None`` when the shift left too large a mean (cancellation factor above 4).
    """
    n, d_x = x.shape
    cx = torch.nan_to_num(cx, nan=0.0, posinf=0.0, neginf=0.0)
    if cy is not None:
        cy = torch.nan_to_num(cy, nan=0.0, posinf=0.0, neginf=0.0)
    if x.device.type == "cpu" and n > _cpu_gram.MIN_BLOCK_ROWS:
        return _blocked_shifted_gram(x, cx, y, cy, add_back)
    if y is None:
        buf = _augmented([(x, cx)])
        gram = _cpu_gram.symmetric_product(buf)
        sums = gram[:d_x, d_x]  # outside gram[:d_x, :d_x], which is updated in place
        back = cx if add_back else torch.zeros_like(cx)
        return _from_shifted_products(n, back, sums, gram[:d_x, :d_x], None, None, None)
    assert cy is not None
    d_y = y.shape[1]
    if d_x + d_y <= _STACK_COLUMNS:
        buf = _augmented([(x, cx), (y, cy)])
        gram = buf.T @ buf
        d = d_x + d_y
        return _from_shifted_products(
            n,
            cx,
            gram[:d_x, d],
            gram[:d_x, d_x:d],
            cy,
            gram[d_x:d, d],
            (torch.diagonal(gram)[:d_x], torch.diagonal(gram)[d_x:d]),
        )
    bx, by = _augmented([(x, cx)]), _augmented([(y, cy)])
    gram = bx.T @ by
    sq_x = (bx[:, :d_x] ** 2).sum(dim=0)
    sq_y = (by[:, :d_y] ** 2).sum(dim=0)
    return _from_shifted_products(
        n, cx, gram[:d_x, d_y], gram[:d_x, :d_y], cy, gram[d_x, :d_y], (sq_x, sq_y)
    )


def _blocked_shifted_gram(
    x: torch.Tensor,
    cx: torch.Tensor,
    y: torch.Tensor | None,
    cy: torch.Tensor | None,
    add_back: bool = True,
) -> Moments | None:
    """:func:`_shifted_gram` on the CPU, shifting block by block into a reused buffer."""
    if y is None:
        return _blocked_symmetric_gram(x, cx, add_back)
    assert cy is not None
    n, d_x = x.shape
    width = d_x + y.shape[1]
    buf = _cpu_gram.work_buffer(_cpu_gram.block_rows(width), width, x.dtype)
    stacked = width <= _STACK_COLUMNS
    gram = torch.zeros(width if stacked else d_x, width if stacked else y.shape[1], dtype=x.dtype)
    sums = torch.zeros(width, dtype=x.dtype)
    squares = None if stacked else torch.zeros(width, dtype=x.dtype)
    for start in range(0, n, buf.shape[0]):
        stop = min(start + buf.shape[0], n)
        b = buf[: stop - start]
        torch.sub(x[start:stop], cx, out=b[:, :d_x])
        torch.sub(y[start:stop], cy, out=b[:, d_x:])
        if stacked:
            gram.addmm_(b.T, b)
        else:
            gram.addmm_(b[:, :d_x].T, b[:, d_x:])
            assert squares is not None
            squares += (b * b).sum(dim=0)
        sums += _cpu_gram.column_sums(b)
    if stacked:
        diag = torch.diagonal(gram)
        return _from_shifted_products(
            n, cx, sums[:d_x], gram[:d_x, d_x:], cy, sums[d_x:], (diag[:d_x], diag[d_x:])
        )
    assert squares is not None
    return _from_shifted_products(
        n, cx, sums[:d_x], gram, cy, sums[d_x:], (squares[:d_x], squares[d_x:])
    )


def _blocked_symmetric_gram(x: torch.Tensor, cx: torch.Tensor, add_back: bool) -> Moments | None:
    """The symmetric case of :func:`_blocked_shifted_gram`, with the sums from the product.

    Each block of ``x - cx`` is written next to a column of ones, so that one product gives
    the column sums with the Gram matrix (no separate pass over the shifted data).
    """
    n, d = x.shape
    plan = _cpu_gram.plan(d, x.dtype)
    for start in range(0, n, plan.rows):
        stop = min(start + plan.rows, n)
        shifted, blocks = plan.views(stop - start)
        torch.sub(x[start:stop], cx, out=shifted)
        beta = 0 if start == 0 else 1  # the first block overwrites the last call's products
        for out, left_t, right in blocks:
            out.addmm_(left_t, right, beta=beta)
    plan.mirror()
    back = cx if add_back else torch.zeros_like(cx)
    return _from_shifted_products(n, back, plan.sums, plan.gram.clone(), None, None, None)


def _augmented(blocks: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """``[b_1 - c_1, b_2 - c_2, ..., 1]`` in one new buffer (the shift and the copy in one pass)."""
    n = blocks[0][0].shape[0]
    width = sum(b.shape[1] for b, _ in blocks)
    ref = blocks[0][0]
    buf = torch.empty(n, width + 1, dtype=ref.dtype, device=ref.device)
    start = 0
    for b, c in blocks:
        torch.sub(b, c, out=buf[:, start : start + b.shape[1]])
        start += b.shape[1]
    buf[:, width] = 1
    return buf


def _from_shifted_products(
    n: int,
    cx: torch.Tensor | None,
    sums_or_mean_x: torch.Tensor,
    gram: torch.Tensor,
    cy: torch.Tensor | None,
    sums_y: torch.Tensor | None,
    squares: tuple[torch.Tensor, torch.Tensor] | None,
) -> Moments | None:
    """Moments from the products of shifted data; ``None`` if the shift was not good enough.

    ``cx`` is ``None`` for unshifted data, whose mean is passed in ``sums_or_mean_x``; else
    that argument holds the column sums of the shifted data. ``sums_y`` and ``squares`` (the
    sums of squares of the shifted x and y) are given for a cross block.
    """
    if cx is None:
        mx = sums_or_mean_x
        cx = torch.zeros_like(mx)
    else:
        mx = sums_or_mean_x / n
    if sums_y is None:  # symmetric: gram is x_s^T x_s, a fresh product updated in place
        sq = torch.diagonal(gram).clone()
        cross = gram.addr_(mx, mx, alpha=-n)
        ss = torch.diagonal(cross).clone()
        if not _acceptable(sq, ss):
            return None
        mean = cx + mx
        return Moments(n, mean, mean, cross, ss, ss)
    assert cy is not None and squares is not None
    my = sums_y / n
    ss_x = squares[0] - n * mx * mx
    ss_y = squares[1] - n * my * my
    if not (_acceptable(squares[0], ss_x) and _acceptable(squares[1], ss_y)):
        return None
    cross = gram.addr_(mx, my, alpha=-n)
    return Moments(n, cx + mx, cy + my, cross, ss_x, ss_y)


def _acceptable(sq: torch.Tensor, ss: torch.Tensor) -> bool:
    """Whether subtracting the mean cancelled at most two bits in every column.

    Non-finite sums (NaN or infinite data, overflow) are accepted here: the caller detects and
    handles them, and a second shift would not change them. (A comparison with NaN is
    false, and ``ss`` is NaN or infinite wherever ``sq`` is infinite; an all-zero column has
    ``sq == ss == 0``.)
    """
    return not bool((sq > _MAX_CANCELLATION * ss).any())


def merge(a: Moments, b: Moments) -> Moments:
    """Combine the moments of two disjoint sets of rows (Chan, Golub and LeVeque, 1979).

    Accurate when the means are small next to the spread of the data, as they are for data
    shifted by a reference row; data far from zero should be shifted first.
    """
    if a.n == 0:
        return b
    if b.n == 0:
        return a
    n = a.n + b.n
    dx = b.mean_x - a.mean_x
    dy = b.mean_y - a.mean_y
    w = a.n * b.n / n
    return Moments(
        n=n,
        mean_x=a.mean_x + dx * (b.n / n),
        mean_y=a.mean_y + dy * (b.n / n),
        cross=a.cross + b.cross + torch.outer(dx, dy) * w,
        ss_x=a.ss_x + b.ss_x + dx * dx * w,
        ss_y=a.ss_y + b.ss_y + dy * dy * w,
    )


def shift_reference(x: torch.Tensor) -> torch.Tensor:
    """A shift for data that arrive in pieces: the first row, with non-finite entries as 0."""
    return torch.nan_to_num(x[0], nan=0.0, posinf=0.0, neginf=0.0)


def chunked_gram(x: torch.Tensor, y: torch.Tensor | None, chunk_size: int) -> Moments:
    """Centred cross-products computed ``chunk_size`` rows at a time, merged with Chan's rule.

    Every chunk is shifted by the same reference (the first row), so the merged means stay
    small and keep their precision whatever the chunk size; the reference is added back at
    the end.
    """
    rx = shift_reference(x)
    ry = None if y is None else shift_reference(y)
    total: Moments | None = None
    for start in range(0, x.shape[0], chunk_size):
        xb = x[start : start + chunk_size] - rx
        yb = None if y is None or ry is None else y[start : start + chunk_size] - ry
        part = centred_gram(xb, yb)
        total = part if total is None else merge(total, part)
    assert total is not None
    mean_x = total.mean_x + rx
    mean_y = mean_x if y is None or ry is None else total.mean_y + ry
    return Moments(total.n, mean_x, mean_y, total.cross, total.ss_x, total.ss_y)


def outer_sqrt(ss_x: torch.Tensor, ss_y: torch.Tensor) -> torch.Tensor:
    """``sqrt(ss_x[i] * ss_y[j])`` for every pair, without under- or overflow in the product.

    The product form makes identical columns give exactly 1; where the product would leave
    the floating range, ``sqrt(ss_x[i]) * sqrt(ss_y[j])`` is used instead.
    """
    info = torch.finfo(ss_x.dtype)
    lo, hi = info.tiny**0.5, info.max**0.5
    in_x = (ss_x > lo) & (ss_x < hi)
    in_y = (ss_y > lo) & (ss_y < hi)
    if bool(in_x.all()) and bool(in_y.all()):
        return torch.sqrt(ss_x[:, None] * ss_y[None, :])
    both = in_x[:, None] & in_y[None, :]
    product = torch.sqrt(
        torch.where(both, ss_x[:, None] * ss_y[None, :], torch.ones_like(both, dtype=ss_x.dtype))
    )
    return torch.where(both, product, torch.sqrt(ss_x)[:, None] * torch.sqrt(ss_y)[None, :])


def correlation(
    cross: torch.Tensor,
    ss_x: torch.Tensor,
    ss_y: torch.Tensor,
    bad_x: torch.Tensor,
    bad_y: torch.Tensor,
    *,
    symmetric: bool,
) -> torch.Tensor:
    """The moments-to-correlation step: ``cross[i, j] / sqrt(ss_x[i] * ss_y[j])``.

    The same edge cases for every caller:

    * entries clipped to [-1, 1];
    * ``sqrt(a * b)`` rather than ``sqrt(a) * sqrt(b)``, so identical columns give exactly 1,
      except where the product would under- or overflow (then the roots are multiplied);
    * rows flagged in ``bad_x`` and columns flagged in ``bad_y`` (constant, NaN or infinite
      features: the caller decides and warns), and features whose sum of squares is not a
      positive finite number, are NaN;
    * ``symmetric=True`` (a matrix with itself) averages ``cross`` with its transpose, so the
      result is exactly symmetric, and sets a unit diagonal on the features that have one.

    Differentiable with respect to ``cross``, ``ss_x`` and ``ss_y``.
    """
    same = ss_y is ss_x and bad_y is bad_x  # a matrix with itself: one set of checks
    bad_x = bad_x | ~((ss_x > 0) & torch.isfinite(ss_x))
    bad_y = bad_x if same else bad_y | ~((ss_y > 0) & torch.isfinite(ss_y))
    one = torch.ones((), dtype=ss_x.dtype, device=ss_x.device)
    safe_x = torch.where(bad_x, one, ss_x)
    safe_y = safe_x if same else torch.where(bad_y, one, ss_y)
    if symmetric:
        cross = (cross + cross.T) / 2
    r = (cross / outer_sqrt(safe_x, safe_y)).clamp(-1.0, 1.0)
    if symmetric and r.requires_grad:
        eye = torch.eye(r.shape[0], dtype=torch.bool, device=r.device)
        r = torch.where(eye, torch.ones_like(r), r)
    elif symmetric:
        r.diagonal().fill_(1.0)
    if bool(bad_x.any()) or (not same and bool(bad_y.any())):
        bad = bad_x[:, None] | bad_y[None, :]
        r = torch.where(bad, torch.full_like(r, float("nan")), r)
    return r
