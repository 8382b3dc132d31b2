"""Checkpoints that resume training exactly: weights, optimizer, history and random states.

A checkpoint holds only tensors and plain Python values, so that it loads with
``torch.load(..., weights_only=True)``; the random states come from
:func:`corrlib.reproducibility.get_rng_state`.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from corrlib.history import History
from corrlib.reproducibility import get_rng_state, set_rng_state

__all__ = ["load_checkpoint", "save_checkpoint"]

_CHECKPOINT_VERSION = 1


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
        "rng": get_rng_state(generator),
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
        set_rng_state(state["rng"], generator)
    return int(state["epoch"]), History.from_dict(state["history"])
