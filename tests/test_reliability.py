"""The five reliability classes of issue 20, each against the peer library, and the op count.

1. no call changes a later call (inference mode, a default device, threads);
2. integer and boolean inputs under ``nan_policy="omit"`` (scipy, pandas);
3. pairwise-complete Pearson at any scale and level (pandas);
4. extreme scales elsewhere (``partial_corr`` against statsmodels-free float64 numpy, CKA);
5. one input gate: integers are computed exactly everywhere.
"""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats
from torch.utils._python_dispatch import TorchDispatchMode

import corrlib
from corrlib import RunningCorrelation
from corrlib.losses import correlation_loss
from corrlib.similarity import MinibatchCKA, cka_matrix, linear_cka


def _data(n: int, d: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g) + torch.randn(n, 1, generator=g)


def _inputs() -> tuple[torch.Tensor, torch.Tensor]:
    x = _data(3000, 6)
    holes = x.double().clone()
    holes[::7, 2] = float("nan")
    return x, holes


def _calls(x: torch.Tensor, holes: torch.Tensor) -> dict[str, torch.Tensor]:
    """A result of every stateful or buffered entry point, on CPU data."""
    rc = RunningCorrelation(6)
    for part in x.split(700):
        rc.update(part)
    acc = MinibatchCKA()
    for part in x.split(500):
        acc.update(part, part[:, :3] * 2)
    return {
        "corr_matrix": corrlib.corr_matrix(x),
        "cross": corrlib.corr_matrix(x, x[:, :2] + 1),
        "pearson": corrlib.pearson(x[:, 0], x[:, 1]),
        "spearman": corrlib.corr_matrix(x, method="spearman"),
        "omit": corrlib.corr_matrix(holes, nan_policy="omit"),
        "stream": rc.compute(),
        "cka": acc.compute(),
        "linear_cka": linear_cka(x, x[:, :3]),
        "partial": corrlib.partial_corr(x),
    }


# --- 1. no call changes a later call -------------------------------------------------------


def test_calls_inside_inference_mode_and_a_default_device_change_nothing_later() -> None:
    data = _inputs()
    before = _calls(*data)
    with torch.inference_mode():
        inside = _calls(*data)
    with torch.device("meta"):  # a stand-in for torch.set_default_device("cuda")
        on_meta_default = _calls(*data)
    after = _calls(*data)
    for name, value in before.items():
        for other in (inside, on_meta_default, after):
            assert other[name].device.type == "cpu", name
            torch.testing.assert_close(other[name], value, rtol=0, atol=0, equal_nan=True)


def test_stream_objects_work_after_an_epoch_under_inference_mode() -> None:
    x = _data(400, 4)
    rc, acc = RunningCorrelation(4), MinibatchCKA()
    with torch.inference_mode():  # evaluation
        rc.update(x[:200])
        acc.update(x[:100], x[:100, :2])
    rc.update(x[200:])  # training again
    acc.update(x[100:200], x[100:200, :2])
    torch.testing.assert_close(rc.compute(), corrlib.corr_matrix(x), atol=1e-5, rtol=0)
    rc.reset()
    acc.reset()
    with torch.inference_mode():
        rc.update(x)
    rc.reset().update(x)
    acc.update(x[:100], x[:100, :2])
    assert rc.n == 400 and acc.n_batches == 1
    with torch.device("meta"):
        fresh = RunningCorrelation(4)
        fresh_cka = MinibatchCKA()
    fresh.update(x)
    fresh_cka.update(x[:100], x[:100, :2])
    torch.testing.assert_close(fresh.compute(), rc.compute())


def test_evaluation_then_training_loop_with_gradients() -> None:
    x = _data(256, 8).requires_grad_(True)
    for _ in range(3):
        with torch.no_grad():
            corrlib.corr_matrix(x)
        with torch.inference_mode():
            corrlib.corr_matrix(x.detach())
        corrlib.corr_matrix(x)[0, 1].backward()
    grad = x.grad.clone()
    x.grad = None
    for _ in range(3):
        torch.corrcoef(x.T)[0, 1].backward()
    torch.testing.assert_close(grad, x.grad, rtol=1e-4, atol=1e-6)


def test_threads_of_different_shapes_do_not_mix_results() -> None:
    shapes = [(5000, 3), (3000, 130), (64, 8), (10_000, 40)]
    inputs = [_data(n, d, seed=i) for i, (n, d) in enumerate(shapes)]
    expected = [corrlib.corr_matrix(t) for t in inputs]
    errors: list[str] = []

    def work(i: int) -> None:
        for _ in range(5):
            got = corrlib.corr_matrix(inputs[i])
            if not torch.equal(got, expected[i]):
                errors.append(f"shape {shapes[i]}")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(shapes))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


# --- 2. integer and boolean inputs under nan_policy="omit" ---------------------------------


@pytest.mark.parametrize("dtype", [np.bool_, np.int32, np.uint8, np.int64])
@pytest.mark.parametrize("method", ["spearman", "pearson"])
def test_integer_labels_against_float_features_with_nan(dtype, method) -> None:
    rng = np.random.default_rng(1)
    labels = (rng.random((40, 2)) < 0.5).astype(dtype)
    features = labels[:, :1] + rng.normal(size=(40, 3)).astype(np.float32)
    features[rng.random((40, 3)) < 0.2] = np.nan
    features[:, 2] = np.round(features[:, 2])  # ties
    frame = pd.DataFrame(np.hstack([labels.astype(np.float64), features.astype(np.float64)]))
    expected = frame.corr(method=method).to_numpy()
    got = corrlib.corr_matrix(labels, features, method=method, nan_policy="omit")
    np.testing.assert_allclose(got.double().numpy(), expected[:2, 2:], atol=1e-6)
    got_t = corrlib.corr_matrix(
        features, torch.from_numpy(labels), method=method, nan_policy="omit"
    )
    np.testing.assert_allclose(got_t.double().numpy(), expected[2:, :2], atol=1e-6)
    keep = ~np.isnan(features[:, 0])
    ref = stats.spearmanr if method == "spearman" else stats.pearsonr
    two = corrlib.spearman if method == "spearman" else corrlib.pearson
    value = ref(labels[keep, 0].astype(np.float64), features[keep, 0].astype(np.float64))
    assert float(two(labels[:, 0], features[:, 0], nan_policy="omit")) == pytest.approx(
        value.statistic, abs=1e-6
    )


# --- 3. pairwise-complete Pearson at any scale and level -----------------------------------


def _level_shift(shift: float, dtype) -> np.ndarray:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1000, 3))
    x[:, 1] = 0.6 * x[:, 0] + 0.8 * x[:, 1]
    x[:500, 0] += shift  # the level moves where the partner is missing
    x[:500, 1] = np.nan
    x[rng.random(1000) < 0.1, 2] = np.nan
    return x.astype(dtype)


@pytest.mark.parametrize(
    ("shift", "dtype", "tol"), [(1e3, np.float32, 1e-5), (1e5, np.float64, 1e-10)]
)
def test_omit_centres_each_pair_on_its_own_rows(shift, dtype, tol) -> None:
    x = _level_shift(shift, dtype)
    expected = pd.DataFrame(x.astype(np.float64)).corr().to_numpy()
    got = corrlib.corr_matrix(x, nan_policy="omit").double().numpy()
    np.testing.assert_allclose(got, expected, atol=tol)


@pytest.mark.parametrize(
    ("scale", "dtype"),
    [(1e-22, np.float32), (1e22, np.float32), (1e-170, np.float64), (1e170, np.float64)],
)
def test_omit_at_extreme_scales(scale, dtype) -> None:
    x = _level_shift(0.0, np.float64)
    expected = pd.DataFrame(x).corr().to_numpy()
    got = corrlib.corr_matrix((x * scale).astype(dtype), nan_policy="omit").double().numpy()
    tol = 1e-5 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(got, expected, atol=tol)
    for method in ("pearson", "spearman"):
        two = corrlib.corr_matrix(x * scale, method=method, nan_policy="omit")
        np.testing.assert_allclose(
            two.double().numpy(), pd.DataFrame(x).corr(method=method).to_numpy(), atol=1e-6
        )


# --- 4. extreme scales elsewhere -----------------------------------------------------------


@pytest.mark.parametrize("scale", [1e-20, 1e20])
def test_partial_corr_of_float32_at_extreme_scales(scale) -> None:
    x = _data(300, 4).double()
    x[:, 1] += x[:, 0]
    precision = np.linalg.inv(np.cov(x.numpy(), rowvar=False))
    d = np.sqrt(np.diag(precision))
    expected = -precision / np.outer(d, d)
    np.fill_diagonal(expected, 1.0)
    got = corrlib.partial_corr((x * scale).float())
    np.testing.assert_allclose(got.double().numpy(), expected, atol=1e-5)


@pytest.mark.parametrize("scale", [1e-12, 1e9])
def test_cka_is_scale_invariant_numerically(scale) -> None:
    a = _data(500, 16)
    b = a @ torch.randn(16, 16, generator=torch.Generator().manual_seed(1))
    ref = float(linear_cka(a.double(), b.double()))
    assert float(linear_cka(a * scale, 2 * a * scale)) == pytest.approx(1.0, abs=1e-6)
    assert float(linear_cka(a * scale, b * scale)) == pytest.approx(ref, abs=1e-5)
    ref_d = cka_matrix([a.double(), b.double()], debiased=True)
    got_d = cka_matrix([a * scale, b], debiased=True)
    torch.testing.assert_close(got_d.double(), ref_d, atol=1e-5, rtol=0)
    acc, acc_ref = MinibatchCKA(), MinibatchCKA()
    for i in range(0, 500, 100):
        acc.update(a[i : i + 100] * scale, b[i : i + 100])
        acc_ref.update(a[i : i + 100].double(), b[i : i + 100].double())
    assert float(acc.compute()) == pytest.approx(float(acc_ref.compute()), abs=1e-5)


# --- 5. one input gate: integers are computed exactly everywhere ---------------------------


def test_integer_timestamps_through_every_gate() -> None:
    t = 1_700_000_000 + np.arange(500, dtype=np.int64) * 3
    assert float(corrlib.pearson(t, t)) == 1.0
    assert float(1 - correlation_loss(torch.from_numpy(t), torch.from_numpy(t))) == 1.0
    assert correlation_loss(torch.from_numpy(t), torch.from_numpy(t)).dtype == torch.float32
    c = np.array([[10**9 + 1, 10**9], [10**9, 10**9 + 1]], dtype=np.int64)
    from corrlib import summaries

    assert float(summaries.mean_abs_offdiag(c)) == 10**9
    images = torch.full((4, 1, 2, 2), 2**25 + 1, dtype=torch.int64)
    mean, _ = corrlib.data.channel_stats(images)
    assert float(mean.double()) == pytest.approx(2**25 + 1, rel=1e-7)


# --- the op count: one product, one host sync ----------------------------------------------


class _Ops(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.append(str(func))
        return func(*args, **(kwargs or {}))


SIZES = [(64, 8), (256, 16), (128, 64), (512, 64), (128, 256), (2048, 128)]


@pytest.mark.parametrize(("n", "d"), SIZES)
def test_at_most_30_ops_and_one_host_sync_per_call(n: int, d: int) -> None:
    x = _data(n, d)
    a, b = x[:, 0].contiguous(), x[:, 1].contiguous()
    few, many = _data(n, 3, seed=1), _data(n, 64, seed=1)
    calls = (
        lambda: corrlib.corr_matrix(x),
        lambda: corrlib.pearson(a, b),
        lambda: corrlib.corr_matrix(x, few),  # stacked into one product if 3 + d <= 64
        lambda: corrlib.corr_matrix(x, many),  # always the cross product of x and y
    )
    for call in calls:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with _Ops() as ops:
                call()
        assert len(ops.names) <= 30, ops.names
        assert ops.names.count("aten._local_scalar_dense.default") <= 1, ops.names


@pytest.mark.parametrize(("n", "d"), [(256, 16), (20_000, 64)])
def test_one_nan_under_propagate_multiplies_once(n: int, d: int) -> None:
    clean = _data(n, d)
    holed = clean.clone()
    holed[n // 2, 3] = float("nan")
    counts = []
    for x in (clean, holed):
        with _Ops() as ops:
            r = corrlib.corr_matrix(x)
        counts.append(sum(name.startswith(("aten.mm", "aten.addmm")) for name in ops.names))
    assert counts[1] == counts[0], counts
    assert torch.isnan(r[3]).all() and torch.isnan(r[:, 3]).all()
    others = [i for i in range(d) if i != 3]
    expected = corrlib.corr_matrix(clean[:, others])
    torch.testing.assert_close(r[others][:, others], expected)


class _BigOutputs(TorchDispatchMode):
    """Counts the ops whose output is at least as large as the data (passes over the data)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size, self.names = size, []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if isinstance(out, torch.Tensor) and out.numel() >= self.size:
            self.names.append(str(func))
        return out


def test_one_nan_reads_the_data_no_more_often_than_clean_data() -> None:
    clean = _data(20_000, 64)
    holed = clean.clone()
    holed[7, 5] = float("nan")
    passes = []
    for x in (clean, holed):
        with _BigOutputs(x.numel()) as mode:
            corrlib.corr_matrix(x)
        passes.append(mode.names)
    assert passes[1] == passes[0], passes


@pytest.mark.parametrize(
    ("n", "d_x", "d_y"), [(40, 5, None), (40, 5, 3), (300, 40, 50), (3000, 6, None)]
)
@pytest.mark.parametrize("offset", [0.0, 1e3])
def test_gradient_equals_torch_corrcoefs(n: int, d_x: int, d_y: int | None, offset: float) -> None:
    g = torch.Generator().manual_seed(n + d_x)
    x = (torch.randn(n, d_x, generator=g, dtype=torch.float64) + offset).requires_grad_()
    y = None if d_y is None else torch.randn(n, d_y, generator=g, dtype=torch.float64)
    y = None if y is None else y.requires_grad_()
    ours = corrlib.corr_matrix(x, y)
    both = x if y is None else torch.cat([x, y], dim=1)
    reference = torch.corrcoef(both.T)
    if y is not None:
        reference = reference[:d_x, d_x:]
    weights = torch.randn(ours.shape, generator=g, dtype=torch.float64)
    inputs = (x,) if y is None else (x, y)
    got = torch.autograd.grad((ours * weights).sum(), inputs)
    want = torch.autograd.grad((reference * weights).sum(), inputs)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-9)


def test_second_derivatives_of_the_matrix_and_the_cross_block() -> None:
    g = torch.Generator().manual_seed(3)
    x = torch.randn(12, 3, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randn(12, 2, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda a: corrlib.corr_matrix(a), (x,))
    assert torch.autograd.gradgradcheck(lambda a, b: corrlib.corr_matrix(a, b), (x, y))
    only_x = lambda a: corrlib.corr_matrix(a, y.detach())  # noqa: E731
    assert torch.autograd.gradcheck(only_x, (x,))
