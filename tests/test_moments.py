"""The Pearson core at its public boundary: a grid of shapes, offsets, dtypes and forms.

Every case is compared with float64 numpy on the same values. The grid crosses the block size
of the shifted product (so the one-block and the blocked forms are both entered, which
``test_every_form_of_the_product_is_entered`` checks), the stacked and the separate cross
products, and the careful path (a NaN, a constant column, a far shift, extreme scales).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

import corrlib
from corrlib import _moments

SHAPES = [(2, 1), (3, 2), (64, 8), (16_384, 3), (16_385, 3), (20_000, 7), (17_000, 130)]


def _case(n: int, d: int, offset: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)) + 0.5 * rng.normal(size=(n, 1))
    return x + offset * np.linspace(1, 2, d)


def _reference(x: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
    if y is None:
        return np.corrcoef(x, rowvar=False).reshape(x.shape[1], x.shape[1])
    full = np.corrcoef(np.hstack([x, y]), rowvar=False)
    return full[: x.shape[1], x.shape[1] :]


@pytest.mark.parametrize(("n", "d"), SHAPES)
@pytest.mark.parametrize("offset", [0.0, 1e4])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_corr_matrix_grid_against_float64_numpy(n: int, d: int, offset: float, dtype) -> None:
    x = torch.from_numpy(_case(n, d, offset)).to(dtype)
    exact = _reference(x.double().numpy())
    tol = 2e-5 if dtype == torch.float32 else 1e-11
    got = corrlib.corr_matrix(x)
    assert got.dtype == dtype and got.shape == (d, d)
    np.testing.assert_allclose(got.double().numpy(), exact, atol=tol)
    assert torch.equal(got, got.T)
    # the cross block, stacked (few columns) or as its own product (many)
    y = torch.from_numpy(_case(n, 2, offset, seed=1)).to(dtype) + x[:, :1]
    cross = corrlib.corr_matrix(x, y)
    np.testing.assert_allclose(
        cross.double().numpy(), _reference(x.double().numpy(), y.double().numpy()), atol=tol
    )


@pytest.mark.parametrize(("n", "d"), [(3, 2), (64, 8), (300, 70)])
def test_gradients_match_float64_autograd_of_the_textbook_formula(n: int, d: int) -> None:
    x = torch.from_numpy(_case(n, d, 3.0)).requires_grad_(True)
    weights = torch.randn(d, d, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    (corrlib.corr_matrix(x) * weights).sum().backward()
    ours = x.grad.clone()
    x.grad = None
    (torch.corrcoef(x.T) * weights).sum().backward()
    torch.testing.assert_close(ours, x.grad, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("chunk", [1, 7, 1000, 4096])
def test_chunked_rows_give_the_one_shot_result(chunk: int) -> None:
    x = torch.from_numpy(_case(3000, 5, 1e3))
    torch.testing.assert_close(corrlib.corr_matrix(x, chunk_size=chunk), corrlib.corr_matrix(x))


def test_every_form_of_the_product_is_entered(monkeypatch) -> None:
    """The grid above reaches both forms of the product; watch the calls to be sure."""
    seen: list[str] = []
    real = _moments._products

    def spy(x, cx, y, cy, rows):
        limit = _moments.block_rows(x.shape[1] + (0 if y is None else y.shape[1]))
        limit = limit if rows is None else min(rows, limit)
        seen.append("blocked" if x.shape[0] > limit and not x.requires_grad else "one block")
        seen.append("cross" if y is not None else "symmetric")
        return real(x, cx, y, cy, rows)

    monkeypatch.setattr(_moments, "_products", spy)
    corrlib.corr_matrix(torch.randn(100, 3))
    corrlib.corr_matrix(torch.randn(20_000, 3))
    corrlib.corr_matrix(torch.randn(20_000, 40), torch.randn(20_000, 40))
    assert {"blocked", "one block", "cross", "symmetric"} <= set(seen)


def test_first_rows_far_from_typical_are_recentred() -> None:
    """Sorted data: the first rows' mean is a poor shift; the exact mean is used instead."""
    x = np.sort(_case(20_000, 3, 0.0) * 100 + 1e4, axis=0).astype(np.float32)
    got = corrlib.corr_matrix(torch.from_numpy(x)).double().numpy()
    np.testing.assert_allclose(got, _reference(x.astype(np.float64)), atol=1e-5)


@pytest.mark.parametrize("scale", [1e-30, 1e-22, 1e22, 1e30])
def test_float32_at_extreme_scales(scale: float) -> None:
    base = _case(500, 3, 0.0)
    x = torch.from_numpy(base * scale).float()
    exact = _reference(x.double().numpy())
    np.testing.assert_allclose(corrlib.corr_matrix(x).double().numpy(), exact, atol=1e-5)


def test_long_float32_samples_are_summed_in_blocks() -> None:
    """Two million offset float32 rows: the blocks' products add up in float64."""
    rng = np.random.default_rng(0)
    drift = np.cumsum(rng.normal(scale=0.02, size=2_000_000))
    x = (1e5 + drift[:, None] + rng.normal(size=(2_000_000, 2))).astype(np.float32)
    exact = np.corrcoef(x.astype(np.float64), rowvar=False)[0, 1]
    assert abs(float(corrlib.corr_matrix(torch.from_numpy(x))[0, 1]) - exact) < 1e-5


def test_well_shifted_flags_each_kind_of_column() -> None:
    x = torch.randn(100, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x[:, 1] = 0.1  # constant
    x[3, 2] = float("nan")
    # first rows far from typical: the shift (their mean) lies 5 standard deviations off
    x[:, 3] = x[:, 3] * 1e-3 + 1e6
    x[:10, 3] -= 5e-3
    x[:, 4] *= 1e-160  # sums of squares underflow
    m = _moments.shifted_moments(x, shift_x=x[:10].mean(dim=0))
    ok = _moments.well_shifted(m.ss_x, m.sq_x, m.dtype)
    assert ok.tolist() == [True, False, False, False, False]


# --- the cross product of many columns (x and y not stacked) when a column fails the check --


def _wide_pair(n: int = 400, seed: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """x with 40 and y with 30 columns: more than STACK_COLUMNS in all, so x^T y is its own
    product."""
    x, y = _case(n, 40, 0.0, seed), _case(n, 30, 0.0, seed + 1)
    y[:, :5] += x[:, :5]
    return x, y


def test_wide_cross_block_with_a_nan_in_y() -> None:
    x, y = _wide_pair()
    y[17, 4] = np.nan
    got = corrlib.corr_matrix(torch.from_numpy(x), torch.from_numpy(y)).numpy()
    assert np.isnan(got[:, 4]).all() and not np.isnan(np.delete(got, 4, axis=1)).any()
    np.testing.assert_allclose(
        np.delete(got, 4, axis=1), _reference(x, np.delete(y, 4, axis=1)), atol=1e-12
    )
    omit = corrlib.corr_matrix(torch.from_numpy(x), torch.from_numpy(y), nan_policy="omit")
    frame = pd.DataFrame(np.hstack([x, y])).corr().to_numpy()[:40, 40:]
    np.testing.assert_allclose(omit.numpy(), frame, atol=1e-12)


def test_wide_cross_block_with_constant_and_infinite_columns_in_y() -> None:
    x, y = _wide_pair()
    y[:, 2] = 3.0
    y[5, 7] = np.inf
    with pytest.warns(corrlib.ConstantInputWarning):
        with pytest.warns(RuntimeWarning, match="infinite"):
            got = corrlib.corr_matrix(torch.from_numpy(x), torch.from_numpy(y)).numpy()
    assert np.isnan(got[:, [2, 7]]).all()
    keep = [j for j in range(30) if j not in (2, 7)]
    np.testing.assert_allclose(got[:, keep], _reference(x, y[:, keep]), atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_wide_cross_block_rescues_far_shifts_and_extreme_scales_in_y(dtype) -> None:
    x, y = _wide_pair(n=3000)
    y = np.sort(y, axis=0)  # the first rows' mean is a poor shift for every column of y
    y[:, 0] = y[:, 0] * 100 + 1e4
    tiny = 2.0 ** (-100 if dtype == torch.float32 else -530)  # its squares are subnormal
    xt, yt = torch.from_numpy(x).to(dtype), torch.from_numpy(y).to(dtype)
    exact = _reference(xt.double().numpy(), yt.double().numpy())  # (scaling is exact)
    yt[:, 1] *= tiny
    got = corrlib.corr_matrix(xt, yt).double().numpy()
    np.testing.assert_allclose(got, exact, atol=2e-5 if dtype == torch.float32 else 1e-11)


def test_wide_cross_block_gradient_with_respect_to_y_only() -> None:
    x, y = (torch.from_numpy(a) for a in _wide_pair(n=200))
    y.requires_grad_(True)
    weights = torch.randn(40, 30, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    (corrlib.corr_matrix(x, y) * weights).sum().backward()
    ours = y.grad.clone()
    y.grad = None
    textbook = torch.corrcoef(torch.cat([x, y], dim=1).T)[:40, 40:]
    (textbook * weights).sum().backward()
    torch.testing.assert_close(ours, y.grad, rtol=1e-7, atol=1e-9)


def test_x_and_y_on_different_devices_is_an_error() -> None:
    x = torch.randn(10, 2)
    with pytest.raises(ValueError, match="different devices"):
        corrlib.corr_matrix(x, torch.empty(10, 2, device="meta"))


def test_spearman_matrix_with_an_infinite_value() -> None:
    """An infinity ranks like any other value but its column's entries are NaN, with a warning."""
    x = _case(200, 4, 0.0, seed=5)
    x[9, 2] = np.inf
    with pytest.warns(RuntimeWarning, match="infinite"):
        got = corrlib.corr_matrix(torch.from_numpy(x), method="spearman").numpy()
    assert np.isnan(got[2]).all() and np.isnan(got[:, 2]).all()
    keep = [0, 1, 3]
    exact = stats.spearmanr(x[:, keep]).statistic
    np.testing.assert_allclose(got[np.ix_(keep, keep)], exact, atol=1e-12)
