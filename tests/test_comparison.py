"""Tests for corrlib.comparison: paired differences against scipy's paired t statistic."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from corrlib.comparison import paired_difference


def test_mean_and_se_match_scipy_paired_t():
    rng = np.random.default_rng(0)
    a = rng.normal(size=7)
    b = a - 0.3 + rng.normal(scale=0.1, size=7)
    res = paired_difference(a, b)
    d = a - b
    assert res.n == 7 and res.differences == pytest.approx(tuple(d))
    assert res.mean == pytest.approx(d.mean())
    assert res.se == pytest.approx(stats.sem(d))
    assert res.z == pytest.approx(stats.ttest_rel(a, b).statistic)


def test_accepts_tensors_and_formats():
    res = paired_difference(torch.tensor([1.0, 2.0, 4.0]), [1.0, 1.0, 1.0])
    assert res.format(2) == "+1.33 ± 0.88 (n = 3 seeds)"
    assert str(res).startswith("+1.333 ± 0.882")


def test_zero_se():
    assert paired_difference([1.0, 2.0], [0.0, 1.0]).z == math.inf
    assert paired_difference([1.0, 2.0], [1.0, 2.0]).z == 0.0


@pytest.mark.parametrize(
    ("a", "b", "match"),
    [
        ([1.0], [2.0], "at least 2"),
        ([1.0, 2.0], [1.0, 2.0, 3.0], "one value per seed"),
        ([[1.0, 2.0]], [[1.0, 2.0]], "1-D"),
        ([1.0, float("nan")], [1.0, 2.0], "not finite"),
    ],
)
def test_bad_input(a, b, match):
    with pytest.raises(ValueError, match=match):
        paired_difference(a, b)
