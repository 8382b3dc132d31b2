"""Record the outputs of named layers while a network runs, with forward hooks.

Layers are named as in ``dict(model.named_modules())`` (``"act1"``, ``"encoder.0"``, ...); a
name that matches nothing raises a ``ValueError`` that lists the names that exist.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Literal

import torch
from torch import nn

__all__ = ["ActivationRecorder", "as_feature_matrix", "resolve_layers"]


def resolve_layers(model: nn.Module, layers: str | Iterable[str]) -> dict[str, nn.Module]:
    """The modules of ``model`` named by ``layers``, by name, in the order given.

    Raises
    ------
    TypeError
        If ``model`` is not a module or a name is not a string.
    ValueError
        If no name is given, a name is repeated, or a name matches no layer (the message lists
        the layers that exist).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    names = [layers] if isinstance(layers, str) else list(layers)
    if not names:
        raise ValueError("layers must name at least one layer")
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"layer names must be str, got {type(name).__name__}: {name!r}")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"layer names given more than once: {duplicates}")
    modules = dict(model.named_modules())
    unknown = [n for n in names if n not in modules]
    if unknown:
        existing = [n for n in modules if n]
        raise ValueError(f"no layer named {unknown} in {type(model).__name__}; layers: {existing}")
    return {n: modules[n] for n in names}


def as_feature_matrix(
    activation: torch.Tensor, spatial: Literal["positions", "mean"] = "positions"
) -> torch.Tensor:
    """Lay a layer's output out as ``(n_samples, n_features)``, features = channels.

    Parameters
    ----------
    activation : Tensor
        ``(N, d)`` for a linear layer; ``(N, C, *spatial)`` for a convolutional one.
    spatial : {"positions", "mean"}
        For outputs with spatial dimensions: ``"positions"`` treats every position of every
        image as a sample (``(N * H * W, C)``), ``"mean"`` averages over positions first
        (global average pooling, ``(N, C)``).

    Returns
    -------
    Tensor
        A 2-D view or copy of ``activation``.
    """
    if spatial not in ("positions", "mean"):
        raise ValueError(f"spatial must be 'positions' or 'mean', got {spatial!r}")
    if activation.ndim < 2:
        raise ValueError(
            f"activation must be (N, features) or (N, channels, ...), got shape "
            f"{tuple(activation.shape)}"
        )
    if activation.ndim == 2:
        return activation
    if spatial == "mean":
        return activation.flatten(2).mean(dim=2)
    return activation.flatten(2).transpose(1, 2).reshape(-1, activation.shape[1])


class ActivationRecorder:
    """Record the outputs of named layers with forward hooks, inside a ``with`` block.

    Parameters
    ----------
    model : nn.Module
        The network.
    layers : str or iterable of str
        Layer names from ``model.named_modules()``.
    detach : bool
        Store ``output.detach()`` (default). With ``detach=False`` the stored tensors keep their
        autograd graph, so that a penalty computed from them can be back-propagated.
    accumulate : bool
        Keep every batch's output (detached, moved to the CPU) in :attr:`records` instead of
        only the last one; :meth:`stacked` concatenates them.
    training_only : bool
        Record only forward passes made in training mode (``module.training``), so that the
        validation passes of a training loop are left out.
    on_output : callable, optional
        ``on_output(name, output)`` is called with each recorded output (detached unless
        ``detach=False``), e.g. to fold it into a running statistic instead of keeping it.

    Attributes
    ----------
    activations : dict[str, Tensor]
        The most recent output of each layer (empty until a forward pass).
    records : dict[str, list[Tensor]]
        Every batch's output when ``accumulate=True``.

    Notes
    -----
    The hooks are registered on entering the ``with`` block and removed on leaving it, also when
    the block raises. :meth:`attach` and :meth:`remove` do the same by hand.

    Examples
    --------
    >>> import torch
    >>> from corrlib.models import MLP
    >>> model = MLP(4, hidden=(3,), out_features=2)
    >>> with ActivationRecorder(model, "act1") as rec:
    ...     _ = model(torch.randn(5, 4))
    >>> rec.activations["act1"].shape
    torch.Size([5, 3])
    """

    def __init__(
        self,
        model: nn.Module,
        layers: str | Iterable[str],
        *,
        detach: bool = True,
        accumulate: bool = False,
        training_only: bool = False,
        on_output: Callable[[str, torch.Tensor], Any] | None = None,
    ) -> None:
        self.modules = resolve_layers(model, layers)
        self.layers = tuple(self.modules)
        self.detach = detach
        self.accumulate = accumulate
        self.training_only = training_only
        self.on_output = on_output
        self.activations: dict[str, torch.Tensor] = {}
        self.records: dict[str, list[torch.Tensor]] = {name: [] for name in self.layers}
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def _hook(self, name: str):
        def hook(module: nn.Module, inputs: Any, output: Any) -> None:
            if self.training_only and not module.training:
                return
            if not isinstance(output, torch.Tensor):
                raise TypeError(
                    f"layer {name!r} returned {type(output).__name__}; "
                    "ActivationRecorder records tensor outputs only"
                )
            kept = output.detach() if self.detach else output
            self.activations[name] = kept
            if self.accumulate:
                self.records[name].append(output.detach().cpu())
            if self.on_output is not None:
                self.on_output(name, kept)

        return hook

    @property
    def attached(self) -> bool:
        """Whether the hooks are currently registered."""
        return bool(self._handles)

    def attach(self) -> ActivationRecorder:
        """Register the forward hooks (``RuntimeError`` if they already are)."""
        if self._handles:
            raise RuntimeError("ActivationRecorder is already attached")
        try:
            for name, module in self.modules.items():
                self._handles.append(module.register_forward_hook(self._hook(name)))
        except BaseException:
            self.remove()
            raise
        return self

    def remove(self) -> None:
        """Remove the hooks (safe to call more than once)."""
        while self._handles:
            self._handles.pop().remove()

    def clear(self) -> None:
        """Forget what was recorded."""
        self.activations.clear()
        for batches in self.records.values():
            batches.clear()

    def stacked(self, name: str) -> torch.Tensor:
        """All recorded batches of layer ``name`` concatenated along the batch dimension."""
        if not self.accumulate:
            raise RuntimeError("stacked() needs ActivationRecorder(..., accumulate=True)")
        if name not in self.records:
            raise ValueError(f"layer {name!r} is not recorded; recorded: {list(self.layers)}")
        if not self.records[name]:
            raise RuntimeError(f"nothing recorded for layer {name!r} yet")
        return torch.cat(self.records[name])

    def __enter__(self) -> ActivationRecorder:
        return self.attach()

    def __exit__(self, *exc_info: object) -> None:
        self.remove()
