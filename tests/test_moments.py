"""The private kernels behind every Pearson correlation (corrlib._moments, corrlib._cpu_gram)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from corrlib import _cpu_gram, _moments


@pytest.mark.parametrize("d", [1, 63, 64, 127, 128, 200, 256, 513])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_symmetric_product_equals_the_full_product(d: int, dtype: torch.dtype) -> None:
    x = torch.randn(3000, d, dtype=dtype, generator=torch.Generator().manual_seed(d))
    g = _cpu_gram.symmetric_product(x)
    assert g.shape == (d, d) and g.dtype == dtype
    torch.testing.assert_close(g, x.T @ x, rtol=1e-6, atol=1e-3 if dtype == torch.float32 else 0)
    above = torch.triu(torch.ones(d, d, dtype=torch.bool), diagonal=_cpu_gram._SYMMETRIC_BLOCK)
    assert torch.equal(g[above], g.T[above])  # off-diagonal blocks mirror each other exactly


def test_symmetric_product_reuses_its_buffers_without_mixing_results() -> None:
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(4000, 300, generator=gen), torch.randn(1000, 300, generator=gen)
    first = _cpu_gram.symmetric_product(x)
    second = _cpu_gram.symmetric_product(y)  # the same plan, products overwritten (beta=0)
    torch.testing.assert_close(first, x.T @ x, rtol=1e-5, atol=1e-3)
    torch.testing.assert_close(second, y.T @ y, rtol=1e-5, atol=1e-3)


def test_symmetric_product_uses_one_product_for_narrow_or_integer_data() -> None:
    assert _cpu_gram.symmetric_blocks(torch.zeros(10, 100)) is None
    assert _cpu_gram.symmetric_blocks(torch.zeros(10, 256, dtype=torch.float16)) is None
    assert _cpu_gram.symmetric_blocks(torch.zeros(10, 256)) is not None


def test_column_sums_match_torch_sum_for_narrow_and_wide_data() -> None:
    for d in (2, 31, 32, 256):
        x = torch.randn(10_000, d, generator=torch.Generator().manual_seed(d))
        torch.testing.assert_close(_cpu_gram.column_sums(x), x.sum(dim=0), rtol=1e-5, atol=1e-3)


def test_tree_summed_dot_is_as_exact_as_a_float64_product() -> None:
    """Two million shifted float32 values: a BLAS dot product drifts, the tree does not."""
    rng = np.random.default_rng(0)
    a = torch.from_numpy((1e5 + rng.normal(size=2_000_000)).astype(np.float32))
    a = a - a[:1024].mean()  # exact (Sterbenz): quantized values of size about 1
    exact = float(a.double() @ a.double())
    assert abs(float(_cpu_gram.tree_dot(a, a)) / exact - 1) < 1e-6


@pytest.mark.parametrize("d", [3, 100, 256])
def test_blocked_shifted_gram_matches_float64_over_several_row_blocks(d: int) -> None:
    """Offset data long enough for several blocks of the reused buffer, the last one partial."""
    rows = _cpu_gram.block_rows(_cpu_gram.aligned(d + 1))
    n = 2 * rows + 123
    gen = torch.Generator().manual_seed(d)
    x = 5.0 + 0.1 * torch.randn(n, d, generator=gen)
    c = x[:128].mean(dim=0)
    m = _moments._blocked_symmetric_gram(x, c, add_back=True)
    assert m is not None
    x64 = x.double()
    centred = x64 - x64.mean(dim=0)
    torch.testing.assert_close(m.mean_x.double(), x64.mean(dim=0), rtol=0, atol=1e-6)
    torch.testing.assert_close(m.cross.double(), centred.T @ centred, rtol=1e-4, atol=1e-2)


def test_blocked_results_do_not_share_the_reused_buffers() -> None:
    """The buffers behind the CPU product are reused; results handed out must not be."""
    gen = torch.Generator().manual_seed(0)
    x1 = 3.0 + torch.randn(6000, 130, generator=gen)
    x2 = -7.0 + 2 * torch.randn(6000, 130, generator=gen)
    first = _moments.centred_gram(x1)
    kept = first.cross.clone()
    _cpu_gram.tree_dot(x2[:, 0], x2[:, 1])  # another user of a work buffer in between
    second = _moments.centred_gram(x2)
    assert torch.equal(first.cross, kept)
    assert not torch.equal(second.cross, kept)
    # and the column of ones survived the other buffer's use: the means are right
    torch.testing.assert_close(second.mean_x, x2.mean(dim=0), rtol=0, atol=1e-5)
