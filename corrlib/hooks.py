"""Look inside a network while it runs: record named layers' outputs with forward hooks, and
follow the correlation between a layer's features over training.

Layers are named as in ``dict(model.named_modules())`` (``"act1"``, ``"encoder.0"``, ...); a
name that matches nothing raises a ``ValueError`` that lists the names that exist.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from typing import Any, Literal

import torch
from torch import nn

from corrlib._validation import as_float_tensor, check_ndim
from corrlib._warnings import ConstantInputWarning
from corrlib.streaming import RunningCorrelation

__all__ = [
    "ActivationRecorder",
    "FeatureCorrelationMonitor",
    "as_feature_matrix",
    "effective_rank",
    "mean_abs_offdiag",
]


# --------------------------------------------------------------------------------------------
# summary measures of a correlation matrix


def _check_square(c: torch.Tensor, name: str) -> None:
    check_ndim(c, 2, name)
    if c.shape[0] != c.shape[1]:
        raise ValueError(f"{name} must be a square (d, d) matrix, got shape {tuple(c.shape)}")


def mean_abs_offdiag(c: Any) -> torch.Tensor:
    """Mean absolute off-diagonal entry of a square matrix (a redundancy score in ``[0, 1]``
    for a correlation matrix).

    Parameters
    ----------
    c : tensor or array, shape (d, d)
        Correlation (or any square) matrix, ``d >= 2``.

    Returns
    -------
    Tensor
        0-d tensor in ``c``'s dtype and device. NaN entries (the rows and columns of constant
        features) are left out of the mean; NaN if no off-diagonal entry is finite.
    """
    t = as_float_tensor(c, "C")
    _check_square(t, "C")
    d = t.shape[0]
    if d < 2:
        raise ValueError(f"C needs at least 2 features to have off-diagonal entries, got {d}")
    off = t[~torch.eye(d, dtype=torch.bool, device=t.device)].abs()
    return off.nanmean()


def effective_rank(c: Any) -> torch.Tensor:
    """Effective rank of a matrix (Roy and Vetterli, 2007).

    With the singular values ``s_i`` (the eigenvalues, for a correlation matrix) normalised to
    ``p_i = s_i / sum(s)``, the effective rank is ``exp(-sum p_i log p_i)``: ``d`` for the
    ``d x d`` identity (uncorrelated features), 1 for a rank-one matrix (perfectly correlated
    features), and in between for partial redundancy.

    Parameters
    ----------
    c : tensor or array, shape (d, d)
        A square matrix without NaN (drop constant features first).

    Returns
    -------
    Tensor
        0-d tensor in ``c``'s dtype (float32 for half precision) and device.

    References
    ----------
    O. Roy and M. Vetterli, "The effective rank: a measure of effective dimensionality",
    EUSIPCO 2007.
    """
    t = as_float_tensor(c, "C")
    _check_square(t, "C")
    if t.shape[0] == 0:
        raise ValueError("C must have at least one feature, got shape (0, 0)")
    if not bool(torch.isfinite(t).all()):
        raise ValueError("C contains NaN or infinite entries; drop those features first")
    s = torch.linalg.svdvals(t.to(torch.promote_types(t.dtype, torch.float32)))
    total = s.sum()
    if not bool(total > 0):
        raise ValueError("C is the zero matrix; its effective rank is undefined")
    p = s / total
    entropy = -torch.special.xlogy(p, p).sum()
    return entropy.exp()


# --------------------------------------------------------------------------------------------
# recording activations


def _resolve_layers(model: nn.Module, layers: str | Iterable[str]) -> dict[str, nn.Module]:
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
    ) -> None:
        self.modules = _resolve_layers(model, layers)
        self.layers = tuple(self.modules)
        self.detach = detach
        self.accumulate = accumulate
        self.activations: dict[str, torch.Tensor] = {}
        self.records: dict[str, list[torch.Tensor]] = {name: [] for name in self.layers}
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def _hook(self, name: str):
        def hook(module: nn.Module, inputs: Any, output: Any) -> None:
            if not isinstance(output, torch.Tensor):
                raise TypeError(
                    f"layer {name!r} returned {type(output).__name__}; "
                    "ActivationRecorder records tensor outputs only"
                )
            self.activations[name] = output.detach() if self.detach else output
            if self.accumulate:
                self.records[name].append(output.detach().cpu())

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


# --------------------------------------------------------------------------------------------
# correlation of features over an epoch


class FeatureCorrelationMonitor:
    """Correlation matrices of named layers' features, one per epoch, with summaries.

    For each layer it keeps a :class:`corrlib.RunningCorrelation` (float64) that streams over
    the batches of an epoch, then stores the correlation matrix and its summaries and starts
    again. It is a :func:`corrlib.training.fit` callback.

    Parameters
    ----------
    model : nn.Module
        The network.
    layers : str or iterable of str
        Layer names from ``model.named_modules()``.
    loader : iterable of (inputs, targets), optional
        Where the activations come from:

        * ``None`` (default): the training batches of the epoch, as the model trains (only
          forward passes in training mode are recorded, so validation passes are left out).
          The hooks must be attached: pass the monitor to ``fit(callbacks=[monitor])``, which
          attaches it for the run, or use ``with monitor:``.
        * a loader (e.g. the validation loader): at each call the monitor runs the model over it
          in eval mode, without gradients, and measures the model as it is at that moment.
    spatial : {"positions", "mean"}
        How convolutional outputs ``(N, C, H, W)`` become features; see
        :func:`as_feature_matrix`. Features are channels in both cases.

    Attributes
    ----------
    epochs : list[int]
        The epochs measured, in order.
    matrices : dict[str, list[Tensor]]
        Per layer, one ``(d, d)`` float64 CPU correlation matrix per measured epoch; constant
        (e.g. dead ReLU) features have NaN rows and columns.
    records : list[dict]
        One row per (epoch, layer): ``epoch``, ``layer``, ``n_samples``, ``n_features``,
        ``n_constant`` (features that were exactly constant), ``mean_abs_offdiag`` and
        ``effective_rank``, both computed over the non-constant features.

    Notes
    -----
    Constant features are counted in ``n_constant`` instead of raising a
    :class:`~corrlib.ConstantInputWarning` every epoch.

    Examples
    --------
    >>> monitor = FeatureCorrelationMonitor(model, ["act1"])   # doctest: +SKIP
    >>> fit(model, train_loader, val_loader, epochs=5, optimizer=opt,
    ...     callbacks=[monitor])                               # doctest: +SKIP
    >>> monitor.as_dataframe()                                 # doctest: +SKIP
    """

    def __init__(
        self,
        model: nn.Module,
        layers: str | Iterable[str],
        loader: Iterable[Any] | None = None,
        *,
        spatial: Literal["positions", "mean"] = "positions",
    ) -> None:
        self.model = model
        self.modules = _resolve_layers(model, layers)
        self.layers = tuple(self.modules)
        if spatial not in ("positions", "mean"):
            raise ValueError(f"spatial must be 'positions' or 'mean', got {spatial!r}")
        self.loader = loader
        self.spatial = spatial
        self.epochs: list[int] = []
        self.matrices: dict[str, list[torch.Tensor]] = {name: [] for name in self.layers}
        self.records: list[dict[str, Any]] = []
        self._running: dict[str, RunningCorrelation] = {}
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    # -- hooks ---------------------------------------------------------------------------------

    def _hook(self, name: str, training_only: bool):
        def hook(module: nn.Module, inputs: Any, output: Any) -> None:
            if training_only and not module.training:
                return
            if not isinstance(output, torch.Tensor):
                raise TypeError(f"layer {name!r} returned {type(output).__name__}, not a tensor")
            features = as_feature_matrix(output.detach(), self.spatial).to(torch.float64)
            running = self._running.get(name)
            if running is None:
                running = RunningCorrelation(
                    features.shape[1], dtype=torch.float64, device=features.device
                )
                self._running[name] = running
            running.update(features)

        return hook

    def _attach(self, training_only: bool) -> None:
        if self._handles:
            raise RuntimeError("FeatureCorrelationMonitor is already attached")
        for name, module in self.modules.items():
            self._handles.append(module.register_forward_hook(self._hook(name, training_only)))

    def remove(self) -> None:
        """Remove the hooks (safe to call more than once)."""
        while self._handles:
            self._handles.pop().remove()

    def __enter__(self) -> FeatureCorrelationMonitor:
        if self.loader is None:
            self._attach(training_only=True)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.remove()

    def on_fit_start(self, model: nn.Module) -> None:
        """Called by :func:`~corrlib.training.fit` before the first epoch: attach the hooks."""
        self.__enter__()

    def on_fit_end(self, model: nn.Module) -> None:
        """Called by :func:`~corrlib.training.fit` at the end, also after an error."""
        self.remove()

    # -- measuring -----------------------------------------------------------------------------

    @torch.no_grad()
    def _run_loader(self) -> None:
        was_training = self.model.training
        try:
            param = next(self.model.parameters(), None)
            device = param.device if param is not None else torch.device("cpu")
            self.model.eval()
            self._attach(training_only=False)
            for batch in self.loader:
                inputs = batch[0] if isinstance(batch, (tuple, list)) else batch
                self.model(inputs.to(device))
        finally:
            self.remove()
            self.model.train(was_training)

    def __call__(self, epoch: int, history: Any = None, model: nn.Module | None = None) -> None:
        """Measure ``epoch``: compute each layer's correlation, store it, and reset.

        The signature is the one of a :func:`~corrlib.training.fit` callback; ``history`` and
        ``model`` are not used.
        """
        if self.loader is not None:
            self._running.clear()
            self._run_loader()
        missing = [n for n in self.layers if n not in self._running or self._running[n].n < 2]
        if missing:
            raise RuntimeError(
                f"fewer than 2 samples recorded for layers {missing}; pass the monitor to "
                "fit(callbacks=...), use it as a context manager, or give it a loader"
            )
        self.epochs.append(int(epoch))
        for name in self.layers:
            running = self._running[name]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConstantInputWarning)
                corr = running.compute().cpu()
            self.matrices[name].append(corr)
            self.records.append(self._summarise(epoch, name, corr, running.n))
        self._running.clear()

    @staticmethod
    def _summarise(epoch: int, name: str, corr: torch.Tensor, n: int) -> dict[str, Any]:
        keep = ~torch.isnan(torch.diagonal(corr))
        block = corr[keep][:, keep]
        d_ok = int(keep.sum())
        return {
            "epoch": int(epoch),
            "layer": name,
            "n_samples": int(n),
            "n_features": int(corr.shape[0]),
            "n_constant": int(corr.shape[0]) - d_ok,
            "mean_abs_offdiag": float(mean_abs_offdiag(block)) if d_ok >= 2 else math.nan,
            "effective_rank": float(effective_rank(block)) if d_ok >= 1 else math.nan,
        }

    def summary(self, layer: str, key: str = "mean_abs_offdiag") -> list[float]:
        """One summary (a key of :attr:`records`) of one layer, per measured epoch."""
        if layer not in self.layers:
            raise ValueError(f"layer {layer!r} is not monitored; monitored: {list(self.layers)}")
        return [r[key] for r in self.records if r["layer"] == layer]

    def as_dataframe(self):
        """:attr:`records` as a pandas DataFrame (needs pandas)."""
        import pandas as pd

        return pd.DataFrame.from_records(
            self.records,
            columns=[
                "epoch",
                "layer",
                "n_samples",
                "n_features",
                "n_constant",
                "mean_abs_offdiag",
                "effective_rank",
            ],
        )
