"""Tests for corrlib.sparse: thresholding, Ledoit-Wolf shrinkage, partial correlations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.covariance import GraphicalLasso, LedoitWolf

import corrlib
from corrlib.sparse import cov_to_corr, ledoit_wolf, partial_corr, threshold_corr


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def _corr(rng: np.random.Generator, n: int = 60, d: int = 6) -> np.ndarray:
    x = rng.normal(size=(n, d))
    x[:, 1] += x[:, 0]
    x[:, 3] -= 0.5 * x[:, 2]
    return np.corrcoef(x, rowvar=False)


def _partial_corr_reference(x: np.ndarray) -> np.ndarray:
    """Regress each pair on all other variables (with intercept), correlate the residuals."""
    n, d = x.shape
    out = np.eye(d)
    for i in range(d):
        for j in range(i + 1, d):
            others = [k for k in range(d) if k not in (i, j)]
            design = np.column_stack([np.ones(n), x[:, others]])
            res_i = x[:, i] - design @ np.linalg.lstsq(design, x[:, i], rcond=None)[0]
            res_j = x[:, j] - design @ np.linalg.lstsq(design, x[:, j], rcond=None)[0]
            out[i, j] = out[j, i] = np.corrcoef(res_i, res_j)[0, 1]
    return out


# ------------------------------------------------------------------------ top-level names


def test_top_level_names_are_the_module_functions() -> None:
    assert corrlib.threshold_corr is threshold_corr
    assert corrlib.ledoit_wolf is ledoit_wolf
    assert corrlib.cov_to_corr is cov_to_corr
    assert corrlib.partial_corr is partial_corr


# ------------------------------------------------------------------------ threshold_corr


def test_hard_threshold_matches_numpy_rule(rng: np.random.Generator) -> None:
    c = _corr(rng)
    tau = 0.2
    expected = np.where(np.abs(c) >= tau, c, 0.0)
    np.fill_diagonal(expected, 1.0)
    out = threshold_corr(c, tau)
    assert out.dtype == torch.float64
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-15)
    assert (out.numpy() == 0).sum() > 0  # the threshold did remove something


def test_soft_threshold_matches_numpy_rule(rng: np.random.Generator) -> None:
    c = _corr(rng)
    tau = 0.3
    expected = np.sign(c) * np.maximum(np.abs(c) - tau, 0.0)
    np.fill_diagonal(expected, 1.0)
    np.testing.assert_allclose(threshold_corr(c, tau, mode="soft").numpy(), expected, atol=1e-15)


def test_threshold_keeps_diagonal_and_is_exactly_symmetric() -> None:
    c = torch.tensor([[0.5, 0.3 + 1e-12, -0.9], [0.3, 2.0, 0.05], [-0.9, 0.05, 1.0]])
    c = c.double()
    for mode in ("hard", "soft"):
        out = threshold_corr(c, 0.5, mode=mode)
        assert torch.equal(out, out.T)
        assert torch.equal(torch.diagonal(out), torch.diagonal(c))
        assert out[0, 1] == 0 and out[1, 2] == 0


def test_threshold_edges_of_tau_range(rng: np.random.Generator) -> None:
    c = torch.from_numpy(_corr(rng))
    assert torch.allclose(threshold_corr(c, 0.0), c)
    assert torch.allclose(threshold_corr(c, 0.0, mode="soft"), c)
    off = ~torch.eye(c.shape[0], dtype=torch.bool)
    assert (threshold_corr(c, 1.0, mode="soft")[off] == 0).all()
    # hard at tau = 1 keeps only perfect correlations
    perfect = torch.tensor([[1.0, -1.0], [-1.0, 1.0]])
    assert torch.equal(threshold_corr(perfect, 1.0), perfect)


def test_threshold_sparse_output(rng: np.random.Generator) -> None:
    c = torch.from_numpy(_corr(rng))
    dense = threshold_corr(c, 0.25)
    sp = threshold_corr(c, 0.25, sparse=True)
    assert sp.layout == torch.sparse_coo
    assert sp.is_coalesced()
    assert torch.equal(sp.to_dense(), dense)
    assert sp._nnz() == int((dense != 0).sum())


def test_threshold_dtype_and_nan() -> None:
    c = torch.tensor([[1.0, float("nan")], [float("nan"), 1.0]], dtype=torch.float32)
    out = threshold_corr(c, 0.5)
    assert out.dtype == torch.float32
    assert torch.isnan(out[0, 1]) and torch.isnan(out[1, 0])
    assert torch.isnan(threshold_corr(c, 0.5, mode="soft")[0, 1])


def test_threshold_soft_is_differentiable() -> None:
    c = torch.tensor([[1.0, 0.6], [0.6, 1.0]], dtype=torch.float64, requires_grad=True)
    threshold_corr(c, 0.2, mode="soft").sum().backward()
    assert c.grad is not None and float(c.grad[0, 1]) == pytest.approx(1.0)


@pytest.mark.parametrize("tau", [-0.1, 1.01, float("nan")])
def test_threshold_rejects_tau_outside_unit_interval(tau: float) -> None:
    with pytest.raises(ValueError, match=r"tau must be in \[0, 1\]"):
        threshold_corr(np.eye(3), tau)


def test_threshold_rejects_bad_inputs() -> None:
    with pytest.raises(ValueError, match=r"square.*\(2, 3\)"):
        threshold_corr(np.ones((2, 3)), 0.5)
    with pytest.raises(ValueError, match=r"square.*\(4,\)"):
        threshold_corr(np.ones(4), 0.5)
    with pytest.raises(ValueError, match="mode"):
        threshold_corr(np.eye(2), 0.5, mode="medium")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not symmetric"):
        threshold_corr(np.array([[1.0, 0.9], [0.1, 1.0]]), 0.5)
    with pytest.raises(TypeError, match="complex"):
        threshold_corr(np.eye(2, dtype=complex), 0.5)


# ------------------------------------------------------------------------ ledoit_wolf


@pytest.mark.parametrize(("n", "d"), [(10, 40), (40, 40), (300, 8), (3, 2)])
def test_ledoit_wolf_equals_sklearn(rng: np.random.Generator, n: int, d: int) -> None:
    x = rng.normal(size=(n, d)) * rng.uniform(0.2, 5.0, size=d) + rng.normal(size=d) * 10
    x[:, 1] += 0.8 * x[:, 0]
    ref = LedoitWolf().fit(x)
    cov, shrinkage = ledoit_wolf(x)
    assert cov.shape == (d, d) and cov.dtype == torch.float64 and shrinkage.ndim == 0
    np.testing.assert_allclose(cov.numpy(), ref.covariance_, rtol=1e-10, atol=1e-10)
    assert float(shrinkage) == pytest.approx(ref.shrinkage_, abs=1e-10)
    assert 0.0 <= float(shrinkage) <= 1.0


def test_ledoit_wolf_is_positive_definite_with_fewer_samples_than_features(
    rng: np.random.Generator,
) -> None:
    x = torch.from_numpy(rng.normal(size=(8, 30)))
    cov, shrinkage = ledoit_wolf(x)
    sample = torch.cov(x.T, correction=0)
    assert float(torch.linalg.eigvalsh(sample)[0]) < 1e-10  # singular
    assert float(torch.linalg.eigvalsh(cov)[0]) > 0.01  # shrunk: positive definite
    assert 0 < float(shrinkage) < 1


def test_ledoit_wolf_one_feature_and_constant_data(rng: np.random.Generator) -> None:
    x = rng.normal(size=(20, 1))
    cov, shrinkage = ledoit_wolf(x)
    assert float(shrinkage) == 0.0
    assert float(cov[0, 0]) == pytest.approx(float(np.var(x)), rel=1e-12)
    cov, shrinkage = ledoit_wolf(np.ones((5, 3)))
    assert float(shrinkage) == 0.0 and bool((cov == 0).all())


def test_ledoit_wolf_float32_and_tensor_input(rng: np.random.Generator) -> None:
    x = rng.normal(size=(50, 10))
    cov32, s32 = ledoit_wolf(torch.tensor(x, dtype=torch.float32))
    ref = LedoitWolf().fit(x)
    assert cov32.dtype == torch.float32 and s32.dtype == torch.float32
    np.testing.assert_allclose(cov32.numpy(), ref.covariance_, atol=1e-5)
    assert float(s32) == pytest.approx(ref.shrinkage_, abs=1e-5)


def test_ledoit_wolf_rejects_bad_inputs() -> None:
    with pytest.raises(ValueError, match=r"2-D.*\(5,\)"):
        ledoit_wolf(np.arange(5.0))
    with pytest.raises(ValueError, match="at least 2 samples"):
        ledoit_wolf(np.ones((1, 3)))
    x = np.ones((4, 3))
    x[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        ledoit_wolf(x)


# ------------------------------------------------------------------------ cov_to_corr


def test_cov_to_corr_matches_numpy(rng: np.random.Generator) -> None:
    x = rng.normal(size=(30, 5)) * [1.0, 10.0, 0.1, 3.0, 7.0]
    out = cov_to_corr(np.cov(x, rowvar=False))
    np.testing.assert_allclose(out.numpy(), np.corrcoef(x, rowvar=False), atol=1e-14)
    assert bool((torch.diagonal(out) == 1).all())


def test_cov_to_corr_clamps_and_rejects_bad_variances() -> None:
    out = cov_to_corr(torch.tensor([[1.0, 1.0 + 1e-6], [1.0 + 1e-6, 1.0]]))
    assert float(out.max()) <= 1.0
    with pytest.raises(ValueError, match=r"non-positive variances at indices \[1\]"):
        cov_to_corr(np.diag([1.0, 0.0]))
    with pytest.raises(ValueError, match=r"square.*\(2, 3\)"):
        cov_to_corr(np.ones((2, 3)))


# ------------------------------------------------------------------------ partial_corr


def test_partial_corr_from_data_equals_residual_correlation(rng: np.random.Generator) -> None:
    n, d = 120, 5
    x = rng.normal(size=(n, d))
    x[:, 1] += x[:, 0]
    x[:, 2] += x[:, 1] - 0.5 * x[:, 3]
    out = partial_corr(x)
    np.testing.assert_allclose(out.numpy(), _partial_corr_reference(x), atol=1e-12)
    assert bool((torch.diagonal(out) == 1).all())


def test_partial_corr_removes_a_confounder(rng: np.random.Generator) -> None:
    z = rng.normal(size=2000)
    a = z + 0.5 * rng.normal(size=2000)
    b = z + 0.5 * rng.normal(size=2000)
    x = np.column_stack([a, b, z])
    assert np.corrcoef(a, b)[0, 1] > 0.7
    assert abs(float(partial_corr(x)[0, 1])) < 0.05


def test_partial_corr_from_precision(rng: np.random.Generator) -> None:
    x = rng.normal(size=(200, 4))
    x[:, 1] += x[:, 0]
    model = GraphicalLasso(alpha=0.05).fit(x)
    p = model.precision_
    expected = -p / np.sqrt(np.outer(np.diag(p), np.diag(p)))
    np.fill_diagonal(expected, 1.0)
    out = partial_corr(precision=p)
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-12)
    # the data path equals the precision path with the inverse sample covariance
    direct = partial_corr(precision=np.linalg.inv(np.cov(x, rowvar=False)))
    np.testing.assert_allclose(partial_corr(x).numpy(), direct.numpy(), atol=1e-10)


def test_partial_corr_keeps_float32(rng: np.random.Generator) -> None:
    x = rng.normal(size=(100, 3))
    out = partial_corr(torch.tensor(x, dtype=torch.float32))
    assert out.dtype == torch.float32
    np.testing.assert_allclose(out.numpy(), _partial_corr_reference(x), atol=1e-4)


def test_partial_corr_rejects_singular_inputs(rng: np.random.Generator) -> None:
    with pytest.raises(ValueError, match="singular"):
        partial_corr(precision=np.ones((3, 3)))
    with pytest.raises(ValueError, match="singular"):
        partial_corr(precision=np.diag([1.0, 0.0, 2.0]))
    with pytest.raises(ValueError, match="not positive definite"):
        partial_corr(precision=np.diag([1.0, -1.0]))
    with pytest.raises(ValueError, match=r"singular \(n_samples <= n_features\)"):
        partial_corr(rng.normal(size=(4, 6)))
    x = rng.normal(size=(50, 3))
    collinear = np.column_stack([x, x[:, 0] - 2 * x[:, 2]])
    with pytest.raises(ValueError, match="singular"):
        partial_corr(collinear)


def test_partial_corr_argument_rules() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        partial_corr()
    with pytest.raises(ValueError, match="exactly one"):
        partial_corr(np.ones((5, 2)), precision=np.eye(2))
    with pytest.raises(ValueError, match="not symmetric"):
        partial_corr(precision=np.array([[2.0, 0.5], [0.0, 2.0]]))
    with pytest.raises(ValueError, match=r"square.*\(2, 3\)"):
        partial_corr(precision=np.ones((2, 3)))
    with pytest.raises(ValueError, match="NaN"):
        partial_corr(precision=np.array([[1.0, np.nan], [np.nan, 1.0]]))


# ------------------------------------------------------------------------ devices

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
def test_results_stay_on_the_input_device(rng: np.random.Generator, device: str) -> None:
    x_np = rng.normal(size=(40, 6))
    x_np[:, 1] += x_np[:, 0]
    x = torch.from_numpy(x_np).to(device)
    cov, shrinkage = ledoit_wolf(x)
    ref = LedoitWolf().fit(x_np)
    assert cov.device.type == device and shrinkage.device.type == device
    np.testing.assert_allclose(cov.cpu().numpy(), ref.covariance_, atol=1e-10)
    assert float(shrinkage) == pytest.approx(ref.shrinkage_, abs=1e-10)
    corr = cov_to_corr(cov)
    assert corr.device.type == device
    sp = threshold_corr(corr, 0.3, sparse=True)
    assert sp.device.type == device and sp.layout == torch.sparse_coo
    pc = partial_corr(x)
    assert pc.device.type == device
    np.testing.assert_allclose(pc.cpu().numpy(), _partial_corr_reference(x_np), atol=1e-10)
    pc32 = partial_corr(precision=torch.linalg.inv(torch.cov(x.T)).float())
    assert pc32.dtype == torch.float32 and pc32.device.type == device
