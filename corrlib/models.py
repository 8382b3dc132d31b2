"""Small, correctly shaped networks for the course: an MLP and a CNN for any input size.

Both models are :class:`torch.nn.Sequential` subclasses whose children carry short, stable
names, so that forward hooks (:class:`corrlib.hooks.ActivationRecorder`) can target a layer by
name. ``model.named_children()`` lists them; the names are documented in each class. A slice
such as ``model[:4]`` is a plain ``nn.Sequential`` with the same names (the first layers).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence

from torch import nn

from corrlib._validation import as_integer, check_positive_int

__all__ = ["MLP", "SmallCNN", "count_parameters"]

ActivationFactory = Callable[[], nn.Module]


def count_parameters(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of scalar parameters of ``model``.

    Parameters
    ----------
    model : nn.Module
        Any module.
    trainable_only : bool
        Count only parameters with ``requires_grad=True``.

    Returns
    -------
    int
        ``sum(p.numel() for p in model.parameters())`` (shared parameters counted once).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _check_widths(widths: Sequence[int], name: str) -> tuple[int, ...]:
    if as_integer(widths) is not None:
        widths = (widths,)
    widths = tuple(widths)
    if not widths:
        raise ValueError(f"{name} must hold at least one width, got {widths!r}")
    return tuple(check_positive_int(w, f"{name}[{i}]") for i, w in enumerate(widths))


def _make_activation(activation: ActivationFactory) -> nn.Module:
    try:
        module = activation()
    except TypeError as exc:
        raise TypeError(
            "activation must be a class or zero-argument factory returning an nn.Module "
            f"(e.g. nn.ReLU, not torch.relu): calling it failed with: {exc}"
        ) from exc
    if not isinstance(module, nn.Module):
        raise TypeError(
            "activation must be a class or factory returning an nn.Module (e.g. nn.ReLU), "
            f"got one returning {type(module).__name__}"
        )
    return module


class _NamedSequential(nn.Sequential):
    """``nn.Sequential`` whose slices are plain ``nn.Sequential`` (keeping the layer names):
    the subclasses' constructors take widths, not modules."""

    def __getitem__(self, idx: int | slice) -> nn.Module:
        if isinstance(idx, slice):
            return nn.Sequential(OrderedDict(list(self._modules.items())[idx]))
        return super().__getitem__(idx)


class MLP(_NamedSequential):
    """A multilayer perceptron: flatten, then ``Linear -> [BatchNorm] -> activation -> [Dropout]``
    per hidden layer, then a linear output layer that returns logits.

    Parameters
    ----------
    in_features : int
        Number of input features after flattening (an 8x8 image gives 64).
    hidden : sequence of int or int
        Widths of the hidden layers, e.g. ``(64, 32)``.
    out_features : int
        Number of outputs (classes); the model returns raw logits, ready for
        :class:`torch.nn.CrossEntropyLoss` (no softmax inside).
    activation : callable returning an nn.Module
        Activation class or factory, called once per hidden layer (``nn.ReLU``, ``nn.Tanh``, ...).
    batch_norm : bool
        Insert ``BatchNorm1d`` after every hidden linear layer.
    dropout : float
        Dropout probability after every hidden activation, in ``[0, 1)``; 0 adds no layer.

    Notes
    -----
    Children, in order (``k = 1 .. len(hidden)``)::

        flatten, hidden1, [bn1], act1, [drop1], hidden2, ..., out

    ``hiddenk`` is the k-th linear layer (pre-activation), ``actk`` its activation output (the
    hidden features), ``out`` the logits. :attr:`activation_names` lists ``("act1", ...)``.

    With widths ``w_0 = in_features, w_1, ..., w_L`` and ``w_{L+1} = out_features`` the number of
    parameters is ``sum_{k=0..L} (w_k + 1) w_{k+1}``, plus ``2 w_k`` per hidden layer when
    ``batch_norm=True``. The default ``MLP(64)`` has
    ``65*64 + 65*32 + 33*10 = 4160 + 2080 + 330 = 6570`` parameters.

    Examples
    --------
    >>> model = MLP(64, hidden=(64,), out_features=10)
    >>> count_parameters(model)
    4810
    """

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int] | int = (64, 32),
        out_features: int = 10,
        *,
        activation: ActivationFactory = nn.ReLU,
        batch_norm: bool = False,
        dropout: float = 0.0,
    ) -> None:
        in_features = check_positive_int(in_features, "in_features")
        out_features = check_positive_int(out_features, "out_features")
        widths = _check_widths(hidden, "hidden")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        layers: OrderedDict[str, nn.Module] = OrderedDict(flatten=nn.Flatten())
        previous = in_features
        for k, width in enumerate(widths, start=1):
            layers[f"hidden{k}"] = nn.Linear(previous, width)
            if batch_norm:
                layers[f"bn{k}"] = nn.BatchNorm1d(width)
            layers[f"act{k}"] = _make_activation(activation)
            if dropout > 0:
                layers[f"drop{k}"] = nn.Dropout(dropout)
            previous = width
        layers["out"] = nn.Linear(previous, out_features)
        super().__init__(layers)
        self.in_features = in_features
        self.out_features = out_features
        self.hidden_widths = widths

    @property
    def activation_names(self) -> tuple[str, ...]:
        """Names of the hidden activation layers, ``("act1", "act2", ...)``."""
        return tuple(f"act{k}" for k in range(1, len(self.hidden_widths) + 1))


class SmallCNN(_NamedSequential):
    """A small convolutional network that accepts images of any size.

    Each block is ``Conv2d (same padding) -> [BatchNorm2d] -> activation``; blocks are separated
    by ``MaxPool2d(2, ceil_mode=True)`` (a 1-pixel map stays 1 pixel), and the last block is
    followed by global average pooling (``AdaptiveAvgPool2d(1)``), so that the classifier's input
    size is always ``channels[-1]``, whatever the image's height and width.

    Parameters
    ----------
    in_channels : int
        Channels of the input images (1 for grey, 3 for RGB).
    num_classes : int
        Number of outputs; the model returns raw logits.
    channels : sequence of int
        Output channels of the convolution blocks, e.g. ``(16, 32)``.
    kernel_size : int
        Odd kernel size of every convolution (the padding ``kernel_size // 2`` keeps the size).
    activation : callable returning an nn.Module
        Activation class or factory (``nn.ReLU`` by default).
    batch_norm : bool
        Insert ``BatchNorm2d`` after every convolution.

    Notes
    -----
    Children, in order (``k = 1 .. len(channels)``)::

        conv1, [bn1], act1, pool1, conv2, [bn2], act2, ..., actL, gap, flatten, fc

    ``actk`` outputs feature maps ``(N, channels[k-1], H_k, W_k)``; ``flatten`` outputs the
    pooled features ``(N, channels[-1])``; ``fc`` the logits.

    With ``c_0 = in_channels`` and kernel size ``k`` the number of parameters is
    ``sum_i (c_{i-1} k^2 + 1) c_i + (c_L + 1) num_classes``, plus ``2 c_i`` per block with
    ``batch_norm=True``. The default ``SmallCNN()`` has
    ``(9 + 1)*16 + (144 + 1)*32 + 33*10 = 160 + 4640 + 330 = 5130`` parameters.

    Examples
    --------
    >>> import torch
    >>> SmallCNN()(torch.zeros(2, 1, 8, 8)).shape
    torch.Size([2, 10])
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        *,
        channels: Sequence[int] = (16, 32),
        kernel_size: int = 3,
        activation: ActivationFactory = nn.ReLU,
        batch_norm: bool = False,
    ) -> None:
        in_channels = check_positive_int(in_channels, "in_channels")
        num_classes = check_positive_int(num_classes, "num_classes")
        widths = _check_widths(channels, "channels")
        kernel_size = check_positive_int(kernel_size, "kernel_size")
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd (same padding), got {kernel_size}")
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        previous = in_channels
        for k, width in enumerate(widths, start=1):
            if k > 1:
                layers[f"pool{k - 1}"] = nn.MaxPool2d(2, ceil_mode=True)
            layers[f"conv{k}"] = nn.Conv2d(
                previous, width, kernel_size=kernel_size, padding=kernel_size // 2
            )
            if batch_norm:
                layers[f"bn{k}"] = nn.BatchNorm2d(width)
            layers[f"act{k}"] = _make_activation(activation)
            previous = width
        layers["gap"] = nn.AdaptiveAvgPool2d(1)
        layers["flatten"] = nn.Flatten()
        layers["fc"] = nn.Linear(previous, num_classes)
        super().__init__(layers)
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.channels = widths

    @property
    def activation_names(self) -> tuple[str, ...]:
        """Names of the convolution blocks' activation layers, ``("act1", "act2", ...)``."""
        return tuple(f"act{k}" for k in range(1, len(self.channels) + 1))
