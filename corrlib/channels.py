"""Correlation between the channels of convolutional feature maps, and the style Gram matrix.

Both functions look at how the ``C`` channels of a feature map ``(N, C, H, W)`` co-vary, and
both are built from the product ``F F^T`` of the channels-by-positions matrix ``F``. They
answer different questions:

* :func:`channel_correlation` treats every (sample, position) pair as one observation of the
  ``C`` channels, **centres** each channel and **normalises** it to unit variance: the result
  is a Pearson correlation matrix ``(C, C)`` in [-1, 1] with a unit diagonal. It measures
  redundancy between channels, independent of their scales and offsets.
* :func:`gram_matrix` is the Gram matrix of Gatys et al.'s style transfer: per sample, the
  **raw second moments** ``F F^T / (C H W)`` of the uncentred activations, ``(N, C, C)``. It
  depends on the channels' means and scales (a channel that is always large dominates), which
  is what a style loss wants to match, but it is not a correlation.
"""

from __future__ import annotations

from typing import Any

import torch

from corrlib._validation import as_data, check_min_samples
from corrlib.correlation import corr_matrix

__all__ = ["channel_correlation", "gram_matrix"]


def _as_feature_maps(x: Any, name: str = "feature_maps") -> tuple[torch.Tensor, torch.dtype]:
    """The maps in their compute dtype (float32 for half precision), and the result dtype."""
    t, out_dtype = as_data(x, name)
    if t.ndim < 2:
        raise ValueError(
            f"{name} must be (N, C, H, W) (or (N, C, ...)), got shape {tuple(t.shape)}"
        )
    return t, out_dtype


def channel_correlation(feature_maps: Any) -> torch.Tensor:
    """Pearson correlation between the channels of feature maps.

    Every sample and every spatial position is one observation: the maps are reshaped to
    ``(N * H * W, C)`` and passed to :func:`corrlib.corr_matrix`, i.e. the centred Gram
    matrix of the channels divided by the product of their standard deviations.

    Parameters
    ----------
    feature_maps : tensor or array, shape ``(N, C, H, W)``
        Activations of a convolutional layer; any number of trailing spatial dimensions
        ``(N, C, ...)`` is accepted, and ``(N, C)`` is an ordinary data matrix.

    Returns
    -------
    Tensor, shape ``(C, C)``
        Symmetric, unit diagonal, entries in [-1, 1]. A channel that is exactly constant (a
        "dead" ReLU channel that is 0 everywhere) has NaN in its row and column and raises a
        :class:`~corrlib.ConstantInputWarning`. Differentiable.

    Raises
    ------
    ValueError
        Fewer than 2 dimensions, or fewer than 2 observations.

    Examples
    --------
    >>> import torch, corrlib
    >>> maps = torch.randn(4, 3, 5, 5, generator=torch.Generator().manual_seed(0))
    >>> tuple(corrlib.channel_correlation(maps).shape)
    (3, 3)
    """
    t, out_dtype = _as_feature_maps(feature_maps)
    n_channels = t.shape[1]
    observations = t.movedim(1, -1).reshape(-1, n_channels)
    check_min_samples(observations, 2, "feature_maps (samples x positions)")
    return corr_matrix(observations).to(out_dtype)


def gram_matrix(feature_maps: Any, *, normalize: bool = True) -> torch.Tensor:
    """Per-sample Gram matrix of feature maps, as used for style transfer (Gatys et al.).

    With ``F`` the ``(C, H*W)`` matrix of one sample's channels, the Gram matrix is
    ``G = F F^T`` (uncentred: raw second moments, not a correlation; see the module notes).

    Parameters
    ----------
    feature_maps : tensor or array, shape ``(N, C, H, W)`` (or ``(N, C, ...)``)
        Activations of a convolutional layer.
    normalize : bool
        Divide by ``C * H * W`` (the number of entries of one sample's maps), so that the
        scale does not depend on the layer's size.

    Returns
    -------
    Tensor, shape ``(N, C, C)``
        Symmetric positive semi-definite for each sample, in the maps' dtype (float16 and
        bfloat16 are computed in float32, so the sums cannot overflow before the
        normalisation). Differentiable.

    Examples
    --------
    >>> import torch, corrlib
    >>> maps = torch.ones(2, 3, 4, 4)
    >>> corrlib.gram_matrix(maps)[0, 0, 0].item()  # 16 positions * 1 / (3 * 16)
    0.3333333432674408
    """
    t, out_dtype = _as_feature_maps(feature_maps)
    n, c = t.shape[0], t.shape[1]
    f = t.reshape(n, c, -1)
    gram = f @ f.transpose(1, 2)
    if normalize:
        gram = gram / (c * f.shape[2])
    return gram.to(out_dtype)
