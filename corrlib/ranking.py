"""Average ranks in PyTorch, column by column (the ranks behind Spearman's rho)."""

from __future__ import annotations

import torch


def rankdata(x: torch.Tensor) -> torch.Tensor:
    """Rank each column of ``x`` from 1 to n, giving tied values the average of their ranks.

    Equal to ``scipy.stats.rankdata(x, axis=0, method="average")`` for NaN-free data.

    Parameters
    ----------
    x : Tensor, shape ``(n,)`` or ``(n, d)``
        Real data; ranks are taken along the first dimension.

    Returns
    -------
    Tensor of float64 (float32 on devices without float64), same shape as ``x``
        The ranks. They are exact at any sample size: positions are counted in int64 and a
        rank ``k`` or ``k + 0.5`` is exactly representable in float64 far beyond any realistic
        ``n``, so rank sums cannot overflow or round (a known failure of rank code that
        counts in 32-bit integers or float32).
    """
    one_d = x.ndim == 1
    rows = x.reshape(1, -1) if one_d else x.T.contiguous()  # (d, n): sort along contiguous rows
    d, n = rows.shape
    sorted_vals, order = torch.sort(rows, dim=1)
    # Runs of tied values in each sorted row; every row starts a new run, so flattening the
    # rows end to end lets one 1-D pass find all runs without mixing rows.
    new_run = torch.ones_like(sorted_vals, dtype=torch.bool)
    new_run[:, 1:] = sorted_vals[:, 1:] != sorted_vals[:, :-1]
    flat = new_run.reshape(-1)
    starts = flat.nonzero().squeeze(1)
    ends = torch.empty_like(starts)
    ends[:-1] = starts[1:] - 1
    ends[-1] = flat.numel() - 1
    row_start = torch.div(starts, n, rounding_mode="floor") * n
    rank_dtype = torch.float32 if x.device.type == "mps" else torch.float64
    run_rank = (starts + ends - 2 * row_start).to(rank_dtype) / 2 + 1
    run_id = torch.cumsum(flat, dim=0) - 1
    in_sorted_order = run_rank[run_id].view(d, n)
    ranks = torch.empty_like(in_sorted_order).scatter_(1, order, in_sorted_order)
    return ranks.reshape(-1) if one_d else ranks.T
