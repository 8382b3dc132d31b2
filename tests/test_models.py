"""Tests for corrlib.models: shapes for any input size, layer names, parameter counts."""

import pytest
import torch
from torch import nn

from corrlib.models import MLP, SmallCNN, count_parameters


def _manual_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"in_features": 64}, 65 * 64 + 65 * 32 + 33 * 10),  # documented default: 6570
        ({"in_features": 64, "hidden": (64,)}, 65 * 64 + 65 * 10),  # docstring example: 4810
        ({"in_features": 10, "hidden": 7, "out_features": 3}, 11 * 7 + 8 * 3),
        ({"in_features": 64, "batch_norm": True}, 6570 + 2 * 64 + 2 * 32),
    ],
)
def test_mlp_parameter_count_matches_formula(kwargs, expected):
    model = MLP(**kwargs)
    assert count_parameters(model) == expected == _manual_count(model)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, 10 * 16 + 145 * 32 + 33 * 10),  # documented default: 5130
        ({"in_channels": 3, "num_classes": 4, "channels": (8,)}, 28 * 8 + 9 * 4),
        ({"channels": (4, 6), "kernel_size": 5, "batch_norm": True},
         26 * 4 + 101 * 6 + 7 * 10 + 2 * (4 + 6)),
    ],
)  # fmt: skip
def test_cnn_parameter_count_matches_formula(kwargs, expected):
    model = SmallCNN(**kwargs)
    assert count_parameters(model) == expected == _manual_count(model)


def test_default_counts_are_the_documented_ones():
    assert count_parameters(MLP(64)) == 6570
    assert count_parameters(SmallCNN()) == 5130


def test_count_parameters_trainable_only():
    model = MLP(4, hidden=(3,), out_features=2)
    model.hidden1.weight.requires_grad_(False)
    assert count_parameters(model) == 5 * 3 + 4 * 2
    assert count_parameters(model, trainable_only=True) == 5 * 3 + 4 * 2 - 12
    with pytest.raises(TypeError, match="nn.Module"):
        count_parameters(torch.zeros(3))


def test_mlp_layer_names_and_order():
    model = MLP(64, hidden=(8, 4), batch_norm=True, dropout=0.5)
    names = [name for name, _ in model.named_children()]
    assert names == [
        "flatten", "hidden1", "bn1", "act1", "drop1", "hidden2", "bn2", "act2", "drop2", "out"
    ]  # fmt: skip
    assert model.activation_names == ("act1", "act2")
    assert [n for n, _ in MLP(3, hidden=(2,)).named_children()] == [
        "flatten", "hidden1", "act1", "out"
    ]  # fmt: skip
    assert isinstance(MLP(3, activation=nn.Tanh).act1, nn.Tanh)


def test_mlp_flattens_images_and_returns_logits():
    model = MLP(64, hidden=(16,))
    out = model(torch.randn(5, 1, 8, 8))
    assert out.shape == (5, 10)
    # logits, not probabilities: rows do not sum to one in general
    assert not torch.allclose(out.softmax(1).sum(1), out.sum(1))


@pytest.mark.parametrize("size", [(1, 1), (2, 3), (8, 8), (28, 28), (33, 17)])
def test_cnn_accepts_any_input_size(size):
    model = SmallCNN(in_channels=3, num_classes=4, channels=(4, 8, 8))
    assert model(torch.randn(2, 3, *size)).shape == (2, 4)


def test_cnn_layer_names():
    model = SmallCNN(channels=(4, 8), batch_norm=True)
    names = [name for name, _ in model.named_children()]
    assert names == [
        "conv1",
        "bn1",
        "act1",
        "pool1",
        "conv2",
        "bn2",
        "act2",
        "gap",
        "flatten",
        "fc",
    ]
    assert model.activation_names == ("act1", "act2")
    feats = model[: names.index("flatten") + 1](torch.randn(3, 1, 8, 8))
    assert feats.shape == (3, 8)


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (lambda: MLP(0), "in_features"),
        (lambda: MLP(4, hidden=()), "hidden"),
        (lambda: MLP(4, hidden=(3, 0)), r"hidden\[1\]"),
        (lambda: MLP(4, hidden=(2.5,)), r"hidden\[0\]"),
        (lambda: MLP(4, out_features=True), "out_features"),
        (lambda: MLP(4, dropout=1.0), "dropout"),
        (lambda: SmallCNN(kernel_size=4), "odd"),
        (lambda: SmallCNN(channels=[]), "channels"),
        (lambda: SmallCNN(in_channels=-1), "in_channels"),
    ],
)
def test_bad_arguments_raise_value_error(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()


def test_activation_must_build_a_module():
    with pytest.raises(TypeError, match="nn.Module"):
        MLP(4, activation=torch.relu)


def test_slices_are_plain_sequential_sharing_the_layers():
    model = MLP(6, hidden=(5, 4))
    head = model[:3]
    assert type(head) is nn.Sequential
    assert [n for n, _ in head.named_children()] == ["flatten", "hidden1", "act1"]
    assert head.hidden1 is model.hidden1
    x = torch.randn(3, 6)
    torch.testing.assert_close(head(x), torch.relu(model.hidden1(x)))
    assert model[-1] is model.out
