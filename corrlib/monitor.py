"""Follow the correlation between a layer's features over training, one matrix per epoch.

:class:`FeatureCorrelationMonitor` records named layers with an
:class:`~corrlib.activations.ActivationRecorder`, streams their outputs into a
:class:`~corrlib.RunningCorrelation`, and summarises each epoch's matrix with
:mod:`corrlib.summaries`. It is a :func:`corrlib.training.fit` callback.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from typing import Any, Literal

import torch
from torch import nn

from corrlib._batches import batch_inputs, model_device
from corrlib._lazy import lazy_import
from corrlib._warnings import ConstantInputWarning, warn
from corrlib.activations import ActivationRecorder, as_feature_matrix
from corrlib.streaming import RunningCorrelation
from corrlib.summaries import effective_rank, mean_abs_offdiag

pd = lazy_import("pandas")

__all__ = ["FeatureCorrelationMonitor"]


class FeatureCorrelationMonitor:
    """Correlation matrices of named layers' features, one per epoch, with summaries.

    The layers' outputs are recorded by an :class:`~corrlib.activations.ActivationRecorder`,
    which hands each one to a per-layer :class:`corrlib.RunningCorrelation` (float64) instead
    of keeping it; at the end of an epoch the monitor stores the correlation matrix and its
    summaries (:mod:`corrlib.summaries`) and starts again. It is a
    :func:`corrlib.training.fit` callback.

    By default it measures the model as it is after each epoch, on a given loader (one model,
    the same inputs every epoch); ``measure="pooled"`` pools the epoch's training batches
    instead, taken from a model that changes from batch to batch.

    Parameters
    ----------
    model : nn.Module
        The network.
    layers : str or iterable of str
        Layer names from ``model.named_modules()``.
    loader : iterable of (inputs, targets), optional
        The inputs to measure on (e.g. the validation loader), needed by
        ``measure="after_epoch"``. Its batches are ``(inputs, ...)`` tuples or bare input
        tensors.
    measure : {"after_epoch", "pooled"}, optional
        How an epoch is measured:

        * ``"after_epoch"`` (the default): at each call the monitor runs the model over
          ``loader`` in eval mode, without gradients, and measures the model as it is at that
          moment.
        * ``"pooled"``: the training batches of the epoch, as the model trains (only forward
          passes in training mode are recorded, so validation passes are left out); no
          ``loader``. The hooks must be attached: pass the monitor to
          ``fit(callbacks=[monitor])``, which attaches it for the run, or use ``with monitor:``.

        Deprecated: without a loader and without ``measure`` the monitor measures
        ``"pooled"`` with a :class:`FutureWarning`; pass a loader, or ``measure="pooled"``.
    spatial : {"positions", "mean"}
        How convolutional outputs ``(N, C, H, W)`` become features; see
        :func:`as_feature_matrix`. Features are channels in both cases.

    Attributes
    ----------
    measure : {"after_epoch", "pooled"}
        How the epochs are measured.
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

    Raises
    ------
    ValueError
        For ``measure="after_epoch"`` without a loader, ``measure="pooled"`` with one, or
        another ``measure``.

    Examples
    --------
    >>> monitor = FeatureCorrelationMonitor(model, ["act1"], val_loader)  # doctest: +SKIP
    >>> fit(model, train_loader, val_loader, epochs=5, optimizer=opt,
    ...     callbacks=[monitor])                                          # doctest: +SKIP
    >>> monitor.as_dataframe()                                            # doctest: +SKIP
    """

    def __init__(
        self,
        model: nn.Module,
        layers: str | Iterable[str],
        loader: Iterable[Any] | None = None,
        *,
        measure: Literal["after_epoch", "pooled"] | None = None,
        spatial: Literal["positions", "mean"] = "positions",
    ) -> None:
        if spatial not in ("positions", "mean"):
            raise ValueError(f"spatial must be 'positions' or 'mean', got {spatial!r}")
        self.measure = _measure(measure, loader)
        self.model = model
        self._recorder = ActivationRecorder(model, layers, on_output=self._fold)
        self.modules = self._recorder.modules
        self.layers = self._recorder.layers
        self.loader = loader
        self.spatial = spatial
        self.epochs: list[int] = []
        self.matrices: dict[str, list[torch.Tensor]] = {name: [] for name in self.layers}
        self.records: list[dict[str, Any]] = []
        self._running: dict[str, RunningCorrelation] = {}

    # -- hooks ---------------------------------------------------------------------------------

    def _fold(self, name: str, output: torch.Tensor) -> None:
        """Stream one recorded output into the layer's running correlation."""
        features = as_feature_matrix(output, self.spatial).to(torch.float64)
        running = self._running.get(name)
        if running is None:
            running = RunningCorrelation(
                features.shape[1], dtype=torch.float64, device=features.device
            )
            self._running[name] = running
        running.update(features)

    def _attach(self, training_only: bool) -> None:
        if self._recorder.attached:
            raise RuntimeError("FeatureCorrelationMonitor is already attached")
        self._recorder.training_only = training_only
        self._recorder.attach()

    def remove(self) -> None:
        """Remove the hooks (safe to call more than once)."""
        self._recorder.remove()
        self._recorder.clear()

    def __enter__(self) -> FeatureCorrelationMonitor:
        if self.measure == "pooled":
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
            device = model_device(self.model)
            self.model.eval()
            self._attach(training_only=False)
            for batch in self.loader:
                self.model(batch_inputs(batch, device))
        finally:
            self.remove()
            self.model.train(was_training)

    def __call__(self, epoch: int, history: Any = None, model: nn.Module | None = None) -> None:
        """Measure ``epoch``: compute each layer's correlation, store it, and reset.

        The signature is the one of a :func:`~corrlib.training.fit` callback; ``history`` and
        ``model`` are not used.
        """
        if self.measure == "after_epoch":
            self._running.clear()
            self._run_loader()
        missing = [n for n in self.layers if n not in self._running or self._running[n].n < 2]
        if missing:
            raise RuntimeError(
                f"fewer than 2 samples recorded for layers {missing}; pass the monitor to "
                "fit(callbacks=...) or use it as a context manager (measure='pooled'), or give "
                "it a loader"
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


def _measure(measure: str | None, loader: Iterable[Any] | None) -> str:
    """The measurement asked for, checked against the loader (``None``: the default)."""
    if measure not in (None, "after_epoch", "pooled"):
        raise ValueError(f"measure must be 'after_epoch' or 'pooled', got {measure!r}")
    if measure is None and loader is None:
        warn(
            "FeatureCorrelationMonitor without a loader pools the epoch's training batches, "
            "from a model that changes as it trains; pass a loader to measure the model after "
            "each epoch (the default), or measure='pooled' to keep this behaviour",
            FutureWarning,
        )
        return "pooled"
    measure = "after_epoch" if measure is None else measure
    if measure == "after_epoch" and loader is None:
        raise ValueError(
            "measure='after_epoch' needs a loader to run the model over; pass one, or "
            "measure='pooled' to pool the training batches"
        )
    if measure == "pooled" and loader is not None:
        raise ValueError("measure='pooled' records the training batches; it takes no loader")
    return measure
