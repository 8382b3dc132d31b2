"""The Barlow Twins loss: drive the cross-correlation of two views' embeddings to the identity.

Two augmented views of the same batch go through one network, giving embeddings ``z1`` and
``z2`` of shape ``(N, d)``. Each is normalised over the batch exactly as
``nn.BatchNorm1d(d, affine=False)`` does in training mode (mean and *biased* variance over the
batch, ``eps`` added to the variance), and their cross-correlation matrix is

    c = z1n.T @ z2n / N        (d, d)

The loss is ``sum_i (1 - c_ii)^2 + lambda_offdiag * sum_{i != j} c_ij^2``: the diagonal term
makes each embedding feature invariant to the augmentation, the off-diagonal term removes
redundancy (correlation) between features (Zbontar et al., 2021).

Distributed training
--------------------
When ``torch.distributed`` is initialised with more than one process, each rank holds its own
share of the batch. The batch means, variances and ``c`` are then sums over *all* ranks,
combined with an autograd-aware all-reduce (the semantics of
``torch.distributed.nn.functional.all_reduce``, written out because that function is deprecated
in recent PyTorch), so that every rank computes the loss of the whole global batch (shards may differ in size).

Gradients: the backward of that ``all_reduce`` sums the incoming gradients over ranks, so the
gradient a rank obtains for its own embeddings is ``world_size`` times the partial derivative
of the global loss. ``DistributedDataParallel`` then divides the parameter gradients summed
over ranks by ``world_size``; the two factors cancel, and the averaged gradients equal those
of one process that sees the whole batch. The copies of this loss that combine ``c`` with the
in-place ``torch.distributed.all_reduce`` (which autograd does not see) get the
``world_size`` factor wrong: their gradients come out divided by ``world_size``.

References
----------
Zbontar, J., Jing, L., Misra, I., LeCun, Y., & Deny, S. (2021). Barlow Twins: Self-supervised
learning via redundancy reduction. *ICML*.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from corrlib._validation import as_data, check_ndim, check_same_length

__all__ = ["BarlowTwinsLoss", "barlow_twins_loss", "cross_correlation"]


def barlow_twins_loss(
    z1: Any,
    z2: Any,
    lambda_offdiag: float = 5e-3,
    *,
    eps: float = 1e-5,
    distributed: bool | None = None,
    group: Any = None,
) -> torch.Tensor:
    """Barlow Twins loss of two views' embeddings (see the module docstring).

    Parameters
    ----------
    z1, z2 : Tensor, shape (N, d)
        Embeddings of the two views of the same ``N`` samples (this rank's share under
        ``torch.distributed``). Same shape, floating dtype; arrays are accepted.
    lambda_offdiag : float, default 5e-3
        Weight of the redundancy-reduction (off-diagonal) term, ``>= 0``. The paper's value
        is 5e-3 for 8192-dimensional embeddings.
    eps : float, default 1e-5
        Added to the batch variance, as in ``nn.BatchNorm1d``.
    distributed : bool or None, default None
        Combine the statistics over the ranks of ``group``. ``None``: whenever
        ``torch.distributed`` is available, initialised and ``group`` has more than one rank.
    group : ProcessGroup, optional
        The process group (default: the whole world).

    Returns
    -------
    Tensor, 0-d
        The loss, in the embeddings' dtype (computed in float32 for half-precision inputs), identical on
        every rank.

    Raises
    ------
    ValueError
        If the inputs are not 2-D, their shapes differ, the (global) batch has fewer than 2
        samples, or ``lambda_offdiag`` or ``eps`` is negative.
    """
    a, b, out_dtype = _views(z1, z2)
    if lambda_offdiag < 0:
        raise ValueError(f"lambda_offdiag must be >= 0, got {lambda_offdiag}")
    if eps < 0:
        raise ValueError(f"eps must be >= 0, got {eps}")
    if distributed is None:
        distributed = _world_size(group) > 1
    elif distributed and not _is_initialized():
        raise RuntimeError("distributed=True needs an initialised torch.distributed process group")
    reduce = _all_reduce_sum if distributed else _identity

    n_local = a.shape[0]
    n = n_local
    if distributed:
        count = torch.tensor([float(n_local)], dtype=torch.float64, device=a.device)
        torch.distributed.all_reduce(count, group=group)  # a constant: no gradient needed
        n = int(count.item())
    if n < 2:
        raise ValueError(
            f"the Barlow Twins loss needs a batch of at least 2 samples, got {n} "
            f"(local shapes {tuple(a.shape)} and {tuple(b.shape)})"
        )

    d = a.shape[1]
    # Two passes, as BatchNorm: the means first, then the centred sums of squares.
    means = reduce(torch.cat([a.sum(dim=0), b.sum(dim=0)]), group) / n
    ac = a - means[:d]
    bc = b - means[d:]
    var = reduce(torch.cat([(ac * ac).sum(dim=0), (bc * bc).sum(dim=0)]), group) / n
    inv_std = torch.rsqrt(var + eps)
    an = ac * inv_std[:d]
    bn = bc * inv_std[d:]
    c = reduce(an.T @ bn, group) / n

    diag = torch.diagonal(c)
    on_diag = (1 - diag).pow(2).sum()
    off_diag = c.pow(2).sum() - diag.pow(2).sum()
    loss = on_diag + lambda_offdiag * off_diag
    return loss.to(out_dtype)


def cross_correlation(z1: Any, z2: Any, *, eps: float = 1e-5) -> torch.Tensor:
    """The matrix ``c`` of the Barlow Twins loss (one process), for plots and diagnostics.

    Each view is normalised over the batch like ``nn.BatchNorm1d(affine=False)`` in training
    mode; ``c[i, j]`` is then the correlation between feature ``i`` of ``z1`` and feature ``j``
    of ``z2`` (up to ``eps``).

    Returns
    -------
    Tensor, shape (d, d)
        In the promoted dtype of ``z1`` and ``z2`` (float16 and bfloat16 computed in float32,
        integers in float64 with a result in torch's default float dtype).
    """
    a, b, out_dtype = _views(z1, z2)
    n = a.shape[0]
    an = (a - a.mean(0)) / torch.sqrt(a.var(0, unbiased=False) + eps)
    bn = (b - b.mean(0)) / torch.sqrt(b.var(0, unbiased=False) + eps)
    return (an.T @ bn / n).to(out_dtype)


def _views(z1: Any, z2: Any) -> tuple[torch.Tensor, torch.Tensor, torch.dtype]:
    """The two views, checked, in their common compute dtype; and the result dtype."""
    a, a_dtype = as_data(z1, "z1")
    b, b_dtype = as_data(z2, "z2")
    check_ndim(a, 2, "z1")
    check_ndim(b, 2, "z2")
    check_same_length(a, b, "z1 and z2")
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"z1 and z2 must have the same number of features, "
            f"got shapes {tuple(a.shape)} and {tuple(b.shape)}"
        )
    work = torch.promote_types(a.dtype, b.dtype)
    return a.to(work), b.to(work), torch.promote_types(a_dtype, b_dtype)


class BarlowTwinsLoss(nn.Module):
    """Module form of :func:`barlow_twins_loss`, called as ``loss(z1, z2)``.

    Parameters
    ----------
    lambda_offdiag : float, default 5e-3
        Weight of the off-diagonal (redundancy-reduction) term.
    eps : float, default 1e-5
        Added to the batch variance.
    distributed : bool or None, default None
        See :func:`barlow_twins_loss`; ``None`` combines over ranks whenever
        ``torch.distributed`` is initialised with more than one process.
    group : ProcessGroup, optional
        The process group to combine over.

    Examples
    --------
    >>> import torch
    >>> from corrlib.losses import BarlowTwinsLoss
    >>> z = torch.randn(64, 8)
    >>> loss = BarlowTwinsLoss(lambda_offdiag=5e-3)
    >>> bool(loss(z, z) < loss(z, torch.randn(64, 8)))
    True
    """

    def __init__(
        self,
        lambda_offdiag: float = 5e-3,
        *,
        eps: float = 1e-5,
        distributed: bool | None = None,
        group: Any = None,
    ) -> None:
        super().__init__()
        if lambda_offdiag < 0:
            raise ValueError(f"lambda_offdiag must be >= 0, got {lambda_offdiag}")
        if eps < 0:
            raise ValueError(f"eps must be >= 0, got {eps}")
        self.lambda_offdiag = float(lambda_offdiag)
        self.eps = float(eps)
        self.distributed = distributed
        self.group = group

    def forward(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        return barlow_twins_loss(
            z1,
            z2,
            self.lambda_offdiag,
            eps=self.eps,
            distributed=self.distributed,
            group=self.group,
        )

    def extra_repr(self) -> str:
        return f"lambda_offdiag={self.lambda_offdiag}, eps={self.eps}"


def _is_initialized() -> bool:
    dist = torch.distributed
    return dist.is_available() and dist.is_initialized()


def _world_size(group: Any) -> int:
    if not _is_initialized():
        return 1
    return torch.distributed.get_world_size(group)


def _identity(t: torch.Tensor, group: Any) -> torch.Tensor:
    return t


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks whose backward also sums over ranks (the gradient of a sum of copies).

    This is what ``torch.distributed.nn.functional.all_reduce`` does for ``SUM``; that
    function is deprecated in recent PyTorch releases, so the two lines are written out here.
    """

    @staticmethod
    def forward(ctx: Any, t: torch.Tensor, group: Any) -> torch.Tensor:
        ctx.group = group
        out = t.clone(memory_format=torch.contiguous_format)
        torch.distributed.all_reduce(out, op=torch.distributed.ReduceOp.SUM, group=group)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        out = grad.clone(memory_format=torch.contiguous_format)
        torch.distributed.all_reduce(out, op=torch.distributed.ReduceOp.SUM, group=ctx.group)
        return out, None


def _all_reduce_sum(t: torch.Tensor, group: Any) -> torch.Tensor:
    """Sum ``t`` over the ranks of ``group``; its backward sums the gradients over ranks."""
    return _AllReduceSum.apply(t, group)
