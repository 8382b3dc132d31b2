"""A correct, small training loop: logits into the loss, real labels, per-epoch history,
optional activation penalties (e.g. DeCov), callbacks, and checkpoints that resume exactly.

Batches are ``(inputs, targets)`` pairs, as a :class:`torch.utils.data.DataLoader` over a
:class:`~torch.utils.data.TensorDataset` yields them.
"""

from __future__ import annotations

import math
import os
import random
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn
from tqdm.std import tqdm

from corrlib.hooks import ActivationRecorder

__all__ = [
    "Callback",
    "EvalResult",
    "History",
    "evaluate",
    "fit",
    "load_checkpoint",
    "save_checkpoint",
]

Callback = Callable[[int, "History", nn.Module], Any]
"""A fit callback: ``callback(epoch, history, model)``, called after each epoch (1-based).

Returning ``True`` stops training after that epoch. An object may also define
``on_fit_start(model)`` and ``on_fit_end(model)``; ``fit`` calls them before the first epoch and
at the end (also when training raises).
"""

_CHECKPOINT_VERSION = 1


@dataclass
class History:
    """Per-epoch results of :func:`fit`; entry ``i`` of every list belongs to epoch ``i + 1``.

    Attributes
    ----------
    train_loss : list of float
        Mean data loss over the epoch's training batches (weighted by batch size, computed as
        the model trained, in training mode); the penalty is not included.
    train_acc : list of float
        Accuracy on the training batches as they were seen (NaN when not a classification).
    val_loss, val_acc : list of float
        :func:`evaluate` on the validation loader after the epoch (NaN without one).
    penalty : list of float
        Mean weighted penalty over the training batches (0 without a penalty).
    """

    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    penalty: list[float] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.train_loss)

    def __getitem__(self, name: str) -> list[float]:
        """Dict-style access, ``history["val_acc"]``, to the same lists as the attributes."""
        if name not in self.keys():
            raise KeyError(f"History has {self.keys()}, not {name!r}")
        return getattr(self, name)

    def keys(self) -> list[str]:
        """The names of the per-epoch lists."""
        return [f.name for f in fields(self)]

    @property
    def epochs(self) -> list[int]:
        """The epoch numbers, ``[1, 2, ..., len(self)]``."""
        return list(range(1, len(self) + 1))

    def append(self, **row: float) -> None:
        """Add one epoch; ``row`` must give every field."""
        names = [f.name for f in fields(self)]
        if sorted(row) != sorted(names):
            raise ValueError(f"History.append needs exactly the fields {names}, got {sorted(row)}")
        for name in names:
            getattr(self, name).append(float(row[name]))

    def to_dict(self) -> dict[str, list[float]]:
        """Plain lists of floats (what a checkpoint stores)."""
        return {f.name: list(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Sequence[float]]) -> History:
        """Inverse of :meth:`to_dict`."""
        names = [f.name for f in fields(cls)]
        missing = [n for n in names if n not in data]
        if missing:
            raise ValueError(f"history is missing the fields {missing}")
        lengths = {len(data[n]) for n in names}
        if len(lengths) > 1:
            raise ValueError(f"history fields have different lengths: {sorted(lengths)}")
        return cls(**{n: [float(v) for v in data[n]] for n in names})

    def as_dataframe(self):
        """The history as a pandas DataFrame indexed by ``epoch`` (needs pandas)."""
        import pandas as pd

        frame = pd.DataFrame(self.to_dict(), index=pd.Index(self.epochs, name="epoch"))
        return frame


class EvalResult(NamedTuple):
    """Result of :func:`evaluate`: unpacks as ``loss, accuracy``."""

    loss: float
    accuracy: float


# --------------------------------------------------------------------------------------------
# helpers


def _resolve_device(model: nn.Module, device: torch.device | str | None) -> torch.device:
    """``device`` (moving the model there), or the device of the model's parameters."""
    if device is not None:
        device = torch.device(device)
        model.to(device)
        return device
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def _split_batch(batch: Any, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        kind = type(batch).__name__
        size = f" of length {len(batch)}" if isinstance(batch, (tuple, list)) else ""
        raise TypeError(f"batches must be (inputs, targets) pairs, got a {kind}{size}")
    inputs, targets = batch
    return inputs.to(device), targets.to(device)


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
    device = _resolve_device(model, device)
    was_training = model.training
    model.eval()
    total_loss, n, correct = 0.0, 0, 0
    try:
        for batch in loader:
            inputs, targets = _split_batch(batch, device)
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
# checkpoints


def _rng_state(generator: torch.Generator | None) -> dict[str, Any]:
    name, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002 - global state
    return {
        "python": random.getstate(),
        "numpy": (name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "generator": None if generator is None else generator.get_state(),
    }


def _set_rng_state(state: Mapping[str, Any], generator: torch.Generator | None) -> None:
    random.setstate(state["python"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))  # noqa: NPY002
    torch.set_rng_state(state["torch"])
    cuda = state["cuda"]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    if generator is not None and state["generator"] is not None:
        generator.set_state(state["generator"])


def save_checkpoint(
    path: str | os.PathLike[str],
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    epoch: int,
    history: History,
    *,
    generator: torch.Generator | None = None,
) -> None:
    """Save everything needed to continue training exactly where it stopped.

    The file holds the model's and the optimizer's ``state_dict``, the number of epochs done,
    the history, and the random states (Python, NumPy, torch CPU and CUDA, and ``generator``,
    the training DataLoader's generator). It is written to a temporary file first and then
    renamed, so an interrupted save never leaves a truncated checkpoint. Only tensors and plain
    Python values are stored, so :func:`load_checkpoint` can use ``weights_only=True``.

    Parameters
    ----------
    path : str or path-like
        Target file.
    model, optimizer
        Their states are saved.
    epoch : int
        Epochs completed.
    history : History
        Results so far.
    generator : torch.Generator, optional
        The training loader's shuffling generator.
    """
    if not isinstance(history, History):
        raise TypeError(f"history must be a History, got {type(history).__name__}")
    state = {
        "version": _CHECKPOINT_VERSION,
        "epoch": int(epoch),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "history": history.to_dict(),
        "rng": _rng_state(generator),
    }
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(
    path: str | os.PathLike[str],
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    *,
    generator: torch.Generator | None = None,
    restore_rng: bool = True,
    map_location: torch.device | str | None = "cpu",
) -> tuple[int, History]:
    """Load a :func:`save_checkpoint` file into ``model`` (and ``optimizer``).

    The file is read with ``torch.load(..., weights_only=True)``, which refuses arbitrary
    pickled objects.

    Parameters
    ----------
    path : str or path-like
        The checkpoint.
    model : nn.Module
        Receives the saved weights (same architecture).
    optimizer : torch.optim.Optimizer, optional
        Receives the saved optimizer state (same parameter groups).
    generator : torch.Generator, optional
        Receives the saved DataLoader generator state.
    restore_rng : bool
        Also restore the global random states (Python, NumPy, torch), as needed to resume a
        run bit for bit.
    map_location : optional
        Passed to :func:`torch.load`.

    Returns
    -------
    epoch : int
        Epochs completed when the checkpoint was saved.
    history : History
        The history up to then.
    """
    state = torch.load(Path(path), map_location=map_location, weights_only=True)
    if not isinstance(state, dict) or state.get("version") != _CHECKPOINT_VERSION:
        raise ValueError(f"not a corrlib checkpoint (version {_CHECKPOINT_VERSION})")
    model.load_state_dict(state["model"])
    if optimizer is not None:
        optimizer.load_state_dict(state["optimizer"])
    if restore_rng:
        _set_rng_state(state["rng"], generator)
    return int(state["epoch"]), History.from_dict(state["history"])


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
            inputs, targets = _split_batch(batch, device)
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
        ``callback(epoch, history, model)`` after each epoch; returning ``True`` stops training.
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
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(
            "optimizer must be a torch.optim.Optimizer built from model.parameters(), "
            f"got {type(optimizer).__name__}"
        )
    if resume and checkpoint_path is None:
        raise ValueError("resume=True needs a checkpoint_path")
    penalties = _check_penalty(penalty)
    loss_fn = _default_loss(loss_fn)
    device = _resolve_device(model, device)
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
                    stop = (cb(epoch, history, model) is True) or stop
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
