"""RunningCorrelation: any split, any merge order, the full-batch answer."""

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import corrlib
from corrlib import ConstantInputWarning, RunningCorrelation


def _data(n=300, d=5, offset=0.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(n, 1, generator=g, dtype=torch.float64)
    return base + torch.randn(n, d, generator=g, dtype=torch.float64) + offset


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 40), min_size=1, max_size=12))
def test_any_split_gives_the_full_batch_result(sizes):
    total = sum(sizes)
    assume(total >= 2)
    x = _data(total, 4, offset=50.0)
    rc = RunningCorrelation(4, dtype=torch.float64)
    for part in torch.split(x, sizes):
        rc.update(part)
    assert rc.n == total
    torch.testing.assert_close(rc.compute(), corrlib.corr_matrix(x))
    torch.testing.assert_close(rc.mean, x.mean(0))
    torch.testing.assert_close(rc.covariance(), torch.cov(x.T))


@settings(max_examples=30, deadline=None)
@given(st.permutations(range(5)), st.lists(st.integers(0, 30), min_size=5, max_size=5))
def test_any_merge_order_gives_the_full_batch_result(order, sizes):
    assume(sum(sizes) >= 2)
    x = _data(sum(sizes), 3)
    parts = torch.split(x, sizes)
    states = [RunningCorrelation(3, dtype=torch.float64).update(p) for p in parts]
    acc = RunningCorrelation(3, dtype=torch.float64)
    for i in order:
        acc.merge(states[i])
    torch.testing.assert_close(acc.compute(), corrlib.corr_matrix(x))


def test_float32_state_with_offset_is_accurate():
    x = _data(20_000, 3, offset=1e4, seed=1)
    rc = RunningCorrelation(3)
    for part in x.float().split(1000):
        rc.update(part)
    exact = corrlib.corr_matrix(x.float().double())
    assert (rc.compute().double() - exact).abs().max() < 1e-4


def test_merge_is_in_place_and_returns_self():
    a = RunningCorrelation(2).update(torch.randn(5, 2))
    b = RunningCorrelation(2).update(torch.randn(7, 2))
    assert a.merge(b) is a
    assert a.n == 12 and b.n == 7


def test_memory_does_not_grow_with_n():
    rc = RunningCorrelation(8)
    sizes = {k: v.numel() for k, v in rc.state_dict().items()}
    for _ in range(20):
        rc.update(torch.randn(500, 8))
    assert {k: v.numel() for k, v in rc.state_dict().items()} == sizes
    assert sum(sizes.values()) == 1 + 8 + 8 + 8 + 64 + 8 + 8


def test_state_dict_round_trip_and_reset():
    x = _data(100, 3)
    rc = RunningCorrelation(3, dtype=torch.float64).update(x[:60])
    copy = RunningCorrelation(3, dtype=torch.float64)
    copy.load_state_dict(rc.state_dict())
    copy.update(x[60:])
    torch.testing.assert_close(copy.compute(), corrlib.corr_matrix(x))
    copy.reset()
    assert copy.n == 0
    with pytest.raises(RuntimeError, match="before any update"):
        copy.compute()
    with pytest.raises(ValueError, match="at least 2"):
        copy.update(x[:1]).compute()


def test_constant_feature_is_nan_with_warning():
    x = torch.randn(30, 3)
    x[:, 1] = 0.1
    rc = RunningCorrelation(3).update(x[:10]).update(x[10:])
    with pytest.warns(ConstantInputWarning):
        r = rc.compute()
    assert torch.isnan(r[1]).all() and torch.isnan(r[:, 1]).all()
    assert torch.isfinite(r[[0, 2]][:, [0, 2]]).all()


def test_bad_batches_are_refused():
    rc = RunningCorrelation(3)
    with pytest.raises(ValueError, match="expected 3"):
        rc.update(torch.randn(4, 2))
    with pytest.raises(ValueError, match="2-D"):
        rc.update(torch.randn(4))
    with pytest.raises(TypeError, match="complex"):
        rc.update(torch.randn(4, 3, dtype=torch.complex64))
    with pytest.raises(ValueError, match="features"):
        rc.merge(RunningCorrelation(4))
    with pytest.raises(ValueError, match="num_features"):
        RunningCorrelation(0)


def test_numpy_batches_and_sync_without_process_group():
    x = np.random.default_rng(0).normal(size=(50, 2))
    rc = RunningCorrelation(2, dtype=torch.float64).update(x)
    assert rc.sync() is rc
    np.testing.assert_allclose(rc.compute().numpy(), np.corrcoef(x, rowvar=False), atol=1e-12)


def test_dtype_follows_the_data_unless_given():
    x64 = _data(200, 3)
    rc = RunningCorrelation(3).update(x64)
    assert rc.compute().dtype == torch.float64
    torch.testing.assert_close(rc.compute(), corrlib.corr_matrix(x64))
    half = RunningCorrelation(3).update(x64.half())
    assert half.state_dtype == torch.float32 and half.compute().dtype == torch.float16
    fixed = RunningCorrelation(3, dtype=torch.float64).update(x64.float())
    assert fixed.compute().dtype == torch.float64
    fresh = RunningCorrelation(3)
    fresh.load_state_dict(rc.state_dict())
    assert fresh.compute().dtype == torch.float64
    torch.testing.assert_close(fresh.compute(), rc.compute())
    empty = RunningCorrelation(3).merge(rc)
    torch.testing.assert_close(empty.compute(), rc.compute())


@pytest.mark.parametrize("scale", [1e-20, 3e7, 1e15])
def test_large_and_small_scales_in_float32(scale):
    x = _data(20_000, 2, seed=3).float()
    expected = corrlib.corr_matrix(x)
    rc = RunningCorrelation(2)
    for part in (x * scale).split(2000):
        rc.update(part)
    torch.testing.assert_close(rc.compute(), expected, atol=1e-4, rtol=0)


def test_data_whose_squares_overflow_are_rescaled_not_nan():
    x = _data(100, 2).float()
    rc = RunningCorrelation(2)
    for part in (x * 1e19).split(30):  # squares overflow float32
        rc.update(part)
    torch.testing.assert_close(rc.compute(), corrlib.corr_matrix(x), atol=1e-5, rtol=0)
    torch.testing.assert_close(rc.mean, (x * 1e19).mean(0), rtol=1e-5, atol=0)
    # the same rule as corr_matrix, which rescales too
    torch.testing.assert_close(corrlib.corr_matrix(x * 1e19), corrlib.corr_matrix(x))


def test_a_later_batch_beyond_the_range_is_nan_with_a_warning():
    x = _data(100, 2).float()
    rc = RunningCorrelation(2).update(x[:50]).update(x[50:] * 1e30)
    with pytest.warns(RuntimeWarning, match="overflowed"):
        r = rc.compute()
    assert torch.isnan(r).all()


def test_a_new_frame_is_read_after_reset_and_load():
    """The state reads its frame (shift, scale) once; reset and load_state_dict bring a new one."""
    gen = torch.Generator().manual_seed(0)
    centred = torch.randn(400, 3, generator=gen, dtype=torch.float64)  # no shift, no scale
    offset = 1e3 + torch.randn(400, 3, generator=gen, dtype=torch.float64)
    tiny = 1e-60 * torch.randn(400, 3, generator=gen, dtype=torch.float64)  # a scaled frame
    rc = RunningCorrelation(3)
    for data in (centred, tiny):
        rc.reset()
        for b in data.split(100):
            rc.update(b)
        torch.testing.assert_close(rc.mean, data.mean(dim=0), rtol=1e-9, atol=0)
        torch.testing.assert_close(rc.covariance(), torch.cov(data.T), rtol=1e-9, atol=0)
    for data in (centred, offset):  # rc has read a frame's flags: load one of each kind
        rc.reset()
        rc.update(centred[:100])
        other = RunningCorrelation(3)
        other.update(data)
        rc.load_state_dict(other.state_dict())
        rc.update(offset[:50])
        both = torch.cat([data, offset[:50]])
        torch.testing.assert_close(rc.mean, both.mean(dim=0), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(rc.covariance(), torch.cov(both.T), rtol=1e-9, atol=0)
