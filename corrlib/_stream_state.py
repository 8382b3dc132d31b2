"""What corrlib's two stream objects share: result dtype codes, and the exchange of states.

:class:`corrlib.RunningCorrelation` and :class:`corrlib.streaming_cka.MinibatchCKA` are modules
whose buffers are their whole state. Both pool the states of every ``torch.distributed`` rank
with :func:`gather_states` (a header of integers and a flat float64 state per rank, in rank
order), and both update their buffers under :func:`state_update`, which keeps the buffers
ordinary tensors even when the caller runs inside ``torch.inference_mode()`` (an inference
tensor could not be updated in place after the evaluation loop ends).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import torch

# Result dtypes a state can have, by code (for exchanging them between ranks).
DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)

F = TypeVar("F", bound=Callable[..., Any])


def state_update(method: F) -> F:
    """Run ``method`` without autograd and outside inference mode (buffers stay ordinary)."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with torch.inference_mode(False), torch.no_grad():
            return method(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def dtype_code(dtype: torch.dtype) -> int:
    """The code of a result dtype in :data:`DTYPES` (float64 for any other)."""
    return DTYPES.index(dtype) if dtype in DTYPES else DTYPES.index(torch.float64)


def promoted(codes: list[int]) -> torch.dtype:
    """The promotion of the result dtypes with these codes."""
    return functools.reduce(torch.promote_types, (DTYPES[c] for c in codes))


def distributed_world(group: Any) -> int | None:
    """The size of ``group``, or ``None`` without an initialised process group."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return None
    return dist.get_world_size(group)


def gather_headers(header: list[int], device: torch.device, group: Any) -> list[list[int]]:
    """Every rank's header (a list of integers of one length), in rank order."""
    import torch.distributed as dist

    world = dist.get_world_size(group)
    mine = torch.tensor(header, dtype=torch.int64, device=device)
    headers = [torch.zeros_like(mine) for _ in range(world)]
    dist.all_gather(headers, mine, group=group)
    return [[int(v) for v in h.tolist()] for h in headers]


def gather_flat(flat: torch.Tensor, group: Any) -> list[torch.Tensor]:
    """Every rank's flat state (``flat`` travels in float64), in rank order."""
    import torch.distributed as dist

    world = dist.get_world_size(group)
    mine = flat.to(torch.float64)
    flats = [torch.empty_like(mine) for _ in range(world)]
    dist.all_gather(flats, mine, group=group)
    return flats


def split(flat: torch.Tensor, sizes: list[int]) -> list[torch.Tensor]:
    """``flat`` cut into consecutive pieces of these sizes."""
    return list(torch.split(flat, sizes))
