"""The shared input checks in corrlib._validation: square, symmetric, exactly constant."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from corrlib._validation import check_square, check_symmetric, constant_columns


@pytest.mark.parametrize("shape", [(), (3,), (2, 3), (0, 0), (2, 2, 2)])
def test_check_square_names_argument_and_shape(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=r"^C must be .*square.*" + re_shape(shape)):
        check_square(torch.zeros(shape), "C")


def re_shape(shape: tuple[int, ...]) -> str:
    return "got shape " + str(shape).replace("(", r"\(").replace(")", r"\)")


def test_check_square_accepts_square() -> None:
    check_square(torch.eye(3), "C")


def test_check_symmetric_tolerance_scales_with_dtype_and_magnitude() -> None:
    c = torch.eye(3, dtype=torch.float64)
    c[0, 1] = 1e-14  # below 1e3 * eps64 = 2.2e-13
    check_symmetric(c, "C")
    c[0, 1] = 1e-9
    with pytest.raises(ValueError, match="C of shape \\(3, 3\\) is not symmetric"):
        check_symmetric(c, "C")
    check_symmetric(c.float(), "C")  # 1e-9 is within float32's 1.2e-4
    big = torch.eye(3, dtype=torch.float64) * 1e6
    big[0, 1] = 1e-8  # relative to the largest entry 1e6
    check_symmetric(big, "C")


def test_check_symmetric_nan_rule() -> None:
    c = torch.eye(3)
    c[0, :] = float("nan")
    c[:, 0] = float("nan")
    check_symmetric(c, "C")  # mirrored NaNs (a constant feature's row and column)
    c[0, 1] = 0.0
    with pytest.raises(ValueError, match="not symmetric"):
        check_symmetric(c, "C")  # NaN facing a number
    inf = torch.eye(2)
    inf[0, 1] = inf[1, 0] = float("inf")
    check_symmetric(inf, "C")
    inf[1, 0] = 1.0
    with pytest.raises(ValueError, match="not symmetric"):
        check_symmetric(inf, "C")


def test_check_symmetric_half_precision_uses_float32_tolerance() -> None:
    c = torch.eye(2, dtype=torch.float16)
    c[0, 1] = 1e-3  # 1e3 * eps16 would allow 1; float32's 1.2e-4 does not
    with pytest.raises(ValueError, match="not symmetric"):
        check_symmetric(c, "C")


def test_constant_columns_exact_rule() -> None:
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(size=(50, 5)))
    x[:, 1] = 0.1
    x[:, 2] = 1e-9 * x[:, 2]  # tiny scale is not constant
    x[:, 3] = float("nan")
    x[:, 4] = 1e300
    expected = torch.tensor([False, True, False, False, True])
    assert torch.equal(constant_columns(x), expected)
    assert bool(constant_columns(torch.full((4,), 3.0)))
    assert not bool(constant_columns(torch.tensor([1.0, 2.0])))


def test_constant_columns_residue_after_centring_is_not_variance() -> None:
    x = torch.full((1000, 1), 0.1, dtype=torch.float32)
    assert float(((x - x.mean(dim=0)) ** 2).sum()) > 0  # centring leaves a residue here
    assert bool(constant_columns(x)[0])
    assert not bool(constant_columns(x + torch.arange(1000.0)[:, None] * 1e-9)[0])
