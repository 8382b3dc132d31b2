"""Average ranks, column by column (the ranks behind Spearman's rho).

Ties get the average of the ranks they span. The computation sorts each column, finds the runs
of tied values in the sorted order and gives every member of a run the run's mid-rank. On the
CPU it runs in NumPy (whose sort is several times faster there than ``torch.sort``); on other
devices in PyTorch. Ranks are piecewise constant, so they carry no gradient.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["rankdata"]


def rankdata(x: torch.Tensor) -> torch.Tensor:
    """Rank each column of ``x`` from 1 to n, giving tied values the average of their ranks.

    Equal to ``scipy.stats.rankdata(x, axis=0, method="average")`` for NaN-free data.

    Parameters
    ----------
    x : Tensor, shape ``(n,)`` or ``(n, d)``
        Real or integer data, any floating dtype (float16 and bfloat16 are ranked in
        float32, exactly); ranks are taken along the first dimension. ``n = 0`` gives an
        empty result, as ``scipy.stats.rankdata([])`` does.

    Returns
    -------
    Tensor of float64 (float32 on devices without float64), same shape as ``x``
        The ranks. They are exact at any sample size: positions are counted in int64 and a
        rank ``k`` or ``k + 0.5`` is exactly representable in float64 far beyond any
        realistic ``n``, so rank sums cannot overflow or round (a known failure of rank
        code that counts in 32-bit integers or float32).
    """
    one_d = x.ndim == 1
    cols = x.reshape(-1, 1) if one_d else x
    if cols.dtype in (torch.float16, torch.bfloat16):
        cols = cols.float()  # exact: float32 holds every half-precision value
    if cols.shape[0] == 0:  # as scipy: no values, no ranks
        rank_dtype = torch.float32 if cols.device.type == "mps" else torch.float64
        ranks = torch.empty(cols.shape, dtype=rank_dtype, device=cols.device)
    elif cols.device.type == "cpu":
        ranks = torch.from_numpy(_rank_columns_numpy(cols.detach().numpy()))
    else:
        ranks = _rank_columns_torch(cols)
    return ranks.reshape(-1) if one_d else ranks


def _rank_columns_numpy(x: np.ndarray) -> np.ndarray:
    rows = np.ascontiguousarray(x.T)  # (d, n): each column's values side by side
    d, n = rows.shape
    order = np.argsort(rows, axis=1)
    ordered = np.take_along_axis(rows, order, axis=1)
    new_run = np.empty((d, n), dtype=bool)
    new_run[:, 0] = True
    np.not_equal(ordered[:, 1:], ordered[:, :-1], out=new_run[:, 1:])
    # Every row starts a run, so the rows can be read end to end as one sequence of runs.
    starts = np.flatnonzero(new_run)
    ends = np.empty_like(starts)  # one past each run's last element
    ends[:-1] = starts[1:]
    ends[-1] = new_run.size
    row_start = (starts // n) * n
    mid_rank = (starts + ends - 1 - 2 * row_start) / 2 + 1
    in_order = np.repeat(mid_rank, ends - starts).reshape(d, n)
    ranks = np.empty_like(in_order)
    np.put_along_axis(ranks, order, in_order, axis=1)
    return ranks.T


def _rank_columns_torch(x: torch.Tensor) -> torch.Tensor:
    rows = x.T.contiguous()
    d, n = rows.shape
    ordered, order = torch.sort(rows, dim=1)
    new_run = torch.ones_like(ordered, dtype=torch.bool)
    new_run[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    flat = new_run.reshape(-1)
    starts = flat.nonzero().squeeze(1)
    ends = torch.empty_like(starts)
    ends[:-1] = starts[1:]
    ends[-1] = flat.numel()
    row_start = torch.div(starts, n, rounding_mode="floor") * n
    rank_dtype = torch.float32 if x.device.type == "mps" else torch.float64
    mid_rank = (starts + ends - 1 - 2 * row_start).to(rank_dtype) / 2 + 1
    in_order = torch.repeat_interleave(mid_rank, ends - starts).view(d, n)
    return torch.empty_like(in_order).scatter_(1, order, in_order).T
