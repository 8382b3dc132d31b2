"""DeCov: a penalty on the covariance between hidden units (Cogswell et al., 2016)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from corrlib._validation import as_data, check_min_samples, check_ndim

__all__ = ["DeCovLoss", "decov_loss"]


def decov_loss(h: Any) -> torch.Tensor:
    r"""DeCov loss of a batch of activations.

    With the batch covariance (centred, divided by ``N`` as in the paper)

    .. math:: C_{ij} = \frac{1}{N} \sum_n (h_i^n - \mu_i)(h_j^n - \mu_j),

    the loss is :math:`\tfrac12 (\lVert C \rVert_F^2 - \lVert \operatorname{diag}(C) \rVert_2^2)`,
    half the sum of the squared off-diagonal covariances. It is differentiable in ``h``.

    Parameters
    ----------
    h : tensor or array, shape (n_samples, n_features)
        Activations of one layer for a batch (flatten convolutional maps first). At least two
        samples.

    Returns
    -------
    Tensor
        0-d tensor on ``h``'s device, in ``h``'s dtype (half precision is computed in float32).

    Notes
    -----
    The loss is 0 exactly when every off-diagonal covariance of the batch vanishes, for example
    for one feature or for centred, mutually orthogonal columns. Independent features give a
    small positive value on a finite batch, because their sample covariances are not exactly
    zero. The loss scales with the fourth power of the activations' scale.

    References
    ----------
    M. Cogswell, F. Ahmed, R. Girshick, L. Zitnick, D. Batra, "Reducing Overfitting in Deep
    Networks by Decorrelating Representations", ICLR 2016.
    """
    t, out_dtype = as_data(h, "h")
    check_ndim(t, 2, "h")
    check_min_samples(t, 2, "h")
    centred = t - t.mean(dim=0, keepdim=True)
    cov = centred.T @ centred / t.shape[0]
    # Summing the off-diagonal squares directly avoids the cancellation of the difference.
    off_diagonal = cov - torch.diag(torch.diagonal(cov))
    loss = 0.5 * off_diagonal.square().sum()
    return loss.to(out_dtype)


class DeCovLoss(nn.Module):
    """DeCov loss as a module: ``DeCovLoss()(h) == decov_loss(h)``.

    Parameters
    ----------
    weight : float
        Factor the loss is multiplied by (the penalty strength, ``lambda`` in the paper).

    See Also
    --------
    decov_loss : the definition and its notes.
    """

    def __init__(self, weight: float = 1.0) -> None:
        super().__init__()
        if not float(weight) >= 0.0:
            raise ValueError(f"weight must be a non-negative number, got {weight!r}")
        self.weight = float(weight)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.weight * decov_loss(h)

    def extra_repr(self) -> str:
        return f"weight={self.weight}"
