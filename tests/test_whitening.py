"""Tests of corrlib.whitening against numpy's covariance, eigenvalues and condition number."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from corrlib.whitening import PCAWhitening, ZCAWhitening, condition_number

WHITENERS = [ZCAWhitening, PCAWhitening]


def correlated_data(n: int = 400, d: int = 4, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(d, d)) + 2 * np.eye(d)
    return rng.normal(size=(n, d)) @ mixing * np.linspace(0.1, 10, d) + 50.0


@pytest.mark.parametrize("cls", WHITENERS)
def test_training_data_get_identity_covariance(cls):
    x = correlated_data()
    assert np.linalg.cond(np.cov(x.T)) > 100  # a real test: the input is far from white
    z = cls(eps=0).fit_transform(x)
    assert z.dtype == torch.float64
    np.testing.assert_allclose(np.cov(z.numpy().T), np.eye(4), atol=1e-10)
    np.testing.assert_allclose(z.numpy().mean(0), 0, atol=1e-10)
    # with the default eps the variance along axis k is lam_k / (lam_k + eps)
    w = cls().fit(x)
    lam = np.linalg.eigvalsh(np.cov(x.T))[::-1]
    np.testing.assert_allclose(w.eigenvalues_.numpy(), lam, rtol=1e-10)
    cov_z = np.cov(w.transform(x).numpy().T)
    np.testing.assert_allclose(np.linalg.eigvalsh(cov_z)[::-1], lam / (lam + 1e-5), rtol=1e-9)
    # so the distance to the identity is at most eps / lam_min
    np.testing.assert_allclose(cov_z, np.eye(4), atol=1.01e-5 / lam.min())


@pytest.mark.parametrize("cls", WHITENERS)
def test_new_data_use_the_training_statistics_and_inverse_round_trips(cls):
    x = correlated_data(seed=1)
    x_new = correlated_data(n=50, seed=2)
    w = cls(eps=0).fit(x)
    x_t = torch.from_numpy(x_new)
    expected = (x_new - x.mean(0)) @ w.whitening_matrix_.numpy()
    np.testing.assert_allclose(w(x_t).numpy(), expected, rtol=1e-10)
    np.testing.assert_allclose(w.inverse_transform(w.transform(x_t)).numpy(), x_new, rtol=1e-10)


def test_zca_matrix_is_symmetric_inverse_square_root():
    x = correlated_data(seed=3)
    w = ZCAWhitening(eps=0).fit(x).whitening_matrix_.numpy()
    np.testing.assert_allclose(w, w.T, atol=1e-12)
    np.testing.assert_allclose(w @ w @ np.cov(x.T), np.eye(4), atol=1e-8)


def test_zca_output_is_closest_to_input_among_whiteners():
    x = correlated_data(seed=4)
    xc = x - x.mean(0)
    z_zca = ZCAWhitening(eps=0).fit_transform(x).numpy()
    z_pca = PCAWhitening(eps=0).fit_transform(x).numpy()
    dist_zca = np.mean((z_zca - xc) ** 2)
    assert dist_zca < np.mean((z_pca - xc) ** 2)
    # any other whitening is ZCA followed by a rotation Q; none is closer
    rng = np.random.default_rng(0)
    for _ in range(20):
        q, _ = np.linalg.qr(rng.normal(size=(4, 4)))
        z_other = z_zca @ q
        np.testing.assert_allclose(np.cov(z_other.T), np.eye(4), atol=1e-10)
        assert dist_zca < np.mean((z_other - xc) ** 2)


def test_pca_components_are_ordered_principal_components():
    x = correlated_data(seed=5)
    z = PCAWhitening(eps=0).fit_transform(x).numpy()
    _, _, vt = np.linalg.svd(x - x.mean(0), full_matrices=False)
    scores = (x - x.mean(0)) @ vt.T
    scores /= scores.std(0, ddof=1)
    # equal up to the sign of each component
    np.testing.assert_allclose(np.abs(z), np.abs(scores), atol=1e-8)


def test_rank_deficient_input_is_handled_by_eps():
    x = correlated_data(n=100, d=3, seed=6)
    x = np.column_stack([x, x[:, 0] - 2 * x[:, 1]])  # column 3 is a linear combination
    with pytest.raises(ValueError, match="singular"):
        ZCAWhitening(eps=0).fit(x)
    for cls in WHITENERS:
        w = cls(eps=1e-5).fit(x)
        z = w.transform(x)
        assert torch.isfinite(z).all()
        assert torch.isfinite(w.whitening_matrix_).all()
        cov_z = np.cov(z.numpy().T)
        # three (nearly) unit-variance directions, lam / (lam + eps), and one without variance
        lam = w.eigenvalues_.numpy()
        assert lam[-1] < 1e-10 * lam[0]
        expected = np.sort(np.r_[0.0, lam[:3] / (lam[:3] + 1e-5)])
        np.testing.assert_allclose(np.linalg.eigvalsh(cov_z), expected, atol=1e-9)
    # fewer samples than features
    few = correlated_data(n=3, d=6, seed=7)
    z = ZCAWhitening().fit_transform(few)
    assert torch.isfinite(z).all()


def test_condition_number_matches_numpy():
    cov = np.cov(correlated_data(seed=8).T)
    assert condition_number(cov).item() == pytest.approx(np.linalg.cond(cov), rel=1e-8)
    lam = np.linalg.eigvalsh(cov)
    assert condition_number(cov, eps=0.5).item() == pytest.approx(
        (lam[-1] + 0.5) / (lam[0] + 0.5), rel=1e-10
    )
    for rho in (0.0, 0.5, 0.9, 0.99):
        corr = torch.tensor([[1.0, rho], [rho, 1.0]], dtype=torch.float64)
        assert condition_number(corr).item() == pytest.approx((1 + rho) / (1 - rho), rel=1e-10)
    assert condition_number(torch.eye(3)).item() == pytest.approx(1.0)


def test_condition_number_of_singular_matrix():
    singular = torch.tensor([[1.0, 1.0], [1.0, 1.0]], dtype=torch.float64)
    big = condition_number(singular)
    assert torch.isinf(big) or big > 1 / torch.finfo(torch.float64).eps
    assert condition_number(singular, eps=1e-3).item() == pytest.approx(2.001 / 1e-3)
    diag = torch.diag(torch.tensor([2.0, 0.0]))
    assert torch.isinf(condition_number(diag))


def test_condition_number_hostile_inputs():
    with pytest.raises(ValueError, match="square"):
        condition_number(torch.ones(2, 3))
    with pytest.raises(ValueError, match="2-D"):
        condition_number(torch.ones(3))
    with pytest.raises(ValueError, match="symmetric"):
        condition_number(torch.tensor([[1.0, 0.5], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="eps"):
        condition_number(torch.eye(2), eps=-1.0)
    assert condition_number(np.eye(2, dtype=np.float32)).dtype == torch.float32


def test_hostile_inputs_to_whiteners():
    with pytest.raises(ValueError, match="eps"):
        ZCAWhitening(eps=-1.0)
    with pytest.raises(RuntimeError, match="not fitted"):
        ZCAWhitening().transform(torch.ones(3, 2))
    with pytest.raises(ValueError, match="2-D"):
        ZCAWhitening().fit(torch.ones(5))
    with pytest.raises(ValueError, match="at least 2 samples"):
        PCAWhitening().fit(torch.ones(1, 3))
    bad = torch.randn(10, 2)
    bad[3, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        ZCAWhitening().fit(bad)
    w = ZCAWhitening().fit(torch.randn(10, 3))
    with pytest.raises(ValueError, match=r"2 features \(shape \(4, 2\)\).*fitted on 3"):
        w.transform(torch.randn(4, 2))


def test_dtypes_devices_and_module_behaviour():
    x32 = torch.from_numpy(correlated_data(seed=9)).float()
    w = ZCAWhitening().fit(x32)
    z = w(x32)
    assert z.dtype == torch.float32 and z.device == x32.device
    # float32 whitening of data with an offset of 50 agrees with float64 to float32 accuracy
    z64 = ZCAWhitening().fit_transform(x32.double())
    np.testing.assert_allclose(z.double().numpy(), z64.numpy(), atol=2e-3)
    # integer input is cast to float; the module moves with .to() and sits in Sequential
    ints = torch.randint(0, 10, (30, 2))
    assert ZCAWhitening().fit_transform(ints).dtype == torch.get_default_dtype()
    w64 = w.to(torch.float64)
    assert w64.whitening_matrix_.dtype == torch.float64
    net = torch.nn.Sequential(w, torch.nn.Linear(4, 1))
    assert net(x32).shape == (400, 1)
    # differentiable with respect to its input
    xr = x32[:5].clone().requires_grad_(True)
    w(xr).sum().backward()
    assert xr.grad is not None and torch.isfinite(xr.grad).all()
    assert "num_features=4" in repr(w)


@pytest.mark.parametrize(
    "matrix",
    [[[1.0, 2.0], [2.0, 1.0]], [[-1.0, 0.0], [0.0, 2.0]], -np.eye(3)],
    ids=["indefinite", "negative-eigenvalue", "negative-definite"],
)
def test_condition_number_of_an_indefinite_matrix_raises(matrix):
    with pytest.raises(ValueError, match="not positive semi-definite"):
        condition_number(matrix)


def test_condition_number_keeps_rounding_negatives_of_a_singular_psd_matrix():
    x = torch.randn(3, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    cov = torch.cov(x.T)  # rank 2: zero eigenvalues come out slightly negative
    assert float(torch.linalg.eigvalsh(cov)[0]) < 1e-12
    assert condition_number(cov) > 1e12
