"""Centred co-moments: the numerically stable kernel behind every Pearson correlation.

The one-pass formula ``sum(x*y) - n*mean(x)*mean(y)`` loses all precision when the data sit
far from zero (in float32, an offset of 1e4 on unit-variance data leaves about one correct
digit). corrlib therefore centres before multiplying: a two-pass computation for data held in
memory, and Chan et al.'s pairwise merge of centred chunks for data that arrive in pieces. Both
are exact in exact arithmetic and accurate to the data's own precision in floats. The one
exception is a matrix whose columns are already nearly centred (mean within about 1.7 standard
deviations of zero): there the raw product loses at most two bits to the subtraction of the
mean, and saves the centring pass (see :func:`_gram_if_well_centred`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# Rows per block when centring on the CPU: a block fits in cache, so centring costs little
# beyond the matrix product itself (measured in ``benchmarks/bench_corr.py``).
_CPU_BLOCK_ROWS = 4096

# Largest cancellation factor sum(x^2) / sum((x - mean)^2) for which the raw product is used.
_MAX_CANCELLATION = 4.0
# Rows used to screen for a large offset before spending a matrix product on the raw data.
_SCREEN_ROWS = 1024


@dataclass
class Moments:
    """Count, means and centred cross-products of two blocks of columns.

    ``cross`` is ``sum((x - mean_x)^T (y - mean_y))`` with shape ``(d_x, d_y)``;
    ``ss_x`` and ``ss_y`` are the centred sums of squares of each column.
    """

    n: int
    mean_x: torch.Tensor
    mean_y: torch.Tensor
    cross: torch.Tensor
    ss_x: torch.Tensor
    ss_y: torch.Tensor


def centred_gram(x: torch.Tensor, y: torch.Tensor | None = None) -> Moments:
    """Centred cross-products of ``x`` and ``y`` (``y=None`` means ``x`` itself).

    Two-pass (centre, then multiply), except for ``x`` alone when its columns sit close enough
    to zero that the product of the raw data loses nothing that matters (see
    :func:`_gram_if_well_centred`).
    """
    n = x.shape[0]
    mean_x = x.mean(dim=0)
    if y is None:
        quick = _gram_if_well_centred(x, mean_x)
        if quick is not None:
            return quick
    mean_y = mean_x if y is None else y.mean(dim=0)
    needs_grad = x.requires_grad or (y is not None and y.requires_grad)
    blocked = x.device.type == "cpu" and not needs_grad
    if blocked and n > _CPU_BLOCK_ROWS:
        cross = _blocked_cross(x, mean_x, y, mean_y)
    else:
        xc = x - mean_x
        yc = xc if y is None else y - mean_y
        cross = xc.T @ yc
    if y is None:
        ss = torch.diagonal(cross).clone()
        return Moments(n, mean_x, mean_x, cross, ss, ss)
    ss_x = ((x - mean_x) ** 2).sum(dim=0)
    ss_y = ((y - mean_y) ** 2).sum(dim=0)
    return Moments(n, mean_x, mean_y, cross, ss_x, ss_y)


def _gram_if_well_centred(x: torch.Tensor, mean: torch.Tensor) -> Moments | None:
    """``x^T x - n m m^T`` when that is as accurate as centring first, else ``None``.

    Subtracting ``n m m^T`` cancels what the mean contributed to ``x^T x``. For column ``i``
    the cancellation factor is ``kappa_i = sum(x_i^2) / sum((x_i - m_i)^2)``; the result loses
    about ``log2(kappa)`` bits. With every ``kappa_i <= 4`` (at most two bits, e.g. data whose
    mean is within 1.7 standard deviations of zero) one matrix product on the raw data
    suffices, and no centred copy is made. Data with a large offset fail the test and are
    centred first; a small sample of rows screens them out before the product is spent.
    """
    n = x.shape[0]
    head = x[:_SCREEN_ROWS]
    head_mean = head.mean(dim=0)
    head_sq = (head * head).sum(dim=0)
    head_ss = ((head - head_mean) ** 2).sum(dim=0)
    if not bool((head_sq <= 2 * _MAX_CANCELLATION * head_ss).all()):
        return None
    gram = x.T @ x
    sq = torch.diagonal(gram)
    ss = sq - n * mean * mean
    if not bool((sq <= _MAX_CANCELLATION * ss).all()):
        return None
    cross = gram - n * torch.outer(mean, mean)
    ss = torch.diagonal(cross).clone()
    return Moments(n, mean, mean, cross, ss, ss)


def _blocked_cross(
    x: torch.Tensor, mean_x: torch.Tensor, y: torch.Tensor | None, mean_y: torch.Tensor
) -> torch.Tensor:
    """``(x - mean_x)^T (y - mean_y)`` accumulated block by block (no full centred copy)."""
    d_x = x.shape[1]
    d_y = d_x if y is None else y.shape[1]
    cross = torch.zeros(d_x, d_y, dtype=x.dtype, device=x.device)
    buf_x = torch.empty(_CPU_BLOCK_ROWS, d_x, dtype=x.dtype, device=x.device)
    buf_y = buf_x if y is None else torch.empty(_CPU_BLOCK_ROWS, d_y, dtype=x.dtype)
    for start in range(0, x.shape[0], _CPU_BLOCK_ROWS):
        bx = x[start : start + _CPU_BLOCK_ROWS]
        cx = torch.sub(bx, mean_x, out=buf_x[: bx.shape[0]])
        if y is None:
            cy = cx
        else:
            cy = torch.sub(y[start : start + _CPU_BLOCK_ROWS], mean_y, out=buf_y[: bx.shape[0]])
        cross.addmm_(cx.T, cy)
    return cross


def merge(a: Moments, b: Moments) -> Moments:
    """Combine the moments of two disjoint sets of rows (Chan, Golub and LeVeque, 1979)."""
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


def chunked_gram(x: torch.Tensor, y: torch.Tensor | None, chunk_size: int) -> Moments:
    """Centred cross-products computed ``chunk_size`` rows at a time, merged with Chan's rule."""
    total: Moments | None = None
    for start in range(0, x.shape[0], chunk_size):
        xb = x[start : start + chunk_size]
        yb = None if y is None else y[start : start + chunk_size]
        part = centred_gram(xb, yb)
        total = part if total is None else merge(total, part)
    assert total is not None
    return total
