"""Tests for corrlib.hooks: activation recording, hook removal, per-epoch correlation."""

import math
import warnings

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from corrlib.hooks import (
    ActivationRecorder,
    FeatureCorrelationMonitor,
    as_feature_matrix,
    effective_rank,
    mean_abs_offdiag,
)
from corrlib.models import MLP, SmallCNN


def _no_hooks(model: nn.Module) -> bool:
    return all(not m._forward_hooks for m in model.modules())


@pytest.fixture
def mlp():
    torch.manual_seed(0)
    return MLP(6, hidden=(5, 4), out_features=3)


# -- summaries --------------------------------------------------------------------------------


@pytest.mark.parametrize("d", [1, 2, 5, 17])
def test_effective_rank_of_identity_is_d(d):
    assert float(effective_rank(torch.eye(d, dtype=torch.float64))) == pytest.approx(d, rel=1e-12)


def test_effective_rank_of_rank_one_is_one():
    v = torch.randn(6, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    assert float(effective_rank(v @ v.T)) == pytest.approx(1.0, abs=1e-6)
    assert float(effective_rank(torch.ones(4, 4))) == pytest.approx(1.0, abs=1e-5)


def test_effective_rank_matches_numpy_entropy():
    x = np.random.default_rng(1).normal(size=(30, 5)) @ np.diag([3.0, 2.0, 1.0, 0.5, 0.1])
    c = np.corrcoef(x, rowvar=False)
    s = np.linalg.svd(c, compute_uv=False)
    p = s / s.sum()
    expected = np.exp(-(p * np.log(p)).sum())
    assert float(effective_rank(c)) == pytest.approx(expected, rel=1e-10)
    # two equal eigenvalues and the rest zero: exactly 2
    assert float(effective_rank(np.diag([2.0, 2.0, 0.0]))) == pytest.approx(2.0)


def test_effective_rank_errors():
    with pytest.raises(ValueError, match="NaN"):
        effective_rank(torch.tensor([[1.0, float("nan")], [float("nan"), 1.0]]))
    with pytest.raises(ValueError, match="square"):
        effective_rank(torch.ones(2, 3))
    with pytest.raises(ValueError, match="zero matrix"):
        effective_rank(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="2-D"):
        effective_rank(torch.ones(3))


def test_mean_abs_offdiag_reference_and_nan():
    c = np.array([[1.0, -0.5, 0.2], [-0.5, 1.0, 0.0], [0.2, 0.0, 1.0]])
    assert float(mean_abs_offdiag(c)) == pytest.approx((0.5 + 0.2 + 0.0) * 2 / 6)
    assert float(mean_abs_offdiag(torch.eye(4))) == 0.0
    c_nan = torch.tensor([[1.0, 0.6, float("nan")], [0.6, 1.0, float("nan")], [float("nan")] * 3])
    assert float(mean_abs_offdiag(c_nan)) == pytest.approx(0.6)
    assert math.isnan(float(mean_abs_offdiag(torch.full((2, 2), float("nan")))))
    with pytest.raises(ValueError, match="at least 2 features"):
        mean_abs_offdiag(torch.ones(1, 1))
    with pytest.raises(ValueError, match="square"):
        mean_abs_offdiag(torch.ones(3, 2))


def test_as_feature_matrix_layouts():
    x = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).reshape(2, 3, 2, 2)
    pos = as_feature_matrix(x, "positions")
    assert pos.shape == (8, 3)
    torch.testing.assert_close(pos[:4, 1], x[0, 1].flatten())  # channel 1, image 0
    torch.testing.assert_close(as_feature_matrix(x, "mean"), x.mean(dim=(2, 3)))
    assert as_feature_matrix(torch.ones(4, 2)).shape == (4, 2)
    with pytest.raises(ValueError, match="spatial"):
        as_feature_matrix(x, "max")
    with pytest.raises(ValueError, match=r"\(4,\)"):
        as_feature_matrix(torch.ones(4))


# -- ActivationRecorder -----------------------------------------------------------------------


def test_recorder_records_the_layer_output(mlp):
    x = torch.randn(7, 6)
    with ActivationRecorder(mlp, ["hidden1", "act2"]) as rec:
        assert rec.attached
        mlp(x)
    assert not rec.attached and _no_hooks(mlp)
    torch.testing.assert_close(rec.activations["hidden1"], mlp.hidden1(x))
    expected = torch.relu(mlp.hidden2(torch.relu(mlp.hidden1(x))))
    torch.testing.assert_close(rec.activations["act2"], expected)
    assert not rec.activations["act2"].requires_grad


def test_recorder_keep_graph_allows_backward(mlp):
    x = torch.randn(4, 6)
    with ActivationRecorder(mlp, "act1", detach=False) as rec:
        mlp(x)
    act = rec.activations["act1"]
    assert act.requires_grad
    act.square().sum().backward()
    assert mlp.hidden1.weight.grad is not None
    assert mlp.out.weight.grad is None  # the graph runs through the recorded layer only


def test_recorder_removes_hooks_on_exception(mlp):
    with pytest.raises(RuntimeError, match="boom"):
        with ActivationRecorder(mlp, ["act1", "out"]):
            assert mlp.act1._forward_hooks and mlp.out._forward_hooks
            raise RuntimeError("boom")
    assert _no_hooks(mlp)


def test_recorder_removes_hooks_when_forward_fails(mlp):
    with pytest.raises(RuntimeError):
        with ActivationRecorder(mlp, "act1"):
            mlp(torch.randn(3, 99))  # wrong width
    assert _no_hooks(mlp)


def test_recorder_accumulate_and_stack(mlp):
    x = torch.randn(10, 6)
    with ActivationRecorder(mlp, "act1", accumulate=True) as rec:
        for part in x.split(3):
            mlp(part)
    stacked = rec.stacked("act1")
    assert stacked.shape == (10, 5)
    torch.testing.assert_close(stacked, torch.relu(mlp.hidden1(x)))
    rec.clear()
    assert rec.activations == {}
    with pytest.raises(RuntimeError, match="nothing recorded"):
        rec.stacked("act1")
    with pytest.raises(ValueError, match="not recorded"):
        rec.stacked("act2")
    with pytest.raises(RuntimeError, match="accumulate=True"):
        ActivationRecorder(mlp, "act1").stacked("act1")


def test_recorder_unknown_layer_lists_existing_names(mlp):
    with pytest.raises(ValueError, match=r"no layer named \['acts1'\].*'hidden1'.*'act1'.*'out'"):
        ActivationRecorder(mlp, ["act1", "acts1"])
    assert _no_hooks(mlp)


@pytest.mark.parametrize(
    ("layers", "error", "match"),
    [
        ([], ValueError, "at least one"),
        (["act1", "act1"], ValueError, "more than once"),
        ([3], TypeError, "str"),
    ],
)
def test_recorder_bad_layer_arguments(mlp, layers, error, match):
    with pytest.raises(error, match=match):
        ActivationRecorder(mlp, layers)


def test_recorder_rejects_non_module_and_double_attach(mlp):
    with pytest.raises(TypeError, match="nn.Module"):
        ActivationRecorder(lambda x: x, "act1")
    rec = ActivationRecorder(mlp, "act1").attach()
    try:
        with pytest.raises(RuntimeError, match="already attached"):
            rec.attach()
    finally:
        rec.remove()
    rec.remove()  # idempotent
    assert _no_hooks(mlp)


def test_recorder_refuses_non_tensor_outputs():
    class Pair(nn.Module):
        def forward(self, x):
            return x, x

    model = nn.Sequential()
    model.add_module("pair", Pair())
    with pytest.raises(TypeError, match="'pair' returned tuple"):
        with ActivationRecorder(model, "pair"):
            model(torch.ones(2))
    assert _no_hooks(model)


# -- FeatureCorrelationMonitor -----------------------------------------------------------------


def test_monitor_with_loader_matches_full_batch_corrcoef(mlp):
    x = torch.randn(64, 6, generator=torch.Generator().manual_seed(3))
    loader = DataLoader(TensorDataset(x, torch.zeros(64, dtype=torch.long)), batch_size=10)
    monitor = FeatureCorrelationMonitor(mlp, ["hidden1", "hidden2"], loader)
    mlp.train()
    monitor(0)
    assert mlp.training and _no_hooks(mlp)
    with torch.no_grad():
        h1 = mlp.hidden1(x)
        h2 = mlp.hidden2(torch.relu(h1))
    for name, h in (("hidden1", h1), ("hidden2", h2)):
        expected = np.corrcoef(h.double().numpy(), rowvar=False)
        np.testing.assert_allclose(monitor.matrices[name][0].numpy(), expected, atol=1e-6)
    row = monitor.records[0]
    assert row["epoch"] == 0 and row["layer"] == "hidden1" and row["n_samples"] == 64
    assert row["n_features"] == 5 and row["n_constant"] == 0
    expected = np.corrcoef(h1.double().numpy(), rowvar=False)
    assert row["mean_abs_offdiag"] == pytest.approx(float(mean_abs_offdiag(expected)), abs=1e-6)
    assert row["effective_rank"] == pytest.approx(float(effective_rank(expected)), abs=1e-5)
    monitor(1)
    assert monitor.epochs == [0, 1] and len(monitor.matrices["hidden1"]) == 2
    assert monitor.summary("hidden2", "n_samples") == [64, 64]  # reset between epochs
    frame = monitor.as_dataframe()
    assert list(frame["layer"]) == ["hidden1", "hidden2", "hidden1", "hidden2"]


def test_monitor_training_mode_records_only_training_forwards(mlp):
    monitor = FeatureCorrelationMonitor(mlp, "act1", measure="pooled")
    x = torch.randn(20, 6)
    with monitor:
        mlp.train()
        mlp(x[:12])
        mlp.eval()
        mlp(x[12:])  # e.g. validation: not recorded
    assert _no_hooks(mlp)
    monitor(1)
    assert monitor.records[0]["n_samples"] == 12
    with pytest.raises(RuntimeError, match="fewer than 2 samples"):
        monitor(2)  # nothing recorded since the last epoch


def test_monitor_counts_dead_units_without_warning():
    model = MLP(3, hidden=(4,), out_features=2)
    with torch.no_grad():
        model.hidden1.bias[1] = -100.0  # unit 1 is dead after ReLU: a constant 0
    loader = [(torch.randn(30, 3, generator=torch.Generator().manual_seed(4)), None)]
    monitor = FeatureCorrelationMonitor(model, "act1", loader)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        monitor(1)
    row = monitor.records[0]
    assert row["n_constant"] == 1
    corr = monitor.matrices["act1"][0]
    assert torch.isnan(corr[1]).all() and torch.isfinite(corr[[0, 2, 3]][:, [0, 2, 3]]).all()
    assert math.isfinite(row["mean_abs_offdiag"]) and math.isfinite(row["effective_rank"])


@pytest.mark.parametrize(("spatial", "n_rows"), [("positions", 5 * 8 * 8), ("mean", 5)])
def test_monitor_conv_layers(spatial, n_rows):
    torch.manual_seed(0)
    model = SmallCNN(channels=(4, 6))
    x = torch.randn(5, 1, 8, 8)
    monitor = FeatureCorrelationMonitor(model, "conv1", [(x,)], spatial=spatial)
    monitor(1)
    assert monitor.records[0]["n_samples"] == n_rows
    with torch.no_grad():
        feats = as_feature_matrix(model.conv1(x), spatial).double().numpy()
    np.testing.assert_allclose(
        monitor.matrices["conv1"][0].numpy(), np.corrcoef(feats, rowvar=False), atol=1e-6
    )


def test_monitor_argument_errors(mlp):
    with pytest.raises(ValueError, match="no layer named"):
        FeatureCorrelationMonitor(mlp, "nope", measure="pooled")
    with pytest.raises(ValueError, match="spatial"):
        FeatureCorrelationMonitor(mlp, "act1", measure="pooled", spatial="sum")
    monitor = FeatureCorrelationMonitor(mlp, "act1", measure="pooled")
    with pytest.raises(ValueError, match="not monitored"):
        monitor.summary("act2")


# --------------------------------------------------------------------------------------------
# the split into activations / monitor / summaries, and the shared batch helper


def test_hooks_re_exports_the_modules_that_hold_each_idea():
    import corrlib.activations
    import corrlib.hooks
    import corrlib.monitor
    import corrlib.summaries

    assert corrlib.hooks.ActivationRecorder is corrlib.activations.ActivationRecorder
    assert corrlib.hooks.as_feature_matrix is corrlib.activations.as_feature_matrix
    assert corrlib.hooks.FeatureCorrelationMonitor is corrlib.monitor.FeatureCorrelationMonitor
    assert corrlib.hooks.mean_abs_offdiag is corrlib.summaries.mean_abs_offdiag
    assert corrlib.hooks.effective_rank is corrlib.summaries.effective_rank
    assert sorted(corrlib.hooks.__all__) == sorted(
        ["ActivationRecorder", "FeatureCorrelationMonitor", "as_feature_matrix"]
        + ["effective_rank", "mean_abs_offdiag"]
    )


def test_recorder_training_only_and_on_output(mlp):
    seen = []
    rec = ActivationRecorder(
        mlp, "act1", training_only=True, on_output=lambda name, out: seen.append((name, out))
    )
    x = torch.randn(7, 6)
    with rec:
        mlp.train()
        mlp(x)
        mlp.eval()
        mlp(x[:3])  # left out: eval mode
    assert [(name, out.shape[0]) for name, out in seen] == [("act1", 7)]
    assert not seen[0][1].requires_grad  # detached by default
    assert rec.activations["act1"].shape[0] == 7


def test_monitor_is_built_on_the_recorder(mlp):
    monitor = FeatureCorrelationMonitor(mlp, ["act1", "act2"], measure="pooled")
    assert isinstance(monitor._recorder, ActivationRecorder)
    with monitor:
        assert monitor._recorder.attached and monitor._recorder.training_only
        mlp.train()
        mlp(torch.randn(30, 6))
    assert _no_hooks(mlp)
    monitor(1)
    assert monitor.epochs == [1]
    assert [r["n_samples"] for r in monitor.records] == [30, 30]


def test_monitor_loader_batches_may_be_bare_tensors(mlp):
    x = torch.randn(40, 6, dtype=torch.float64)
    mlp.double()
    monitor = FeatureCorrelationMonitor(mlp, "act1", loader=list(x.split(10)))
    monitor(1)
    with torch.no_grad():
        expected = torch.corrcoef(mlp.act1(mlp.hidden1(x)).T)
    torch.testing.assert_close(monitor.matrices["act1"][0], expected)
    bad = FeatureCorrelationMonitor(mlp, "act1", loader=[("not a tensor", 0)])
    with pytest.raises(TypeError, match="tensor or an"):
        bad(1)
    assert _no_hooks(mlp)


def test_shared_device_and_batch_helpers(mlp):
    from corrlib import _batches

    assert _batches.model_device(mlp) == torch.device("cpu")
    assert _batches.model_device(nn.ReLU()) == torch.device("cpu")
    assert _batches.resolve_device(mlp, "cpu") == torch.device("cpu")
    x, y = _batches.split_batch((torch.zeros(2, 6), torch.zeros(2)), torch.device("cpu"))
    assert x.shape == (2, 6) and y.shape == (2,)
    with pytest.raises(TypeError, match="pairs"):
        _batches.split_batch(torch.zeros(2, 6), torch.device("cpu"))
    assert _batches.batch_inputs(torch.ones(3), torch.device("cpu")).shape == (3,)


def test_ddp_example_uses_the_library_summary():
    from pathlib import Path

    source = (Path(__file__).parents[1] / "examples" / "ddp_feature_correlation.py").read_text()
    assert "from corrlib.summaries import mean_abs_offdiag" in source
    assert "def _mean_abs_offdiag" not in source


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_summaries_of_half_precision_matrices_are_computed_in_float32(dtype):
    # magnitude ~300 over 64 x 64 entries: a float16 sum of the entries would overflow
    c = 300 * torch.randn(64, 64, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    c = c.to(dtype)
    reference = c.double()
    for fn in (mean_abs_offdiag, effective_rank):
        value = fn(c)
        assert value.dtype == dtype and bool(torch.isfinite(value))
        expected = float(fn(reference))
        assert float(value) == pytest.approx(expected, rel=torch.finfo(dtype).eps)


# -- FeatureCorrelationMonitor(measure=...) -------------------------------------------------------


def test_monitor_measures_after_the_epoch_by_default(mlp):
    x = torch.randn(40, 6, generator=torch.Generator().manual_seed(8))
    monitor = FeatureCorrelationMonitor(mlp, "act1", [(x,)])
    assert monitor.measure == "after_epoch"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        explicit = FeatureCorrelationMonitor(mlp, "act1", [(x,)], measure="after_epoch")
    mlp.train()
    mlp(torch.randn(25, 6))  # a training forward is not recorded
    monitor(1)
    explicit(1)
    assert monitor.records[0]["n_samples"] == explicit.records[0]["n_samples"] == 40
    torch.testing.assert_close(monitor.matrices["act1"][0], explicit.matrices["act1"][0])


def test_monitor_after_epoch_needs_a_loader(mlp):
    with pytest.raises(ValueError, match="measure='pooled'"):
        FeatureCorrelationMonitor(mlp, "act1", measure="after_epoch")
    with pytest.raises(ValueError, match="no loader"):
        FeatureCorrelationMonitor(mlp, "act1", [(torch.randn(8, 6),)], measure="pooled")
    with pytest.raises(ValueError, match="measure must be"):
        FeatureCorrelationMonitor(mlp, "act1", measure="during")


def test_monitor_pooled_by_name_records_the_training_batches(mlp):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        monitor = FeatureCorrelationMonitor(mlp, "act1", measure="pooled")
    assert monitor.measure == "pooled"
    with monitor:
        mlp.train()
        mlp(torch.randn(15, 6))
    monitor(1)
    assert monitor.records[0]["n_samples"] == 15


def test_monitor_without_loader_or_measure_is_deprecated_and_pools(mlp):
    with pytest.warns(FutureWarning, match="measure='pooled'") as caught:
        monitor = FeatureCorrelationMonitor(mlp, "act1")
    assert "loader" in str(caught[0].message) and caught[0].filename == __file__
    assert monitor.measure == "pooled"
    with monitor:
        mlp.train()
        mlp(torch.randn(12, 6))
    monitor(1)
    assert monitor.records[0]["n_samples"] == 12
