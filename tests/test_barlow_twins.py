"""Tests of corrlib.losses.BarlowTwinsLoss, against numpy, nn.BatchNorm1d and two gloo ranks."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from corrlib.losses import BarlowTwinsLoss, barlow_twins_loss
from corrlib.losses.barlow_twins import cross_correlation


def numpy_barlow_twins(z1: np.ndarray, z2: np.ndarray, lam: float, eps: float = 1e-5) -> float:
    """The loss written out from its definition, in float64 numpy."""
    n = z1.shape[0]
    a = (z1 - z1.mean(0)) / np.sqrt(z1.var(0) + eps)  # np.var is the biased variance
    b = (z2 - z2.mean(0)) / np.sqrt(z2.var(0) + eps)
    c = a.T @ b / n
    on = np.sum((1 - np.diag(c)) ** 2)
    off = np.sum(c**2) - np.sum(np.diag(c) ** 2)
    return float(on + lam * off)


def _views(n: int = 40, d: int = 6, seed: int = 0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(n, d, generator=g, dtype=dtype) * torch.linspace(0.5, 3, d, dtype=dtype)
    z1 = base + 0.3 * torch.randn(n, d, generator=g, dtype=dtype) + 4.0
    z2 = base @ torch.randn(d, d, generator=g, dtype=dtype) * 0.2 + base - 1.0
    return z1, z2


@pytest.mark.parametrize("lam", [0.0, 5e-3, 0.5])
def test_matches_numpy_formula(lam):
    z1, z2 = _views()
    expected = numpy_barlow_twins(z1.numpy(), z2.numpy(), lam)
    assert barlow_twins_loss(z1, z2, lambda_offdiag=lam).item() == pytest.approx(
        expected, rel=1e-12
    )
    assert BarlowTwinsLoss(lam)(z1, z2).item() == pytest.approx(expected, rel=1e-12)


def test_normalisation_is_batchnorm_in_training_mode():
    z1, z2 = _views(n=25, d=5, seed=1, dtype=torch.float32)
    bn = nn.BatchNorm1d(5, affine=False).train()
    a, b = bn(z1), bn(z2)
    c = a.T @ b / z1.shape[0]
    expected = ((1 - c.diagonal()) ** 2).sum() + 5e-3 * (c.pow(2).sum() - c.diagonal().pow(2).sum())
    torch.testing.assert_close(cross_correlation(z1, z2), c, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(BarlowTwinsLoss()(z1, z2), expected, rtol=1e-5, atol=1e-6)


def test_gradient_matches_numerical_gradient():
    z1, z2 = _views(n=10, d=3, seed=2)
    z1.requires_grad_(True)
    z2.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: barlow_twins_loss(a, b, 0.1), (z1, z2))


def test_identical_views_have_zero_invariance_term_and_loss_is_lower():
    z, _ = _views(n=200, d=4, seed=3)
    other = torch.randn(200, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(9))
    same = barlow_twins_loss(z, z, lambda_offdiag=0.0)
    # c_ii = var / (var + eps) for identical views: the invariance term is ~ (eps/var)^2.
    assert same.item() < 1e-8
    assert barlow_twins_loss(z, other).item() > 1.0


def test_dtype_and_half_precision():
    z1, z2 = _views(n=30, d=4, dtype=torch.float32)
    assert barlow_twins_loss(z1, z2).dtype == torch.float32
    half = barlow_twins_loss(z1.bfloat16(), z2.bfloat16())
    assert half.dtype == torch.bfloat16
    ref = numpy_barlow_twins(z1.bfloat16().double().numpy(), z2.bfloat16().double().numpy(), 5e-3)
    assert half.item() == pytest.approx(ref, rel=2e-2)
    # numpy arrays are accepted as well
    assert barlow_twins_loss(z1.numpy(), z2.numpy()).item() == pytest.approx(
        barlow_twins_loss(z1, z2).item(), rel=1e-6
    )


def test_hostile_inputs():
    z1, z2 = _views(n=8, d=3)
    with pytest.raises(ValueError, match=r"\(8, 3\) and \(7, 3\)"):
        barlow_twins_loss(z1, z2[:7])
    with pytest.raises(ValueError, match="same number of features"):
        barlow_twins_loss(z1, z2[:, :2])
    with pytest.raises(ValueError, match="2-D"):
        barlow_twins_loss(z1[:, 0], z2[:, 0])
    with pytest.raises(ValueError, match="at least 2 samples"):
        barlow_twins_loss(z1[:1], z2[:1])
    with pytest.raises(ValueError, match="lambda_offdiag"):
        BarlowTwinsLoss(lambda_offdiag=-1.0)
    with pytest.raises(TypeError, match="complex"):
        barlow_twins_loss(z1.to(torch.complex128), z2)
    with pytest.raises(RuntimeError, match="process group"):
        barlow_twins_loss(z1, z2, distributed=True)
    # a constant feature is finite thanks to eps (BatchNorm gives it zero output)
    const = z1.clone()
    const[:, 0] = 3.0
    assert torch.isfinite(barlow_twins_loss(const, z2))


# --- two processes on the gloo backend --------------------------------------------------------

WORLD = 2
SHARDS = (7, 13)  # unequal on purpose: the loss combines counts, not shard means


def _problem():
    """Inputs of two views, and a small linear encoder shared by both."""
    g = torch.Generator().manual_seed(123)
    n = sum(SHARDS)
    x1 = torch.randn(n, 5, generator=g, dtype=torch.float64)
    x2 = x1 + 0.5 * torch.randn(n, 5, generator=g, dtype=torch.float64)
    torch.manual_seed(7)
    model = nn.Linear(5, 4).double()
    return x1, x2, model


def _single_process(lam: float):
    x1, x2, model = _problem()
    z1 = model(x1).detach().requires_grad_(True)
    z2 = model(x2).detach().requires_grad_(True)
    loss = barlow_twins_loss(z1, z2, lam)
    loss.backward()
    model.zero_grad()
    barlow_twins_loss(model(x1), model(x2), lam).backward()
    params = [p.grad.clone() for p in model.parameters()]
    return loss.detach(), z1.grad, z2.grad, params


def _naive_loss(z1, z2, lam, eps=1e-5):
    """The copied-around version: statistics synchronised correctly (as SyncBatchNorm does),
    but ``c`` summed with the in-place ``dist.all_reduce``, which autograd does not see."""
    from corrlib.losses.barlow_twins import _all_reduce_sum

    n = torch.tensor([float(z1.shape[0])], dtype=torch.float64)
    dist.all_reduce(n)
    normed = []
    for z in (z1, z2):
        mean = _all_reduce_sum(z.sum(0), None) / n
        var = _all_reduce_sum(((z - mean) ** 2).sum(0), None) / n
        normed.append((z - mean) / torch.sqrt(var + eps))
    c_local = normed[0].T @ normed[1] / n
    total = c_local.detach().clone()
    dist.all_reduce(total)
    c = c_local + (total - c_local.detach())  # the same as dist.all_reduce(c_local) in place
    diag = c.diagonal()
    return ((1 - diag) ** 2).sum() + lam * (c.pow(2).sum() - diag.pow(2).sum())


def _worker(rank: int, init_file: str, out_dir: str, lam: float) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        x1, x2, model = _problem()
        start = sum(SHARDS[:rank])
        rows = slice(start, start + SHARDS[rank])
        z1 = model(x1[rows]).detach().requires_grad_(True)
        z2 = model(x2[rows]).detach().requires_grad_(True)
        loss = BarlowTwinsLoss(lam)(z1, z2)
        loss.backward()
        # Parameter gradients averaged over ranks, as DistributedDataParallel does.
        model.zero_grad()
        BarlowTwinsLoss(lam)(model(x1[rows]), model(x2[rows])).backward()
        params = []
        for p in model.parameters():
            g = p.grad.clone()
            dist.all_reduce(g)
            params.append(g / WORLD)
        model.zero_grad()
        _naive_loss(model(x1[rows]), model(x2[rows]), lam).backward()
        naive = []
        for p in model.parameters():
            g = p.grad.clone()
            dist.all_reduce(g)
            naive.append(g / WORLD)
        torch.save(
            {"loss": loss.detach(), "g1": z1.grad, "g2": z2.grad, "params": params, "naive": naive},
            os.path.join(out_dir, f"rank{rank}.pt"),
        )
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed not available")
def test_two_gloo_ranks_equal_one_process(tmp_path):
    lam = 0.05
    mp.spawn(_worker, args=(str(tmp_path / "store"), str(tmp_path), lam), nprocs=WORLD, join=True)
    loss, g1, g2, params = _single_process(lam)
    results = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]
    for rank, res in enumerate(results):
        # every rank computes the loss of the whole global batch
        torch.testing.assert_close(res["loss"], loss, rtol=1e-12, atol=1e-12)
        # a rank's gradient for its own rows is world_size times the partial derivative ...
        start = sum(SHARDS[:rank])
        rows = slice(start, start + SHARDS[rank])
        torch.testing.assert_close(res["g1"] / WORLD, g1[rows], rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(res["g2"] / WORLD, g2[rows], rtol=1e-10, atol=1e-12)
        # ... so that gradients averaged over ranks (DDP) equal the one-process gradients
        for got, want in zip(res["params"], params, strict=True):
            torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
        # the in-place all_reduce version is off by exactly 1 / world_size: the test can tell
        for got, want in zip(res["naive"], params, strict=True):
            torch.testing.assert_close(got * WORLD, want, rtol=1e-10, atol=1e-12)
        # (the bias gradient is zero: the batch normalisation removes any shift)
        weight_naive, weight_right = res["naive"][0], params[0]
        assert weight_right.abs().max() > 1e-3
        assert not torch.allclose(weight_naive, weight_right, rtol=0.1)
