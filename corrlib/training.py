"""A correct, small training loop: logits into the loss, real labels, per-epoch history,
optional activation penalties (e.g. DeCov), callbacks, and checkpoints that resume exactly.

Batches are ``(inputs, targets)`` pairs, as a :class:`torch.utils.data.DataLoader` over a
:class:`~torch.utils.data.TensorDataset` yields them. The loop is here (:func:`fit`,
:func:`evaluate`); the :class:`~corrlib.history.History` it returns and the checkpoints it
writes (:mod:`corrlib.checkpoints`) have modules of their own, re-exported here.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np
import torch
from torch import nn
from tqdm.std import tqdm

from corrlib._batches import resolve_device, split_batch
from corrlib._validation import check_positive_int
from corrlib.activations import ActivationRecorder
from corrlib.checkpoints import load_checkpoint, save_checkpoint
from corrlib.history import History

__all__ = [
    "Callback",
    "EvalResult",
    "History",
    "evaluate",
    "fit",
    "load_checkpoint",
    "save_checkpoint",
]


class Callback(Protocol):
    """What :func:`fit` calls after each epoch: ``callback(epoch, history, model)``.

    ``epoch`` counts from 1; returning ``True`` stops training after that epoch (any other
    value, ``None`` included, continues). A plain function with this signature is a
    ``Callback``. An object may also define ``on_fit_start(model)`` and ``on_fit_end(model)``;
    ``fit`` calls them before the first epoch and at the end (also when training raises).
    :class:`corrlib.hooks.FeatureCorrelationMonitor` is such an object.
    """

    def __call__(self, epoch: int, history: History, model: nn.Module) -> Any: ...


class EvalResult(NamedTuple):
    """Result of :func:`evaluate`: unpacks as ``loss, accuracy``."""

    loss: float
    accuracy: float


# --------------------------------------------------------------------------------------------
# helpers


def _count_correct(outputs: torch.Tensor, targets: torch.Tensor) -> int | None:
    """Correct predictions for class logits ``(N, C)`` and integer labels ``(N,)``, else None."""
    is_labels = targets.ndim == 1 and not targets.is_floating_point()
    if outputs.ndim != 2 or not is_labels:
        return None
    return int((outputs.argmax(dim=1) == targets).sum())


def _accuracy(correct: int | None, n: int) -> float:
    return math.nan if correct is None or n == 0 else correct / n


def _default_loss(loss_fn: Callable[..., torch.Tensor] | None) -> Callable[..., torch.Tensor]:
    return nn.CrossEntropyLoss() if loss_fn is None else loss_fn


# --------------------------------------------------------------------------------------------
# evaluation


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Iterable[Any],
    *,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    device: torch.device | str | None = None,
) -> EvalResult:
    """Mean loss and accuracy of ``model`` over ``loader``, in eval mode, without gradients.

    Parameters
    ----------
    model : nn.Module
        Returns logits ``(N, C)`` for classification.
    loader : iterable of (inputs, targets)
        E.g. a DataLoader.
    loss_fn : callable, optional
        ``loss_fn(outputs, targets)`` returning the batch mean; default
        :class:`torch.nn.CrossEntropyLoss` (which expects logits and integer labels).
    device : torch.device or str, optional
        Where to compute (the model is moved there); default the model's device.

    Returns
    -------
    EvalResult
        ``(loss, accuracy)`` as floats, averaged over samples. ``accuracy`` is NaN unless the
        outputs are ``(N, C)`` and the targets integer labels ``(N,)``.

    Notes
    -----
    The model's training/eval mode is restored afterwards.
    """
    loss_fn = _default_loss(loss_fn)
    device = resolve_device(model, device)
    was_training = model.training
    model.eval()
    total_loss, n, correct = 0.0, 0, 0
    try:
        for batch in loader:
            inputs, targets = split_batch(batch, device)
            outputs = model(inputs)
            size = targets.shape[0]
            total_loss += float(loss_fn(outputs, targets)) * size
            n += size
            hits = _count_correct(outputs, targets)
            correct = None if hits is None or correct is None else correct + hits
    finally:
        model.train(was_training)
    if n == 0:
        raise ValueError("loader yielded no samples")
    return EvalResult(total_loss / n, _accuracy(correct, n))


# --------------------------------------------------------------------------------------------
# training


def _check_penalty(
    penalty: Mapping[str, Callable[[torch.Tensor], torch.Tensor]] | None,
) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    if penalty is None:
        return {}
    if not isinstance(penalty, Mapping):
        raise TypeError(
            "penalty must map layer names to callables, e.g. {'act1': DeCovLoss()}, "
            f"got {type(penalty).__name__}"
        )
    for name, fn in penalty.items():
        if not callable(fn):
            raise TypeError(f"penalty[{name!r}] must be callable, got {type(fn).__name__}")
    return dict(penalty)


def _train_one_epoch(
    model: nn.Module,
    loader: Iterable[Any],
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    penalty: dict[str, Callable[[torch.Tensor], torch.Tensor]],
    penalty_weight: float,
    device: torch.device,
    epoch: int,
) -> tuple[float, float, float]:
    """One pass over ``loader``; returns (mean data loss, accuracy, mean weighted penalty)."""
    model.train()
    recorder = ActivationRecorder(model, list(penalty), detach=False) if penalty else None
    total_loss, total_penalty, n, correct = 0.0, 0.0, 0, 0
    with recorder if recorder is not None else nullcontext():
        for step, batch in enumerate(loader):
            inputs, targets = split_batch(batch, device)
            optimizer.zero_grad(set_to_none=True)
            outputs = model(inputs)
            loss = loss_fn(outputs, targets)
            objective = loss
            pen_value = 0.0
            if recorder is not None:
                pen = penalty_weight * sum(
                    fn(recorder.activations[name]) for name, fn in penalty.items()
                )
                objective = loss + pen
                pen_value = pen.item()
            if not bool(torch.isfinite(objective)):
                raise FloatingPointError(
                    f"the training objective became {objective.item()} at epoch {epoch}, "
                    f"batch {step}; lower the learning rate or the penalty weight"
                )
            objective.backward()
            optimizer.step()
            size = targets.shape[0]
            total_loss += loss.item() * size
            total_penalty += pen_value * size
            n += size
            hits = _count_correct(outputs.detach(), targets)
            correct = None if hits is None or correct is None else correct + hits
        if recorder is not None:
            recorder.clear()
    if n == 0:
        raise ValueError("train_loader yielded no samples")
    return total_loss / n, _accuracy(correct, n), total_penalty / n


def fit(
    model: nn.Module,
    train_loader: Iterable[Any],
    val_loader: Iterable[Any] | None = None,
    *,
    epochs: int,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    penalty: Mapping[str, Callable[[torch.Tensor], torch.Tensor]] | None = None,
    penalty_weight: float = 1.0,
    callbacks: Sequence[Callback] = (),
    progress: bool = True,
    device: torch.device | str | None = None,
    checkpoint_path: str | os.PathLike[str] | None = None,
    resume: bool = False,
) -> History:
    """Train ``model`` for ``epochs`` epochs and return the per-epoch :class:`History`.

    Each step: ``optimizer.zero_grad()``, ``outputs = model(inputs)``,
    ``loss_fn(outputs, targets)`` plus the penalty, ``backward()``, ``optimizer.step()``.

    Parameters
    ----------
    model : nn.Module
        Returns logits (no softmax) for the default loss.
    train_loader : iterable of (inputs, targets)
        Training batches (a DataLoader; pass it a ``generator`` for a reproducible order).
    val_loader : iterable of (inputs, targets), optional
        Evaluated with :func:`evaluate` after every epoch.
    epochs : int
        Total number of epochs (including those already done when resuming).
    optimizer : torch.optim.Optimizer
        Built from ``model.parameters()``.
    loss_fn : callable, optional
        ``loss_fn(outputs, targets)`` returning the batch mean; default
        :class:`torch.nn.CrossEntropyLoss` on logits and integer labels.
    penalty : mapping of layer name to callable, optional
        Activation penalties: for each entry, ``fn(activation)`` is computed on that layer's
        output for the batch (recorded with a forward hook that keeps the graph), and
        ``penalty_weight * sum(...)`` is added to the loss. For DeCov on the first hidden
        layer of an :class:`~corrlib.models.MLP`: ``penalty={"act1": DeCovLoss()}``.
        Convolutional outputs arrive as ``(N, C, H, W)``; flatten them in ``fn``.
    penalty_weight : float
        Factor applied to the summed penalties.
    callbacks : sequence of callables
        ``callback(epoch, history, model)`` after each epoch; returning ``True`` (a Python, NumPy
        or 0-d tensor boolean) stops training; any other return value is ignored.
        Optional methods ``on_fit_start(model)`` / ``on_fit_end(model)`` are called around the
        run (the latter also on error). :class:`corrlib.hooks.FeatureCorrelationMonitor` is one.
    progress : bool
        Show a ``tqdm`` bar over epochs on stderr.
    device : torch.device or str, optional
        Move the model there and send batches there; default the model's device.
    checkpoint_path : str or path-like, optional
        Save a checkpoint (see :func:`save_checkpoint`) after every epoch, overwriting it.
    resume : bool
        Continue from ``checkpoint_path`` (``FileNotFoundError`` if it does not exist): weights,
        optimizer, history and random states are restored, and training continues at the next
        epoch, giving the same result as an uninterrupted run. The state of callbacks (and of
        learning-rate schedulers driven by them) is not saved.

    Returns
    -------
    History
        One entry per completed epoch (including resumed ones).

    Raises
    ------
    FloatingPointError
        If the training objective becomes NaN or infinite.
    """
    epochs = check_positive_int(epochs, "epochs")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(
            "optimizer must be a torch.optim.Optimizer built from model.parameters(), "
            f"got {type(optimizer).__name__}"
        )
    if resume and checkpoint_path is None:
        raise ValueError("resume=True needs a checkpoint_path")
    penalties = _check_penalty(penalty)
    loss_fn = _default_loss(loss_fn)
    device = resolve_device(model, device)
    generator = getattr(train_loader, "generator", None)

    history, start = History(), 0
    if resume:
        if not Path(checkpoint_path).exists():
            raise FileNotFoundError(f"no checkpoint to resume from at {checkpoint_path}")
        start, history = load_checkpoint(checkpoint_path, model, optimizer, generator=generator)

    try:
        for cb in callbacks:
            if hasattr(cb, "on_fit_start"):
                cb.on_fit_start(model)
        bar = tqdm(
            total=epochs,
            initial=min(start, epochs),
            desc="fit",
            unit="epoch",
            file=sys.stderr,
            disable=not progress,
        )
        with bar:
            for epoch in range(start + 1, epochs + 1):
                train_loss, train_acc, pen = _train_one_epoch(
                    model,
                    train_loader,
                    optimizer,
                    loss_fn,
                    penalties,
                    penalty_weight,
                    device,
                    epoch,
                )
                if val_loader is not None:
                    val_loss, val_acc = evaluate(model, val_loader, loss_fn=loss_fn, device=device)
                else:
                    val_loss, val_acc = math.nan, math.nan
                history.append(
                    train_loss=train_loss,
                    train_acc=train_acc,
                    val_loss=val_loss,
                    val_acc=val_acc,
                    penalty=pen,
                )
                stop = False
                for cb in callbacks:
                    stop = _asks_to_stop(cb(epoch, history, model)) or stop
                if checkpoint_path is not None:
                    save_checkpoint(
                        checkpoint_path, model, optimizer, epoch, history, generator=generator
                    )
                bar.set_postfix(loss=f"{train_loss:.3f}", val_acc=f"{val_acc:.3f}", refresh=False)
                bar.update(1)
                if stop:
                    break
    finally:
        for cb in callbacks:
            if hasattr(cb, "on_fit_end"):
                cb.on_fit_end(model)
    return history


def _asks_to_stop(result: object) -> bool:
    """Whether a callback's return value asks to stop: a true boolean (Python, NumPy or a
    one-element boolean tensor). Anything else (``None``, a number, a record) does not."""
    if isinstance(result, bool | np.bool_):
        return bool(result)
    if isinstance(result, torch.Tensor) and result.dtype == torch.bool and result.numel() == 1:
        return bool(result)
    return False
