"""One input gate: positive integers, byte order, scalars, empty and bfloat16 ranks."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.stats
import torch

import corrlib
from corrlib._validation import check_positive_int
from corrlib.bootstrap import bootstrap_ci
from corrlib.data import train_val_split
from corrlib.models import MLP, SmallCNN
from corrlib.ranking import rankdata

INTEGERS = [
    3,
    np.int64(3),
    np.int32(3),
    np.uint8(3),
    torch.tensor(3),
    torch.tensor(3, dtype=torch.int32),
]
NOT_INTEGERS = [
    True,
    np.bool_(True),
    3.0,
    np.float64(3.0),
    torch.tensor(3.0),
    torch.tensor([3]),
    "3",
    None,
]


@pytest.mark.parametrize("value", INTEGERS, ids=repr)
def test_positive_int_accepts_python_numpy_and_0d_tensor_integers(value):
    out = check_positive_int(value, "size")
    assert out == 3 and type(out) is int


@pytest.mark.parametrize("value", NOT_INTEGERS + [0, -2, np.int64(0), torch.tensor(-1)], ids=repr)
def test_positive_int_refuses_bools_floats_and_non_positive_values_naming_the_parameter(value):
    with pytest.raises(ValueError, match=r"^size must be a positive integer, got "):
        check_positive_int(value, "size")


def test_positive_int_allows_none_only_when_asked():
    assert check_positive_int(None, "chunk_size", allow_none=True) is None
    with pytest.raises(ValueError, match="chunk_size must be a positive integer or None"):
        check_positive_int(0, "chunk_size", allow_none=True)


@pytest.mark.parametrize("count", [np.int64(4), torch.tensor(4)], ids=repr)
def test_every_count_takes_numpy_and_tensor_integers(count):
    assert corrlib.RunningCorrelation(count).num_features == 4
    assert MLP(count, hidden=count, out_features=count)[-1].out_features == 4
    assert SmallCNN(count, count, channels=(count,))
    x = torch.randn(30, generator=torch.Generator().manual_seed(0))
    low, high = bootstrap_ci(x, torch.mean, n_resamples=count * 10, rng=np.int64(1))
    assert low < high
    corrlib.corr_matrix(torch.randn(10, 2), chunk_size=count)
    train, val = train_val_split(np.int64(10), 0.2, seed=0)
    assert len(train) == 8 and len(val) == 2
    assert corrlib.fisher_ci(0.5, count).low < 0.5


@pytest.mark.parametrize(
    "call",
    [
        lambda v: corrlib.RunningCorrelation(v),
        lambda v: MLP(v),
        lambda v: MLP(4, hidden=(v,)),
        lambda v: SmallCNN(v),
        lambda v: bootstrap_ci(torch.ones(5), torch.mean, n_resamples=v),
        lambda v: corrlib.corr_matrix(torch.randn(10, 2), chunk_size=v),
    ],
)
@pytest.mark.parametrize("bad", [True, 2.0, 0, torch.tensor(2.0)], ids=repr)
def test_every_count_refuses_bools_floats_and_zero(call, bad):
    with pytest.raises(ValueError, match="must be a positive integer"):
        call(bad)


# -- byte order -----------------------------------------------------------------------------


def test_big_endian_arrays_are_accepted_like_native_ones():
    big = np.arange(6, dtype=">f8") ** 1.5
    other = np.array([2.0, 1.0, 4.0, 3.0, 6.0, 5.0], dtype=">f4")
    native = big.astype("<f8")
    assert torch.equal(corrlib.pearson(big, other), corrlib.pearson(native, other.astype("<f4")))
    assert float(corrlib.spearman(big, other)) == pytest.approx(
        scipy.stats.spearmanr(native, other.astype("<f4")).statistic
    )
    matrix = np.stack([big, other.astype(">f8")], axis=1)
    torch.testing.assert_close(
        corrlib.corr_matrix(matrix), corrlib.corr_matrix(matrix.astype("<f8"))
    )
    torch.testing.assert_close(corrlib.autocorr(big, 2), corrlib.autocorr(native, 2))
    ints = np.arange(6, dtype=">i4")
    assert float(corrlib.pearson(ints, native)) == pytest.approx(
        scipy.stats.pearsonr(ints.astype("<i4"), native).statistic
    )
    assert corrlib.pearson_test(big, other).statistic == pytest.approx(
        scipy.stats.pearsonr(native, other.astype("<f4")).statistic
    )


def test_big_endian_arrays_work_in_the_stream_and_cka():
    big = np.random.default_rng(0).normal(size=(20, 3)).astype(">f8")
    rc = corrlib.RunningCorrelation(3, dtype=torch.float64)
    rc.update(big)
    torch.testing.assert_close(rc.compute(), corrlib.corr_matrix(big.astype("<f8")))
    from corrlib.similarity import linear_cka

    assert float(linear_cka(big, big)) == pytest.approx(1.0)


# -- scalars and empty inputs ---------------------------------------------------------------


def test_pearson_of_two_scalars_says_it_got_a_scalar():
    with pytest.raises(ValueError, match=r"x must be 1-D .*got a scalar"):
        corrlib.pearson(3.0, 4.0)
    with pytest.raises(ValueError, match=r"got a scalar"):
        corrlib.spearman(torch.tensor(3.0), [1.0, 2.0])


def test_rankdata_of_empty_input_is_empty_like_scipy():
    expected = scipy.stats.rankdata([])
    out = rankdata(torch.tensor([]))
    assert out.shape == expected.shape == (0,)
    assert out.dtype == torch.float64
    assert rankdata(torch.empty(0, 3)).shape == scipy.stats.rankdata(np.empty((0, 3)), axis=0).shape


def test_spearman_of_empty_samples_is_nan_like_scipy():
    with warnings.catch_warnings(record=True) as ours:
        warnings.simplefilter("always")
        rho = corrlib.spearman([], [])
        res = corrlib.spearman_test([], [])
    with warnings.catch_warnings(record=True) as theirs:
        warnings.simplefilter("always")
        expected = scipy.stats.spearmanr([], [])
    assert torch.isnan(rho) and rho.ndim == 0
    assert np.isnan(expected.statistic)
    assert np.isnan(res.statistic) and np.isnan(res.pvalue)
    assert [w.category for w in ours] == [w.category for w in theirs] * 2


@pytest.mark.parametrize("device", ["cpu"])
def test_rankdata_of_bfloat16_ranks_like_float32(device):
    x = torch.tensor([3.0, 1.0, 2.0, 2.0, 5.0], dtype=torch.bfloat16, device=device)
    ranks = rankdata(x)
    expected = scipy.stats.rankdata(x.float().numpy())
    np.testing.assert_array_equal(ranks.cpu().numpy(), expected)
    assert ranks.dtype == rankdata(x.float()).dtype
    y = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0], dtype=torch.bfloat16)
    rho = corrlib.spearman(x, y)
    assert rho.dtype == torch.bfloat16
    assert float(rho) == pytest.approx(
        scipy.stats.spearmanr(x.float(), y.float()).statistic, abs=1e-2
    )
