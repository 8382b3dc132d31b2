"""Tests for corrlib.training: the loop, evaluation, penalties, callbacks, exact resume."""

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from corrlib.hooks import FeatureCorrelationMonitor
from corrlib.losses import DeCovLoss, decov_loss
from corrlib.models import MLP
from corrlib.training import (
    EvalResult,
    History,
    evaluate,
    fit,
    load_checkpoint,
    save_checkpoint,
)


def _data(n=96, d=6, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long() + (x[:, 2] > 1).long()
    return x, y.clamp(max=classes - 1)


def _loaders(seed=0, batch_size=16, dropout_data=False):
    x, y = _data()
    train = DataLoader(
        TensorDataset(x[:64], y[:64]),
        batch_size=batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(seed),
    )
    val = DataLoader(TensorDataset(x[64:], y[64:]), batch_size=32)
    return train, val


def _setup(seed=0, dropout=0.3, lr=0.01):
    torch.manual_seed(seed)
    model = MLP(6, hidden=(8,), out_features=3, dropout=dropout)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    return model, opt


def _no_hooks(model):
    return all(not m._forward_hooks for m in model.modules())


# -- evaluate ---------------------------------------------------------------------------------


def test_evaluate_matches_full_batch_reference():
    model, _ = _setup(dropout=0.5)
    _, val = _loaders()
    x, y = _data()
    model.train()
    result = evaluate(model, val)
    assert isinstance(result, EvalResult) and model.training  # mode restored
    model.eval()
    with torch.no_grad():
        logits = model(x[64:])
    expected_loss = nn.functional.cross_entropy(logits, y[64:]).item()
    expected_acc = (logits.argmax(1) == y[64:]).double().mean().item()
    loss, acc = result
    assert loss == pytest.approx(expected_loss, rel=1e-6)
    assert acc == pytest.approx(expected_acc)


def test_evaluate_regression_has_nan_accuracy_and_custom_loss():
    model = nn.Linear(3, 1)
    x = torch.randn(10, 3)
    y = torch.randn(10, 1)
    loss, acc = evaluate(model, [(x[:4], y[:4]), (x[4:], y[4:])], loss_fn=nn.MSELoss())
    with torch.no_grad():
        assert loss == pytest.approx(nn.functional.mse_loss(model(x), y).item(), rel=1e-6)
    assert math.isnan(acc)


def test_evaluate_rejects_bad_batches():
    with pytest.raises(TypeError, match=r"\(inputs, targets\) pairs.*length 3"):
        evaluate(nn.Linear(2, 2), [(torch.ones(1, 2), torch.zeros(1), 0)])
    with pytest.raises(ValueError, match="no samples"):
        evaluate(nn.Linear(2, 2), [])


# -- fit --------------------------------------------------------------------------------------


def test_fit_learns_and_records_history(capsys):
    model, opt = _setup(dropout=0.0, lr=0.05)
    train, val = _loaders()
    history = fit(model, train, val, epochs=15, optimizer=opt, progress=False)
    assert len(history) == 15 and history.epochs == list(range(1, 16))
    assert history.train_loss[-1] < 0.5 * history.train_loss[0]
    assert history.val_acc[-1] > 0.75  # the majority class is 14/32 = 0.44
    assert history.penalty == [0.0] * 15
    # the recorded validation numbers are evaluate()'s on the final model
    assert (history.val_loss[-1], history.val_acc[-1]) == tuple(evaluate(model, val))
    assert capsys.readouterr().err == ""
    frame = history.as_dataframe()
    assert list(frame.columns) == ["train_loss", "train_acc", "val_loss", "val_acc", "penalty"]
    assert frame.index.name == "epoch" and frame.index[0] == 1


def test_fit_progress_bar_goes_to_stderr(capsys):
    model, opt = _setup()
    train, val = _loaders()
    fit(model, train, val, epochs=2, optimizer=opt)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "2/2" in captured.err and "val_acc" in captured.err


def test_fit_without_validation_loader():
    model, opt = _setup()
    train, _ = _loaders()
    history = fit(model, train, None, epochs=2, optimizer=opt, progress=False)
    assert all(math.isnan(v) for v in history.val_loss + history.val_acc)


def test_fit_train_loss_is_the_training_mean():
    # one batch, SGD with lr=0: weights never change, so every epoch sees the same loss
    model, _ = _setup(dropout=0.0)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    x, y = _data()
    loader = [(x[:40], y[:40]), (x[40:64], y[40:64])]
    history = fit(model, loader, None, epochs=2, optimizer=opt, progress=False)
    with torch.no_grad():
        expected = nn.functional.cross_entropy(model(x[:64]), y[:64]).item()
    assert history.train_loss == pytest.approx([expected, expected], rel=1e-6)


def test_decov_penalty_is_added_and_reduces_decorrelation():
    train, val = _loaders()
    x, _ = _data()
    scores = {}
    for weight in (0.0, 10.0):
        model, opt = _setup(seed=1, dropout=0.0)
        history = fit(
            model, train, val, epochs=10, optimizer=opt, progress=False,
            penalty={"act1": DeCovLoss()}, penalty_weight=weight,
        )  # fmt: skip
        with torch.no_grad():
            scores[weight] = decov_loss(torch.relu(model.hidden1(x))).item()
        if weight == 0:
            assert history.penalty == [0.0] * 10
        else:
            assert all(p > 0 for p in history.penalty)
        assert _no_hooks(model)
    assert scores[10.0] < 0.5 * scores[0.0]


def test_penalty_gradient_reaches_the_hidden_layer():
    model, _ = _setup(dropout=0.0)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = _data()
    before = [p.detach().clone() for p in model.parameters()]

    def only_penalty(outputs, targets):
        return outputs.sum() * 0.0  # data loss contributes no gradient

    fit(model, [(x, y)], None, epochs=1, optimizer=opt, loss_fn=only_penalty, progress=False,
        penalty={"act1": decov_loss})  # fmt: skip
    after = list(model.parameters())
    assert not torch.equal(before[0], after[0])  # hidden1.weight moved
    assert torch.equal(before[-1], after[-1])  # out.bias untouched by the penalty


def test_callbacks_are_called_and_can_stop():
    model, opt = _setup()
    train, val = _loaders()
    seen = []

    def callback(epoch, history, model_):
        seen.append((epoch, len(history), model_ is model))
        return epoch == 3

    history = fit(model, train, val, epochs=10, optimizer=opt, callbacks=[callback],
                  progress=False)  # fmt: skip
    assert seen == [(1, 1, True), (2, 2, True), (3, 3, True)]
    assert len(history) == 3


@pytest.mark.parametrize(
    "yes",
    [np.bool_(True), torch.tensor(True), torch.tensor([True])],
    ids=["numpy bool", "0-d tensor", "1-element tensor"],
)
def test_numpy_and_tensor_booleans_stop_training_too(yes):
    model, opt = _setup()
    train, val = _loaders()
    history = fit(model, train, val, epochs=6, optimizer=opt, progress=False,
                  callbacks=[lambda epoch, history, model: yes if epoch == 2 else np.bool_(False)])  # fmt: skip
    assert len(history) == 2


def test_other_return_values_do_not_stop_training():
    model, opt = _setup()
    train, val = _loaders()
    history = fit(model, train, val, epochs=3, optimizer=opt, progress=False,
                  callbacks=[lambda epoch, history, model: 1.0])  # fmt: skip
    assert len(history) == 3


def test_fit_start_and_end_hooks_run_even_on_error():
    events = []

    class Tracker:
        def on_fit_start(self, model):
            events.append("start")

        def on_fit_end(self, model):
            events.append("end")

        def __call__(self, epoch, history, model):
            raise RuntimeError("callback failed")

    model, opt = _setup()
    train, val = _loaders()
    monitor = FeatureCorrelationMonitor(model, "act1", measure="pooled")
    with pytest.raises(RuntimeError, match="callback failed"):
        fit(model, train, val, epochs=3, optimizer=opt, callbacks=[monitor, Tracker()],
            progress=False)  # fmt: skip
    assert events == ["start", "end"]
    assert _no_hooks(model)


def test_monitor_as_callback_sees_training_batches_only():
    model, opt = _setup(dropout=0.0)
    train, val = _loaders()
    monitor = FeatureCorrelationMonitor(model, ["hidden1", "act1"], measure="pooled")
    fit(model, train, val, epochs=3, optimizer=opt, callbacks=[monitor], progress=False)
    assert monitor.epochs == [1, 2, 3]
    assert monitor.summary("hidden1", "n_samples") == [64, 64, 64]
    assert _no_hooks(model)


def test_non_finite_objective_raises():
    model, _ = _setup(dropout=0.0)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = _data()
    x = x.clone()
    x[0, 0] = float("nan")
    with pytest.raises(FloatingPointError, match="epoch 1, batch 0"):
        fit(model, [(x, y)], None, epochs=1, optimizer=opt, progress=False)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"epochs": 0}, ValueError, "epochs"),
        ({"epochs": 2.0}, ValueError, "epochs"),
        ({"epochs": 1, "optimizer": "adam"}, TypeError, "Optimizer"),
        ({"epochs": 1, "resume": True}, ValueError, "checkpoint_path"),
        ({"epochs": 1, "penalty": DeCovLoss()}, TypeError, "map layer names"),
        ({"epochs": 1, "penalty": {"act1": 3}}, TypeError, "callable"),
        ({"epochs": 1, "penalty": {"nope": decov_loss}}, ValueError, "no layer named"),
    ],
)
def test_fit_argument_errors(kwargs, error, match):
    model, opt = _setup()
    train, val = _loaders()
    kwargs = {"optimizer": opt, "progress": False, **kwargs}
    with pytest.raises(error, match=match):
        fit(model, train, val, **kwargs)
    assert _no_hooks(model)


def test_resume_missing_checkpoint(tmp_path):
    model, opt = _setup()
    train, val = _loaders()
    with pytest.raises(FileNotFoundError):
        fit(model, train, val, epochs=2, optimizer=opt, progress=False,
            checkpoint_path=tmp_path / "none.pt", resume=True)  # fmt: skip


# -- checkpoints ------------------------------------------------------------------------------


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_resumed_run_is_bit_identical_to_uninterrupted(tmp_path):
    # dropout and shuffling both draw random numbers: exact only if every RNG state is restored
    train, val = _loaders(seed=5)
    model, opt = _setup(seed=3)
    straight = fit(model, train, val, epochs=4, optimizer=opt, progress=False)
    expected = _state(model)

    path = tmp_path / "ckpt.pt"
    train, val = _loaders(seed=5)
    model, opt = _setup(seed=3)
    first = fit(model, train, val, epochs=2, optimizer=opt, progress=False, checkpoint_path=path)
    assert len(first) == 2

    # a new process would start from other random states and other objects
    torch.manual_seed(12345)
    np.random.seed(99)  # noqa: NPY002
    train, val = _loaders(seed=777)
    model, opt = _setup(seed=8)
    resumed = fit(model, train, val, epochs=4, optimizer=opt, progress=False,
                  checkpoint_path=path, resume=True)  # fmt: skip
    assert resumed.to_dict() == straight.to_dict()
    for key, value in _state(model).items():
        assert torch.equal(value, expected[key]), key
    # resuming a finished run does nothing
    again = fit(model, train, val, epochs=4, optimizer=opt, progress=False,
                checkpoint_path=path, resume=True)  # fmt: skip
    assert again.to_dict() == straight.to_dict()


def test_checkpoint_round_trip_with_weights_only(tmp_path):
    model, opt = _setup()
    train, val = _loaders()
    history = fit(model, train, val, epochs=1, optimizer=opt, progress=False)
    path = tmp_path / "c.pt"
    gen = torch.Generator().manual_seed(4)
    save_checkpoint(path, model, opt, 1, history, generator=gen)
    assert not (tmp_path / "c.pt.tmp").exists()
    raw = torch.load(path, weights_only=True)  # loads without unpickling arbitrary objects
    assert raw["epoch"] == 1 and set(raw) >= {"model", "optimizer", "history", "rng"}
    expected_draw = torch.rand(3, generator=gen)

    other, other_opt = _setup(seed=9)
    gen2 = torch.Generator().manual_seed(0)
    epoch, loaded = load_checkpoint(path, other, other_opt, generator=gen2)
    assert epoch == 1 and loaded.to_dict() == history.to_dict()
    for key, value in model.state_dict().items():
        assert torch.equal(value, other.state_dict()[key])
    assert other_opt.state_dict()["state"][0]["step"] == opt.state_dict()["state"][0]["step"]
    torch.testing.assert_close(torch.rand(3, generator=gen2), expected_draw, rtol=0, atol=0)


def test_load_checkpoint_rejects_foreign_files(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"weights": torch.ones(2)}, path)
    with pytest.raises(ValueError, match="not a corrlib checkpoint"):
        load_checkpoint(path, nn.Linear(2, 2))
    with pytest.raises(TypeError, match="History"):
        save_checkpoint(path, nn.Linear(2, 2), None, 1, {"train_loss": []})


def test_history_round_trip_and_validation():
    h = History()
    h.append(train_loss=1.0, train_acc=0.5, val_loss=1.1, val_acc=0.4, penalty=0.0)
    assert History.from_dict(h.to_dict()) == h
    with pytest.raises(ValueError, match="exactly the fields"):
        h.append(train_loss=1.0)
    with pytest.raises(ValueError, match="missing"):
        History.from_dict({"train_loss": [1.0]})
    bad = h.to_dict()
    bad["val_acc"] = []
    with pytest.raises(ValueError, match="different lengths"):
        History.from_dict(bad)


def test_history_dict_style_access():
    history = History()
    history.append(train_loss=1.0, train_acc=0.5, val_loss=1.2, val_acc=0.4, penalty=0.0)
    assert history["val_acc"] == history.val_acc == [0.4]
    assert history.keys() == ["train_loss", "train_acc", "val_loss", "val_acc", "penalty"]
    with pytest.raises(KeyError, match="val_accuracy"):
        history["val_accuracy"]


def test_training_re_exports_history_and_checkpoints():
    import typing

    import corrlib.checkpoints
    import corrlib.history
    import corrlib.training as training

    assert training.History is corrlib.history.History
    assert training.save_checkpoint is corrlib.checkpoints.save_checkpoint
    assert training.load_checkpoint is corrlib.checkpoints.load_checkpoint
    assert all(hasattr(training, name) for name in training.__all__)
    assert getattr(training.Callback, "_is_protocol", False)
    assert typing.get_type_hints(training.Callback.__call__)["epoch"] is int


def test_callback_protocol_accepts_functions_and_objects():
    from corrlib.training import Callback

    calls = []

    def plain(epoch, history, model):
        calls.append(("plain", epoch))

    class Stopper:
        def __call__(self, epoch: int, history, model) -> bool:
            calls.append(("stopper", epoch))
            return epoch == 2

    callbacks: list[Callback] = [plain, Stopper()]
    torch.manual_seed(0)
    model = MLP(4, hidden=(3,), out_features=2)
    x = torch.randn(16, 4)
    loader = DataLoader(TensorDataset(x, (x[:, 0] > 0).long()), batch_size=8)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    history = fit(model, loader, epochs=5, optimizer=opt, callbacks=callbacks, progress=False)
    assert len(history) == 2
    assert calls == [("plain", 1), ("stopper", 1), ("plain", 2), ("stopper", 2)]
