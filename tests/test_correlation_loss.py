"""The eps-safe correlation loss: 1 - r away from constant input, finite on constant input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from corrlib.losses import CorrelationLoss, correlation_loss


@pytest.fixture
def pair() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 3, generator=g, dtype=torch.float64)
    y = 0.7 * x + torch.randn(200, 3, generator=g, dtype=torch.float64)
    return x, y


def test_equals_one_minus_pearson_away_from_constant(pair) -> None:
    x, y = pair
    eps = 1e-5
    loss = correlation_loss(x, y, eps=eps, reduction="none")
    r = np.array([stats.pearsonr(x[:, j], y[:, j]).statistic for j in range(3)])
    # within the bias the eps makes (relative to r): eps / (2 var_x) + eps / (2 var_y)
    var_x, var_y = x.var(dim=0, correction=0).numpy(), y.var(dim=0, correction=0).numpy()
    bias = np.abs(r) * (eps / (2 * var_x) + eps / (2 * var_y))
    assert np.all(np.abs(loss.numpy() - (1 - r)) <= 1.01 * bias + 1e-14)
    assert np.all(bias < 1e-4)  # and that bias is small here
    # exact form of the shrinkage
    shrink = np.sqrt(var_x / (var_x + eps) * var_y / (var_y + eps))
    np.testing.assert_allclose(loss.numpy(), 1 - r * shrink, rtol=0, atol=1e-12)


def test_tiny_eps_gives_pearson_to_rounding(pair) -> None:
    x, y = pair
    loss = correlation_loss(x[:, 0], y[:, 0], eps=1e-300)
    assert loss.item() == pytest.approx(1 - stats.pearsonr(x[:, 0], y[:, 0]).statistic, abs=1e-13)


def test_reductions(pair) -> None:
    x, y = pair
    per_column = correlation_loss(x, y, reduction="none")
    assert per_column.shape == (3,)
    assert torch.allclose(correlation_loss(x, y), per_column.mean(), atol=1e-15)
    assert torch.allclose(correlation_loss(x, y, reduction="sum"), per_column.sum(), atol=1e-15)
    assert correlation_loss(x[:, 0], y[:, 0], reduction="none").shape == ()


def test_scale_and_offset_invariant_and_sign(pair) -> None:
    x, y = pair
    base = correlation_loss(x[:, 0], y[:, 0], eps=1e-12)
    assert correlation_loss(3 * x[:, 0] + 5, y[:, 0], eps=1e-12).item() == pytest.approx(
        base.item(), abs=1e-10
    )
    assert correlation_loss(x[:, 0], x[:, 0]).item() == pytest.approx(0.0, abs=1e-4)
    assert correlation_loss(-x[:, 0], x[:, 0]).item() == pytest.approx(2.0, abs=1e-4)


def test_gradcheck(pair) -> None:
    x, y = pair
    xs = x[:30].clone().requires_grad_(True)
    ys = y[:30].clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: correlation_loss(a, b), (xs, ys))
    assert torch.autograd.gradgradcheck(lambda a, b: correlation_loss(a, b), (xs, ys))


def test_constant_prediction_is_finite_with_finite_gradient() -> None:
    y = torch.linspace(-1.0, 1.0, 16)
    for constant in (torch.zeros(16), torch.full((16,), 3.7)):
        p = constant.clone().requires_grad_(True)
        loss = correlation_loss(p, y)
        loss.backward()
        assert torch.isfinite(loss) and loss.item() == pytest.approx(1.0, abs=1e-6)
        assert torch.isfinite(p.grad).all()
    # the unguarded formula gives NaN on the same input: the guard is what makes the difference
    p = torch.zeros(16, requires_grad=True)
    pc, yc = p - p.mean(), y - y.mean()
    naive = 1 - (pc * yc).sum() / torch.sqrt((pc * pc).sum() * (yc * yc).sum())
    naive.backward()
    assert torch.isnan(naive) and torch.isnan(p.grad).all()


def test_gradient_bounded_near_constant() -> None:
    g = torch.Generator().manual_seed(1)
    y = torch.randn(64, generator=g, dtype=torch.float64)
    noise = torch.randn(64, generator=g, dtype=torch.float64)
    eps = 1e-5
    for scale in (1e-2, 1e-4, 1e-8):
        p = (scale * noise).requires_grad_(True)
        correlation_loss(p, y, eps=eps).backward()
        # || d r_eps / d p ||_2 <= 2 / sqrt(n eps), however small the spread of p
        assert 1.0 < p.grad.norm().item() < 2 / np.sqrt(64 * eps)


def test_half_precision_is_computed_in_float32(pair) -> None:
    x, y = pair
    loss = correlation_loss(x[:, 0].half(), y[:, 0].half())
    assert loss.dtype == torch.float16
    ref = correlation_loss(x[:, 0].half().float(), y[:, 0].half().float())
    assert loss.item() == pytest.approx(ref.item(), abs=1e-3)


def test_module_and_arrays(pair) -> None:
    x, y = pair
    module = CorrelationLoss(eps=1e-6, reduction="sum")
    assert "eps=1e-06" in repr(module)
    assert torch.allclose(
        module(x, y), correlation_loss(x.numpy(), y.numpy(), eps=1e-6, reduction="sum")
    )


@pytest.mark.parametrize(
    ("kwargs", "shapes", "match"),
    [
        ({"reduction": "max"}, ((5,), (5,)), "reduction"),
        ({"eps": 0.0}, ((5,), (5,)), "eps"),
        ({}, ((5,), (6,)), "same shape"),
        ({}, ((5, 2, 1), (5, 2, 1)), "same shape"),
        ({}, ((1,), (1,)), "at least 2"),
    ],
)
def test_rejects_bad_input(kwargs, shapes, match) -> None:
    with pytest.raises(ValueError, match=match):
        correlation_loss(torch.ones(shapes[0]), torch.ones(shapes[1]), **kwargs)
    if set(kwargs) & {"reduction", "eps"}:
        with pytest.raises(ValueError, match=match):
            CorrelationLoss(**kwargs)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_stays_on_the_device(pair) -> None:
    x, y = (t.cuda() for t in pair)
    p = x.clone().requires_grad_(True)
    loss = correlation_loss(p, y)
    loss.backward()
    assert loss.device == x.device and p.grad.device == x.device
    assert loss.item() == pytest.approx(correlation_loss(pair[0], pair[1]).item(), abs=1e-12)
