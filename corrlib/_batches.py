"""Where a model lives and how a loader's batches reach it (shared by training and hooks)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (the CPU for a model without parameters)."""
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def resolve_device(model: nn.Module, device: torch.device | str | None) -> torch.device:
    """``device`` (moving the model there), or, when ``None``, the model's own device."""
    if device is None:
        return model_device(model)
    device = torch.device(device)
    model.to(device)
    return device


def split_batch(batch: Any, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """An ``(inputs, targets)`` batch, both moved to ``device``.

    Raises
    ------
    TypeError
        If ``batch`` is not a pair.
    """
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        kind = type(batch).__name__
        size = f" of length {len(batch)}" if isinstance(batch, (tuple, list)) else ""
        raise TypeError(f"batches must be (inputs, targets) pairs, got a {kind}{size}")
    inputs, targets = batch
    return inputs.to(device), targets.to(device)


def batch_inputs(batch: Any, device: torch.device) -> torch.Tensor:
    """The inputs of a batch moved to ``device``: a bare tensor, or the first item of a tuple."""
    inputs = batch[0] if isinstance(batch, (tuple, list)) else batch
    if not isinstance(inputs, torch.Tensor):
        raise TypeError(
            f"a batch must be a tensor or an (inputs, ...) tuple, got {type(inputs).__name__}"
        )
    return inputs.to(device)
