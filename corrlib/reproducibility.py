"""Reproducibility and device choice: one call seeds everything a notebook uses, and the
random states can be saved and restored (for checkpoints that resume bit for bit)."""

from __future__ import annotations

import os
import random
import sys
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from corrlib._validation import as_integer, check_positive_int

__all__ = ["get_device", "get_rng_state", "seed_everything", "set_rng_state"]


def seed_everything(
    seed: int, *, num_threads: int | None = None, deterministic: bool = True
) -> None:
    """Seed Python's ``random``, NumPy and PyTorch (CPU and all GPUs) with one call.

    Parameters
    ----------
    seed : int
        The seed, a non-negative integer.
    num_threads : int, optional
        Fix PyTorch's intra-op thread count. Floating-point sums are split across threads, so
        the last digits of a result can depend on the thread count; notebooks whose printed
        outputs are checked fix it (the course uses 2).
    deterministic : bool
        Ask PyTorch for deterministic algorithms (``torch.use_deterministic_algorithms`` with
        ``warn_only=True``, cuDNN benchmarking off), so that repeated runs agree bit for bit.
        torch.compile's own flag is set only if the compiler is already imported (importing it
        costs seconds); call ``torch.use_deterministic_algorithms(True)`` before compiling.

    Notes
    -----
    ``torch.utils.data.DataLoader`` shuffles with its own generator: pass
    ``generator=torch.Generator().manual_seed(seed)`` to make its order reproducible too.
    """
    if as_integer(seed) is None or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    seed = as_integer(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - notebooks use the global RNG
    torch.manual_seed(seed)
    if num_threads is not None:
        torch.set_num_threads(check_positive_int(num_threads, "num_threads"))
    if deterministic:
        # cuBLAS needs this workspace setting for deterministic results on CUDA >= 10.2.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        _use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    else:
        _use_deterministic_algorithms(False)


def _use_deterministic_algorithms(mode: bool, warn_only: bool = False) -> None:
    """``torch.use_deterministic_algorithms`` without importing the torch.compile compiler.

    Since torch 2.4 the public function also sets ``torch._inductor.config.deterministic``,
    and importing that module costs about 2 s, in every notebook kernel and every DDP worker.
    The compiler's flag is set here only when the compiler is already loaded; a program
    that compiles models later should call ``torch.use_deterministic_algorithms`` itself.
    """
    inductor = sys.modules.get("torch._inductor.config")
    setter = getattr(torch._C, "_set_deterministic_algorithms", None)
    if setter is None:  # a torch without the private setter: the public call
        torch.use_deterministic_algorithms(mode, warn_only=warn_only)
        return
    if inductor is not None:
        inductor.deterministic = mode
    setter(mode, warn_only=warn_only)


def get_rng_state(generator: torch.Generator | None = None) -> dict[str, Any]:
    """Every random state :func:`seed_everything` sets, as tensors and plain Python values.

    Parameters
    ----------
    generator : torch.Generator, optional
        A generator of one's own (e.g. a DataLoader's shuffling generator) to include.

    Returns
    -------
    dict
        Keys ``"python"``, ``"numpy"``, ``"torch"``, ``"cuda"`` (one state per GPU, empty
        without CUDA) and ``"generator"`` (``None`` without one). Only tensors and plain values,
        so that it can be saved and read back with ``torch.load(..., weights_only=True)``.
    """
    name, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002 - global state
    return {
        "python": random.getstate(),
        "numpy": (name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "generator": None if generator is None else generator.get_state(),
    }


def set_rng_state(state: Mapping[str, Any], generator: torch.Generator | None = None) -> None:
    """Restore the random states saved by :func:`get_rng_state`.

    The CUDA states are restored only when this machine has as many GPUs as the one that saved
    them; ``generator`` receives the saved generator state, if one was saved.
    """
    random.setstate(state["python"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))  # noqa: NPY002
    torch.set_rng_state(state["torch"])
    cuda = state["cuda"]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    if generator is not None and state["generator"] is not None:
        generator.set_state(state["generator"])


def get_device(prefer: str | None = None) -> torch.device:
    """The best available device: CUDA, then Apple's MPS, then the CPU.

    Parameters
    ----------
    prefer : str, optional
        Force a device (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``); a ``ValueError`` if it
        is not available here.

    Examples
    --------
    >>> import corrlib, torch
    >>> x = torch.zeros(3, device=corrlib.get_device())
    """
    if prefer is not None:
        device = torch.device(prefer)
        available = {
            "cpu": True,
            "cuda": torch.cuda.is_available(),
            "mps": torch.backends.mps.is_available(),
        }.get(device.type, False)
        if not available:
            raise ValueError(f"device {prefer!r} is not available on this machine")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")
