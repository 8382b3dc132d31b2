"""A differentiable Pearson-correlation loss, ``1 - r``, that stays finite on constant input.

The plain ``1 - r(prediction, target)`` divides by the standard deviation of the prediction.
Its gradient with respect to the prediction therefore grows like ``1 / std(prediction)``, and
an exactly constant prediction (a freshly initialised head, a dead layer) gives ``0 / 0``: NaN
in the loss and in every gradient. Here each variable is normalised as ``nn.BatchNorm1d`` (and
the Barlow Twins loss) does, with ``eps`` added to the biased variance *inside* the square
root, so that

    r_eps = mean(xc * yc) / sqrt((var_x + eps) * (var_y + eps)),     xc = x - mean(x)

is finite with a finite gradient everywhere (0 for a constant prediction). Away from constant
input ``r_eps = r * sqrt(var_x / (var_x + eps) * var_y / (var_y + eps))``: it differs from
Pearson's r by about ``eps / (2 var_x) + eps / (2 var_y)`` relative to r.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import nn

from corrlib._validation import as_data, check_min_samples

__all__ = ["CorrelationLoss", "correlation_loss"]

Reduction = Literal["mean", "sum", "none"]
REDUCTIONS = ("mean", "sum", "none")


def correlation_loss(
    prediction: Any, target: Any, *, eps: float = 1e-5, reduction: Reduction = "mean"
) -> torch.Tensor:
    """``1 - r_eps(prediction, target)`` per column, reduced like a PyTorch loss.

    Parameters
    ----------
    prediction, target : Tensor, shape ``(n,)`` or ``(n, k)``
        ``n >= 2`` samples of one variable (or of ``k`` variables, each scored against the
        matching column of ``target``). Same shape; arrays are accepted.
    eps : float, default 1e-5
        Added to both biased variances before the square root (as in ``nn.BatchNorm1d``),
        ``> 0``. The gradient's norm is then at most ``2 / sqrt(n * eps)`` for each column,
        however small the spread of the prediction.
    reduction : {"mean", "sum", "none"}
        Like ``nn.MSELoss``: average or add the ``k`` column losses, or keep them.

    Returns
    -------
    Tensor
        0-d for ``"mean"`` and ``"sum"``, shape ``(k,)`` (or 0-d for 1-D input) for ``"none"``;
        values in ``[0, 2]``, in the promoted floating dtype of the inputs (computed in float32
        for half-precision input). Differentiable; finite for constant input.

    Raises
    ------
    ValueError
        Shapes that differ or are not 1-D/2-D, fewer than 2 samples, ``eps <= 0`` or an
        unknown ``reduction``.

    Examples
    --------
    >>> import torch
    >>> from corrlib.losses import correlation_loss
    >>> y = torch.tensor([1.0, 2.0, 3.0, 4.0])
    >>> round(correlation_loss(2 * y + 1, y).item(), 5)
    0.0
    >>> correlation_loss(torch.zeros(4), y)  # constant prediction: finite, r_eps = 0
    tensor(1.)
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if not eps > 0:
        raise ValueError(f"eps must be positive, got {eps!r}")
    p, p_dtype = as_data(prediction, "prediction")
    t, t_dtype = as_data(target, "target")
    if p.shape != t.shape or p.ndim not in (1, 2):
        raise ValueError(
            "prediction and target must have the same shape (n,) or (n, k), got "
            f"{tuple(p.shape)} and {tuple(t.shape)}"
        )
    check_min_samples(p, 2, "prediction")
    out_dtype = torch.promote_types(p_dtype, t_dtype)
    work = torch.promote_types(p.dtype, t.dtype)
    p, t = p.to(work), t.to(work)
    pc = p - p.mean(dim=0)
    tc = t - t.mean(dim=0)
    var_p = (pc * pc).mean(dim=0)
    var_t = (tc * tc).mean(dim=0)
    r = (pc * tc).mean(dim=0) / torch.sqrt((var_p + eps) * (var_t + eps))
    loss = 1.0 - r
    if reduction == "mean":
        loss = loss.mean()
    elif reduction == "sum":
        loss = loss.sum()
    return loss.to(out_dtype)


class CorrelationLoss(nn.Module):
    """Module form of :func:`correlation_loss` (``1 - r`` with an eps-guarded normalisation).

    Parameters
    ----------
    eps : float, default 1e-5
        Added to both biased variances inside the square root.
    reduction : {"mean", "sum", "none"}
        How the per-column losses are combined.
    """

    def __init__(self, eps: float = 1e-5, reduction: Reduction = "mean") -> None:
        super().__init__()
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
        if not eps > 0:
            raise ValueError(f"eps must be positive, got {eps!r}")
        self.eps = eps
        self.reduction = reduction

    def extra_repr(self) -> str:
        return f"eps={self.eps}, reduction={self.reduction!r}"

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return correlation_loss(prediction, target, eps=self.eps, reduction=self.reduction)
