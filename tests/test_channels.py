"""Tests of corrlib.channel_correlation and corrlib.gram_matrix."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import corrlib


def _maps(seed: int = 0, shape: tuple[int, ...] = (6, 4, 5, 3)) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=g, dtype=torch.float64)
    x[:, 1] += 0.8 * x[:, 0] + 5.0  # correlated with channel 0, with an offset
    return x


def test_channel_correlation_matches_numpy() -> None:
    x = _maps()
    got = corrlib.channel_correlation(x)
    n, c, h, w = x.shape
    obs = x.numpy().transpose(0, 2, 3, 1).reshape(n * h * w, c)  # observations x channels
    expected = np.corrcoef(obs, rowvar=False)
    assert got.shape == (c, c)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12, atol=1e-12)
    assert float(got[0, 1]) > 0.5


def test_channel_correlation_is_centred_and_scale_free() -> None:
    x = _maps(1)
    shifted = x * torch.tensor([2.0, 0.1, 7.0, 1.0], dtype=torch.float64)[None, :, None, None]
    shifted = shifted + 100.0
    torch.testing.assert_close(corrlib.channel_correlation(shifted), corrlib.channel_correlation(x))


def test_channel_correlation_other_layouts() -> None:
    x = _maps(2, (5, 3, 7))  # (N, C, L): 1-D feature maps
    obs = x.numpy().transpose(0, 2, 1).reshape(-1, 3)
    np.testing.assert_allclose(
        corrlib.channel_correlation(x).numpy(), np.corrcoef(obs, rowvar=False), rtol=1e-12
    )
    flat = torch.randn(20, 4, dtype=torch.float64)
    torch.testing.assert_close(corrlib.channel_correlation(flat), corrlib.corr_matrix(flat))


def test_dead_channel_is_nan_with_warning() -> None:
    x = torch.relu(_maps(3))
    x[:, 2] = 0.0
    with pytest.warns(corrlib.ConstantInputWarning):
        r = corrlib.channel_correlation(x)
    assert torch.isnan(r[2]).all() and torch.isnan(r[:, 2]).all()
    assert not torch.isnan(r[0, 1])


def test_channel_correlation_errors() -> None:
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        corrlib.channel_correlation(torch.randn(5))
    with pytest.raises(ValueError, match="at least 2"):
        corrlib.channel_correlation(torch.randn(1, 3, 1, 1))
    with pytest.raises(TypeError, match="complex"):
        corrlib.channel_correlation(np.ones((2, 2, 2, 2), dtype=complex))


def test_gram_matrix_matches_numpy() -> None:
    x = _maps(4)
    n, c, h, w = x.shape
    f = x.numpy().reshape(n, c, h * w)
    expected = np.einsum("nij,nkj->nik", f, f)
    got = corrlib.gram_matrix(x, normalize=False)
    assert got.shape == (n, c, c)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(corrlib.gram_matrix(x).numpy(), expected / (c * h * w), rtol=1e-12)


def test_gram_matrix_is_uncentred_unlike_correlation() -> None:
    # A constant offset changes the Gram matrix but not the correlation.
    x = _maps(5)
    g0, g1 = corrlib.gram_matrix(x), corrlib.gram_matrix(x + 3.0)
    assert not torch.allclose(g0, g1)
    torch.testing.assert_close(corrlib.channel_correlation(x + 3.0), corrlib.channel_correlation(x))
    # And each sample's Gram matrix is positive semi-definite.
    eig = torch.linalg.eigvalsh(g0)
    assert float(eig.min()) > -1e-10


def test_gram_matrix_gradient_and_dtype() -> None:
    x = torch.randn(2, 3, 2, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: corrlib.gram_matrix(t), (x,))
    assert corrlib.gram_matrix(torch.ones(1, 2, 2, 2, dtype=torch.int64)).dtype == (
        torch.get_default_dtype()
    )
    with pytest.raises(ValueError, match="got shape"):
        corrlib.gram_matrix(torch.randn(4))
