"""Correlation on pairwise-complete observations (``nan_policy="omit"``), without a loop over pairs.

Entry ``(i, j)`` uses the rows where both ``x[:, i]`` and ``y[:, j]`` are present, as
``pandas.DataFrame.corr`` does. Pearson runs through masked matrix products: with ``V`` the
0/1 validity masks and ``X`` the data with missing entries set to 0, the pair counts are
``Vx^T Vy``, the pair sums ``X^T Vy`` and the cross sums ``X^T Y``. Each column is first
shifted by its own mean so that the sums stay small and the differences
``sum(xy) - sum(x) sum(y) / n`` do not cancel; the pairs where they still cancel (a column
whose level differs where its partner is missing) are centred again on their own rows.
Columns are scaled by a power of two first, so that data at any scale (1e-22 or 1e22 in
float32) keep their products in range. Spearman ranks each pair's values within the
pair's rows (as pandas and ``scipy.stats.spearmanr(..., nan_policy="omit")`` do): one column
at a time, the ranks of that column within every partner's rows come out of a cumulative count
along its sorted order, vectorised over the partners.
"""

from __future__ import annotations

import torch

from corrlib._moments import unit_scaled
from corrlib._warnings import ConstantInputWarning, constant_input_message, warn

# Relative size of a pair's centred sum of squares below which exact constancy is checked.
_RESIDUE = 64.0


def pairwise_complete(
    r: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor | None,
    nan_x: torch.Tensor,
    nan_y: torch.Tensor,
    method: str,
) -> torch.Tensor:
    """Recompute, on pairwise-complete rows, every entry of ``r`` that involves a NaN column."""
    symmetric = y is None
    y_ = x if y is None else y
    pair = _pearson_block if method == "pearson" else _spearman_block
    r = r.clone()
    rows = torch.nonzero(nan_x).squeeze(1)
    constant = False
    if rows.numel():
        every = symmetric and rows.numel() == x.shape[1]
        block, const = pair(x if every else x[:, rows], y_)  # every column: one side
        constant |= const
        r[rows, :] = block.to(r.dtype)
        if symmetric:
            r[:, rows] = block.T.to(r.dtype)
    if not symmetric:
        cols = torch.nonzero(nan_y).squeeze(1)
        if cols.numel():
            block, const = pair(y_[:, cols], x)
            constant |= const
            r[:, cols] = block.T.to(r.dtype)
    if symmetric and rows.numel():
        diag = r[rows, rows]
        r[rows, rows] = torch.where(torch.isnan(diag), diag, torch.ones_like(diag))
    if constant:
        warn(constant_input_message("x or y, on a pair's common rows"), ConstantInputWarning)
    return r


def _pearson_block(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """Pairwise-complete Pearson of every column of ``a`` with every column of ``b``.

    Each pair is centred on its own complete rows: first through the masked products of the
    columns centred on their own means, then, for the pairs where that cancelled more than
    two bits (a column whose level differs where its partner is missing), by a second pass
    over the pair's rows.
    """
    same = b is a
    a = _unit_scaled(a)
    b = a if same else _unit_scaled(b)
    va = ~torch.isnan(a)
    xa = torch.where(va, a - torch.nan_to_num(torch.nanmean(a, dim=0), nan=0.0), 0.0)
    if same:
        vb, xb = va, xa
    else:
        vb = ~torch.isnan(b)
        xb = torch.where(vb, b - torch.nan_to_num(torch.nanmean(b, dim=0), nan=0.0), 0.0)
    # One product gives all six sums: [X, V, X^2]^T [Y, V, Y^2] holds every block needed.
    da, db = a.shape[1], b.shape[1]
    left = torch.cat([xa, va.to(a.dtype), xa * xa], dim=1)
    right = left if same else torch.cat([xb, vb.to(b.dtype), xb * xb], dim=1)
    prod = left.T @ right
    cross = prod[:da, :db]
    sum_b, sum_a = prod[da : 2 * da, :db], prod[:da, db : 2 * db]
    count = prod[da : 2 * da, db : 2 * db]
    sq_b, sq_a = prod[da : 2 * da, 2 * db :], prod[2 * da :, db : 2 * db]
    safe = torch.where(count > 0, count, 1.0)
    cov = cross - sum_a * sum_b / safe
    ss_a = sq_a - sum_a * sum_a / safe
    ss_b = sq_b - sum_b * sum_b / safe
    far = ~((sq_a < 4 * ss_a) & (sq_b < 4 * ss_b)) & (count >= 2)
    for i in torch.nonzero(far.any(dim=1)).squeeze(1).tolist():
        partners = torch.nonzero(far[i]).squeeze(1)
        cov[i, partners], ss_a[i, partners], ss_b[i, partners] = _two_pass(
            xa[:, i : i + 1], xb[:, partners], va[:, i : i + 1] & vb[:, partners]
        )
    r = (cov / torch.sqrt(ss_a * ss_b)).clamp(-1.0, 1.0)
    # A pair whose centred sums of squares are mere rounding residue is checked exactly.
    eps = torch.finfo(a.dtype).eps
    suspect = (ss_a <= _RESIDUE * eps * sq_a) | (ss_b <= _RESIDUE * eps * sq_b)
    suspect &= count >= 2
    constant = torch.zeros_like(suspect)
    for i, j in torch.nonzero(suspect).tolist():
        keep = va[:, i] & vb[:, j]
        pa, pb = a[keep, i], b[keep, j]
        constant[i, j] = bool((pa == pa[0]).all()) or bool((pb == pb[0]).all())
    undefined = (count < 2) | constant | ~(ss_a > 0) | ~(ss_b > 0)
    r = torch.where(undefined, torch.full_like(r, float("nan")), r)
    return r, bool(constant.any())


def _two_pass(
    a: torch.Tensor, b: torch.Tensor, keep: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Co-moment and sums of squares of ``a`` (one column) with each column of ``b``, each
    pair centred on the exact mean of its rows ``keep``."""
    count = keep.sum(dim=0).clamp(min=1)
    pa = torch.where(keep, a, 0.0)
    pb = torch.where(keep, b, 0.0)
    ca = torch.where(keep, pa - pa.sum(dim=0) / count, 0.0)
    cb = torch.where(keep, pb - pb.sum(dim=0) / count, 0.0)
    return (ca * cb).sum(dim=0), (ca * ca).sum(dim=0), (cb * cb).sum(dim=0)


def _unit_scaled(t: torch.Tensor) -> torch.Tensor:
    """Each column divided by a power of two near its largest magnitude (exact; NaN kept),
    so that no product or sum of squares under- or overflows at any scale of the data."""
    return unit_scaled(t, torch.nan_to_num(t.abs(), nan=0.0).amax(dim=0))[0]


def _spearman_block(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """Pairwise-complete Spearman of every column of ``a`` with every column of ``b``.

    Ranks of ``a[:, i]`` within the rows shared with each ``b[:, j]``, and of every ``b[:, j]``
    within the rows shared with ``a[:, i]``, one ``i`` at a time; then Pearson's r of the
    exactly centred ranks.
    """
    va, vb = ~torch.isnan(a), ~torch.isnan(b)
    order_b, start_b, end_b = _sorted_groups(b)
    vb_sorted = torch.gather(vb, 0, order_b).to(torch.float64)
    order_a, start_a, end_a = _sorted_groups(a)
    vb64 = vb.to(torch.float64)
    out = torch.empty(a.shape[1], b.shape[1], dtype=torch.float64, device=a.device)
    constant = torch.zeros(a.shape[1], b.shape[1], dtype=torch.bool, device=a.device)
    for i in range(a.shape[1]):
        oi = order_a[:, i]
        # Ranks of a[:, i] within each partner's rows, in a[:, i]'s sorted order.
        w = vb64[oi] * va[oi, i].to(torch.float64)[:, None]
        ra_sorted = _group_ranks(w, start_a[:, i : i + 1], end_a[:, i : i + 1])
        ra = torch.empty_like(ra_sorted)
        ra[oi] = ra_sorted
        # Ranks of every b[:, j] within a[:, i]'s rows, in b[:, j]'s sorted order.
        wb = va[:, i].to(torch.float64)[order_b] * vb_sorted
        rb_sorted = _group_ranks(wb, start_b, end_b)
        rb = torch.empty_like(rb_sorted).scatter_(0, order_b, rb_sorted)
        mask = (va[:, i : i + 1] & vb).to(torch.float64)
        count = mask.sum(dim=0)
        middle = (count + 1) / 2
        da = (ra - middle) * mask
        db = (rb - middle) * mask
        ss_a = (da * da).sum(dim=0)
        ss_b = (db * db).sum(dim=0)
        r = ((da * db).sum(dim=0) / torch.sqrt(ss_a * ss_b)).clamp(-1.0, 1.0)
        flat = (count >= 2) & ((ss_a == 0) | (ss_b == 0))
        constant[i] = flat
        out[i] = torch.where((count < 2) | flat, torch.full_like(r, float("nan")), r)
    return out, bool(constant.any())


def _sorted_groups(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each column's sort order (NaN last) and, per sorted position, its tie group's bounds.

    ``start[p, j]`` and ``end[p, j]`` are the first and one-past-last sorted positions of the
    run of equal values that position ``p`` of column ``j`` belongs to.
    """
    values, order = torch.sort(t, dim=0, stable=True)
    n = t.shape[0]
    pos = torch.arange(n, device=t.device)[:, None].expand_as(values)
    new = torch.ones_like(values, dtype=torch.bool)
    new[1:] = values[1:] != values[:-1]
    start = torch.where(new, pos, torch.zeros_like(pos)).cummax(dim=0).values
    last = torch.ones_like(new)
    last[:-1] = new[1:]
    end_rev = torch.where(last, pos + 1, torch.full_like(pos, n)).flip(0).cummin(dim=0).values
    return order, start, end_rev.flip(0)


def _group_ranks(w: torch.Tensor, start: torch.Tensor, end: torch.Tensor) -> torch.Tensor:
    """Average ranks among the rows with weight 1 in ``w`` (sorted order, ties as groups).

    A position's rank is the count of kept rows before its tie group plus half the kept rows
    in the group, plus one half: ``before + (in_group + 1) / 2``.
    """
    counts = torch.zeros(w.shape[0] + 1, w.shape[1], dtype=w.dtype, device=w.device)
    counts[1:] = torch.cumsum(w, dim=0)
    before = torch.gather(counts, 0, start.expand_as(w))
    upto = torch.gather(counts, 0, end.expand_as(w))
    return before + (upto - before + 1) / 2
