"""The base RunningCorrelation and MinibatchCKA share (corrlib._stateful): the same errors,
dtype rule, sync/unsync, forward and saving for both."""

import pytest
import torch
from torch import nn

import corrlib
import corrlib._stateful
from corrlib import RunningCorrelation
from corrlib.similarity import MinibatchCKA


def _data(n: int = 400, d: int = 4, offset: float = 5.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    return x + torch.randn(n, 1, generator=g, dtype=torch.float64) + offset


def _fed(kind: str, x: torch.Tensor):
    """A RunningCorrelation or a MinibatchCKA fed ``x`` in batches of 50."""
    stat = RunningCorrelation(x.shape[1]) if kind == "rc" else MinibatchCKA()
    for b in x.split(50):
        stat.update(b) if kind == "rc" else stat.update(b, b[:, :2] ** 2)
    return stat


KINDS = ["rc", "cka"]


@pytest.mark.parametrize("kind", KINDS)
def test_empty_compute_raises_runtime_error_in_both(kind):
    stat = _fed(kind, _data()[:0]) if kind == "rc" else MinibatchCKA()
    with pytest.raises(RuntimeError, match="before any update"):
        stat.compute()
    with pytest.raises(RuntimeError, match="before any update"):
        _fed(kind, _data()).reset().compute()
    if kind == "rc":
        with pytest.raises(RuntimeError, match="before any update"):
            stat.covariance()


@pytest.mark.parametrize("cast", ["half", "float", "double", "bfloat16", "to_float16"])
def test_casting_a_parent_model_leaves_the_accumulators_alone(cast):
    x = _data(4000)
    model = nn.Sequential(nn.Linear(4, 4))
    rc = RunningCorrelation(4)
    model.add_module("stats", rc)
    rc.update(x[:100].float())
    if cast == "to_float16":
        model.to(torch.float16)
    else:
        getattr(model, cast)()
    assert model[0].weight.dtype != torch.float32 or cast == "float"  # the model was cast
    assert rc.comoment.dtype == rc.shifted_mean.dtype == torch.float64
    assert rc.shift.dtype == torch.float32 and rc.count.dtype == torch.int64
    for b in x[100:].float().split(100):
        rc.update(b)
    exact = corrlib.corr_matrix(x.float().double())
    assert (rc.compute().double() - exact).abs().max() < 1e-6  # 1.7e-3 when the state was cast
    acc = MinibatchCKA().update(x[:64], x[:64, :2])
    model.add_module("cka", acc)
    getattr(model, "half" if cast == "to_float16" else cast)()
    assert acc.cross.dtype == torch.float64 and acc.varies_x.dtype == torch.bool


def test_moving_a_parent_still_moves_the_states():
    model = nn.Sequential(nn.Linear(3, 3))
    model.add_module("stats", RunningCorrelation(3).update(_data(d=3)))
    model.add_module("cka", MinibatchCKA().update(_data(d=3)[:8], _data(d=3)[:8, :1]))
    model.to("meta")
    for state in [*model.stats.buffers(), *model.cka.buffers()]:
        assert state.device.type == "meta"
    assert model.stats.comoment.dtype == torch.float64 and model.stats.count.dtype == torch.int64


@pytest.mark.parametrize("kind", KINDS)
def test_set_dtype_is_the_explicit_way(kind):
    x = _data()
    stat = _fed(kind, x)
    accumulators = ["comoment", "shifted_mean"] if kind == "rc" else ["cross", "self_x", "self_y"]
    before = stat.compute()
    assert stat.set_dtype(torch.float32) is stat
    assert all(getattr(stat, name).dtype == torch.float32 for name in accumulators)
    torch.testing.assert_close(stat.compute(), before, atol=1e-5, rtol=0)
    stat.to(torch.float16)  # a cast does not undo it either
    assert all(getattr(stat, name).dtype == torch.float32 for name in accumulators)
    stat.reset()  # nor does reset
    assert all(getattr(stat, name).dtype == torch.float32 for name in accumulators)
    stat.set_dtype(torch.float64)
    assert all(getattr(stat, name).dtype == torch.float64 for name in accumulators)
    with pytest.raises(TypeError, match="floating"):
        stat.set_dtype(torch.int32)


@pytest.mark.parametrize("kind", KINDS)
def test_the_accumulator_dtype_follows_the_device(kind, monkeypatch):
    """float64 where the device has it, float32 where not (MPS; faked here on the CPU)."""
    x = _data()
    expected = _fed(kind, x).compute()
    accumulator = "comoment" if kind == "rc" else "cross"
    stat = _fed(kind, x[:200])
    assert getattr(stat, accumulator).dtype == torch.float64
    monkeypatch.setattr(corrlib._stateful, "supports_float64", lambda device: False)
    stat.to("cpu")  # moving re-derives it
    assert getattr(stat, accumulator).dtype == torch.float32
    for b in x[200:].split(50):
        stat.update(b) if kind == "rc" else stat.update(b, b[:, :2] ** 2)
    torch.testing.assert_close(stat.compute(), expected, atol=1e-5, rtol=0)
    fresh = RunningCorrelation(4) if kind == "rc" else MinibatchCKA().update(x[:8], x[:8, :2])
    assert getattr(fresh, accumulator).dtype == torch.float32
    monkeypatch.undo()
    stat.to("cpu")
    assert getattr(stat, accumulator).dtype == torch.float64


@pytest.mark.parametrize("kind", KINDS)
def test_sync_twice_raises_and_unsync_restores(kind):
    """Without a process group the local state is the global one; the rules are the same."""
    x = _data()
    stat = _fed(kind, x)
    local = stat.compute()
    with pytest.raises(RuntimeError, match="not synced"):
        stat.unsync()
    assert stat.sync() is stat
    torch.testing.assert_close(stat.compute(), local)
    with pytest.raises(RuntimeError, match="synced already"):
        stat.sync()
    with pytest.raises(RuntimeError, match="unsync"):
        stat.update(x[:50]) if kind == "rc" else stat.update(x[:50], x[:50, :2])
    with pytest.raises(RuntimeError, match="unsync"):
        stat.merge(_fed(kind, x))
    assert stat.unsync() is stat
    torch.testing.assert_close(stat.compute(), local)
    stat.sync().reset()  # reset forgets the synced state too
    stat.sync()


@pytest.mark.parametrize("kind", KINDS)
def test_calling_updates_and_returns_the_batch_value(kind):
    x = _data()
    stat, ref = _fed(kind, x[:200]), _fed(kind, x[:200])
    batch = x[200:260]
    args = (batch,) if kind == "rc" else (batch, batch[:, :2] ** 2)
    value = stat(*args)
    alone = RunningCorrelation(4) if kind == "rc" else MinibatchCKA()
    torch.testing.assert_close(value, alone.update(*args).compute(), rtol=0, atol=0)
    ref.update(*args)
    torch.testing.assert_close(stat.compute(), ref.compute(), rtol=1e-12, atol=1e-12)
    fresh = RunningCorrelation(4) if kind == "rc" else MinibatchCKA()
    fresh(*args)
    torch.testing.assert_close(fresh.compute(), value)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
@pytest.mark.parametrize("kind", KINDS)
def test_state_dict_keeps_the_result_dtype(kind, dtype, tmp_path):
    x = _data().to(dtype)
    stat = _fed(kind, x)
    assert stat.compute().dtype == dtype
    torch.save(stat.state_dict(), tmp_path / "state.pt")
    fresh = RunningCorrelation(4) if kind == "rc" else MinibatchCKA()
    fresh.load_state_dict(torch.load(tmp_path / "state.pt", weights_only=True))
    assert fresh.compute().dtype == dtype
    torch.testing.assert_close(fresh.compute(), stat.compute(), rtol=0, atol=0)
    assert all(isinstance(v, torch.Tensor) for v in fresh.state_dict().values())
    if kind == "rc":  # an explicit result dtype too
        fixed = RunningCorrelation(4, dtype=dtype).update(_data())
        again = RunningCorrelation(4)
        again.load_state_dict(fixed.state_dict())
        assert again.compute().dtype == dtype


def test_state_dicts_saved_before_the_base_still_load():
    x = _data()
    rc = _fed("rc", x)
    old = {k: v for k, v in rc.state_dict().items() if k != "_extra_state"}
    fresh = RunningCorrelation(4)
    fresh.load_state_dict(old)
    torch.testing.assert_close(fresh.compute(), rc.compute())
    acc = _fed("cka", x)
    old = dict(acc.state_dict())
    old["_extra_state"] = {"single": True, "symmetric": False, "dtype": "float64"}
    fresh_cka = MinibatchCKA()
    fresh_cka.load_state_dict(old)
    torch.testing.assert_close(fresh_cka.compute(), acc.compute())


def test_one_base():
    from corrlib._stateful import StreamingStatistic

    assert issubclass(RunningCorrelation, StreamingStatistic)
    assert issubclass(MinibatchCKA, StreamingStatistic)
    assert RunningCorrelation.sync is MinibatchCKA.sync is StreamingStatistic.sync
    assert RunningCorrelation.merge is MinibatchCKA.merge
