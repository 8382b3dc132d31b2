"""Tests for the DeCov loss (Cogswell et al., 2016) against a direct loop formula."""

import numpy as np
import pytest
import torch

from corrlib.losses import DeCovLoss, decov_loss


def _decov_loop(h: np.ndarray) -> float:
    """The paper's formula written out element by element."""
    n, d = h.shape
    mu = [sum(h[k, i] for k in range(n)) / n for i in range(d)]
    total = 0.0
    for i in range(d):
        for j in range(d):
            c_ij = sum((h[k, i] - mu[i]) * (h[k, j] - mu[j]) for k in range(n)) / n
            if i != j:
                total += c_ij**2
    return 0.5 * total


@pytest.mark.parametrize(("n", "d"), [(2, 2), (7, 3), (20, 5), (3, 9)])
def test_matches_loop_formula(n, d):
    rng = np.random.default_rng(n * 100 + d)
    h = rng.normal(size=(n, d)) @ rng.normal(size=(d, d))  # correlated columns
    expected = _decov_loop(h)
    got = decov_loss(torch.from_numpy(h))
    assert got.dtype == torch.float64 and got.ndim == 0
    assert float(got) == pytest.approx(expected, rel=1e-12, abs=1e-14)
    assert float(got) > 0


def test_equals_frobenius_minus_diagonal_definition():
    h = torch.randn(50, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    c = torch.from_numpy(np.cov(h.numpy(), rowvar=False, bias=True))
    expected = 0.5 * (torch.linalg.matrix_norm(c) ** 2 - torch.diagonal(c).square().sum())
    torch.testing.assert_close(decov_loss(h), expected)


def test_accepts_numpy_and_lists():
    h = [[1.0, 2.0], [2.0, 1.0], [3.0, 5.0]]
    assert float(decov_loss(h)) == pytest.approx(_decov_loop(np.array(h)))
    assert float(decov_loss(np.array(h))) == pytest.approx(_decov_loop(np.array(h)))


def test_zero_only_when_off_diagonal_covariances_vanish():
    # centred, mutually orthogonal columns: every off-diagonal covariance is exactly 0
    h = torch.tensor([[1.0, 1.0, 1.0], [1.0, -1.0, -1.0], [-1.0, 1.0, -1.0], [-1.0, -1.0, 1.0]])
    assert float(decov_loss(h)) == 0.0
    # a single feature has no off-diagonal entry
    assert float(decov_loss(torch.randn(10, 1))) == 0.0
    # an affine shift of a column leaves the loss unchanged; large variances do not count
    assert float(decov_loss(h * torch.tensor([100.0, 1.0, 1.0]) + 5.0)) == 0.0
    # independent samples are not exactly uncorrelated in a finite batch: small but positive
    x = torch.randn(200, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    assert 0 < float(decov_loss(x)) < 0.1


def test_scales_with_fourth_power():
    h = torch.randn(30, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(decov_loss(3 * h), 81 * decov_loss(h))


def test_gradcheck_float64():
    h = torch.randn(6, 4, dtype=torch.float64, requires_grad=True,
                    generator=torch.Generator().manual_seed(3))  # fmt: skip
    assert torch.autograd.gradcheck(decov_loss, (h,))
    assert torch.autograd.gradgradcheck(decov_loss, (h,))


def test_gradient_pushes_correlated_columns_apart():
    base = torch.randn(40, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    h = torch.cat([base, base + 0.1], dim=1).requires_grad_(True)
    before = decov_loss(h).item()
    decov_loss(h).backward()
    with torch.no_grad():
        after = float(decov_loss(h - 0.1 * h.grad))
    assert after < before


def test_module_equals_function_and_applies_weight():
    h = torch.randn(8, 3, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(DeCovLoss()(h), decov_loss(h))
    torch.testing.assert_close(DeCovLoss(weight=0.25)(h), 0.25 * decov_loss(h))
    assert "weight=0.25" in repr(DeCovLoss(0.25))
    with pytest.raises(ValueError, match="weight"):
        DeCovLoss(weight=-1.0)
    with pytest.raises(ValueError, match="weight"):
        DeCovLoss(weight=float("nan"))


def test_dtype_and_half_precision():
    h = torch.randn(16, 3, generator=torch.Generator().manual_seed(6))
    assert decov_loss(h).dtype == torch.float32
    half = decov_loss(h.half())
    assert half.dtype == torch.float16
    assert float(half) == pytest.approx(float(decov_loss(h.half().float())), rel=1e-3)
    assert decov_loss(torch.tensor([[1, 2], [3, 5], [0, 0]])).dtype == torch.get_default_dtype()


@pytest.mark.parametrize(
    ("h", "error", "match"),
    [
        (torch.randn(5), ValueError, r"2-D.*\(5,\)"),
        (torch.randn(4, 3, 2), ValueError, r"2-D.*\(4, 3, 2\)"),
        (torch.randn(1, 3), ValueError, r"at least 2 samples.*\(1, 3\)"),
        (torch.randn(4, 2, dtype=torch.complex64), TypeError, "complex"),
        (np.array([["a", "b"], ["c", "d"]]), TypeError, "numeric"),
    ],
)
def test_hostile_inputs(h, error, match):
    with pytest.raises(error, match=match):
        decov_loss(h)


def test_nan_propagates():
    h = torch.randn(5, 3)
    h[2, 1] = float("nan")
    assert torch.isnan(decov_loss(h))
