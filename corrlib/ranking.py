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
        The ranks. They are exact at any sample size: positions are counted in int64 and
        a rank ``k`` or ``k + 0.5`` is exactly representable in float64 far beyond any
        realistic ``n``, so rank sums cannot overflow or round (a known failure of rank
        code that counts in 32-bit integers or float32).
    """
    one_d = x.ndim == 1
    cols = x.unsqueeze(1) if one_d else x
    n = cols.shape[0]
    sorted_vals, order = torch.sort(cols, dim=0, stable=True)
    pos = torch.arange(n, device=x.device).unsqueeze(1).expand_as(cols)
    new_run = torch.ones_like(sorted_vals, dtype=torch.bool)
    new_run[1:] = sorted_vals[1:] != sorted_vals[:-1]
    # First and last sorted position of the run of ties each element belongs to.
    first = torch.where(new_run, pos, torch.zeros_like(pos)).cummax(dim=0).values
    run_end = torch.ones_like(new_run)
    run_end[:-1] = new_run[1:]
    last_rev = torch.where(run_end, pos, torch.full_like(pos, n)).flip(0).cummin(dim=0).values
    last = last_rev.flip(0)
    rank_dtype = torch.float32 if x.device.type == "mps" else torch.float64
    avg = (first + last).to(rank_dtype) / 2 + 1
    ranks = torch.empty_like(avg).scatter_(0, order, avg)
    return ranks.squeeze(1) if one_d else ranks
