"""Tests for corrlib.ensemble: a vmapped stack of members trains each exactly as alone."""

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from corrlib.ensemble import Ensemble, fit_ensemble, member_accuracy, member_losses
from corrlib.models import MLP, SmallCNN


def _data(n=120, d=6, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long() + (x[:, 2] > 1).long()
    return x, y.clamp(max=classes - 1)


def _mlp(**kw):
    return lambda: MLP(6, hidden=(8,), out_features=3, **kw).double()


def test_members_start_from_their_seeds_and_leave_global_rng_alone():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    ens = Ensemble(_mlp(), seeds=[4, 7])
    assert torch.equal(torch.get_rng_state(), before)
    for k, seed in enumerate([4, 7]):
        torch.manual_seed(seed)
        alone = _mlp()()
        for (name, p), q in zip(alone.named_parameters(), ens.member(k).parameters(), strict=True):
            assert torch.equal(p, q), name
    # different seeds give different members
    assert not torch.equal(ens.member(0).hidden1.weight, ens.member(1).hidden1.weight)


@pytest.mark.parametrize("optimizer", ["adam", "sgd", "adamw"])
def test_full_batch_training_equals_each_member_trained_alone(optimizer):
    x, y = _data()
    ens = Ensemble(_mlp(), seeds=[0, 1, 2])
    history = fit_ensemble(ens, x, y, epochs=30, lr=0.05, optimizer=optimizer, weight_decay=1e-3)
    assert len(history) == 30 and history[-1].shape == (3,)
    opt_cls = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD, "adamw": torch.optim.AdamW}
    for k, seed in enumerate([0, 1, 2]):
        torch.manual_seed(seed)
        model = _mlp()()
        opt = opt_cls[optimizer](model.parameters(), lr=0.05, weight_decay=1e-3)
        for _ in range(30):
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        trained = ens.member(k)
        for p, q in zip(model.parameters(), trained.parameters(), strict=True):
            torch.testing.assert_close(p, q, rtol=1e-9, atol=1e-10)
        torch.testing.assert_close(history[-1][k], loss.detach(), rtol=1e-6, atol=1e-9)


def test_batchnorm_buffers_are_per_member_and_dropout_differs():
    x, y = _data()
    ens = Ensemble(lambda: MLP(6, hidden=(8,), out_features=3, batch_norm=True), seeds=[0, 1])
    fit_ensemble(
        ens, x.float(), y, epochs=2, batch_size=40, generator=torch.Generator().manual_seed(0)
    )
    assert ens.bn1__running_mean.shape == (2, 8)
    assert int(ens.bn1__num_batches_tracked[0]) == 6
    assert not torch.equal(ens.bn1__running_mean[0], ens.bn1__running_mean[1])
    member = ens.member(1).eval()
    ens.eval()
    torch.testing.assert_close(ens(x.float())[1], member(x.float()))
    drop = Ensemble(lambda: nn.Sequential(nn.Linear(4, 100), nn.Dropout(0.5)), seeds=[0, 0])
    out = drop.train()(torch.ones(1, 4))
    assert not torch.equal(out[0], out[1])  # same weights (same seed), different masks
    out = drop.eval()(torch.ones(1, 4))
    assert torch.equal(out[0], out[1])


def test_forward_with_layers_returns_hidden_activations_in_the_graph():
    ens = Ensemble(lambda: SmallCNN(channels=(4, 6)), seeds=[0, 1, 2])
    x = torch.randn(5, 1, 8, 8)
    out, acts = ens.forward_with_layers(x, ["act1", "flatten"])
    assert out.shape == (3, 5, 10)
    assert acts["act1"].shape == (3, 5, 4, 8, 8) and acts["flatten"].shape == (3, 5, 6)
    for k in range(3):
        torch.testing.assert_close(out[k], ens.member(k)(x))
    acts["flatten"].sum().backward()
    assert ens.conv1__weight.grad is not None
    with pytest.raises(AttributeError):
        ens.forward_with_layers(x, ["nope"])


def test_penalty_gets_per_member_activations():
    x, y = _data()
    seen = []

    def penalty(acts):
        seen.append(acts["act1"].shape)
        return acts["act1"].pow(2).mean(dim=(1, 2))

    ens = Ensemble(_mlp(), seeds=[0, 1])
    fit_ensemble(ens, x, y, epochs=1, penalty=penalty, penalty_layers=["act1"])
    assert seen == [(2, 120, 8)]
    with pytest.raises(ValueError, match="penalty"):
        fit_ensemble(ens, x, y, epochs=1, penalty_layers=["act1"])


def test_member_losses_and_accuracy():
    out = torch.randn(2, 4, 3)
    y = torch.tensor([0, 1, 2, 1])
    losses = member_losses(out, y)
    for k in range(2):
        torch.testing.assert_close(losses[k], F.cross_entropy(out[k], y))
    per_member = torch.stack([y, y.flip(0)])
    torch.testing.assert_close(
        member_losses(out, per_member)[1], F.cross_entropy(out[1], y.flip(0))
    )
    with pytest.raises(ValueError, match="targets"):
        member_losses(out, torch.zeros(5, dtype=torch.long))
    ens = Ensemble(_mlp(), seeds=[0]).train()
    x, y = _data()
    acc = member_accuracy(ens, x, y)
    assert acc.shape == (1,) and ens.training
    correct = int((ens.member(0).eval()(x).argmax(1) == y).sum())
    assert float(acc[0]) == pytest.approx(correct / len(y), rel=1e-6)


def test_bad_arguments():
    with pytest.raises(ValueError, match="seeds"):
        Ensemble(_mlp(), seeds=[])
    with pytest.raises(TypeError, match="nn.Module"):
        Ensemble(lambda: 3, seeds=[0])
    ens = Ensemble(_mlp(), seeds=[0, 1])
    x, y = _data()
    with pytest.raises(ValueError, match="member axis"):
        ens(x, per_member=True)
    with pytest.raises(ValueError, match="epochs"):
        fit_ensemble(ens, x, y, epochs=0)
    with pytest.raises(ValueError, match="batch_size"):
        fit_ensemble(ens, x, y, epochs=1, batch_size=0)
    with pytest.raises(ValueError, match="optimizer"):
        fit_ensemble(ens, x, y, epochs=1, optimizer="lbfgs")
    with pytest.raises(IndexError):
        ens.member(2)
