"""The base of corrlib's stream statistics: registered states, one merge, one exchange, one dtype rule.

:class:`corrlib.RunningCorrelation` and :class:`corrlib.streaming_cka.MinibatchCKA` keep their
whole state in tensors registered with :meth:`StreamingStatistic.add_state`, each with a merge
rule (a sum, a logical or, or the subclass's own rule, e.g. Chan's for means and co-moments).
From that registry :class:`StreamingStatistic` gives both (the semantics follow torchmetrics'
``Metric``):

* :meth:`~StreamingStatistic.merge`, and :meth:`~StreamingStatistic.sync` /
  :meth:`~StreamingStatistic.unsync` across ``torch.distributed`` ranks, through one wire format
  (a header of integers and a flat payload per rank) and the subclass's :meth:`_fold`;
* calling the object (``forward``): fold a batch in and return the statistic of that batch;
* one dtype rule: accumulators are float64 where their device has it (float32 on Apple's MPS)
  unless :meth:`~StreamingStatistic.set_dtype` says otherwise, and casting the module or a
  parent model (``.half()``, ``.to(torch.float16)``) moves the states without casting them;
* ``state_dict`` keeps the result dtype, and the states are updated outside inference mode
  (:func:`state_update`), so that they stay ordinary tensors after an evaluation loop.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Mapping
from typing import Any, Literal, NamedTuple, Self, TypeVar

import torch
from torch import nn

from corrlib._lazy import lazy_import

dist = lazy_import("torch.distributed")

# Result dtypes, by code on the wire.
DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)

Merge = Literal["sum", "any"]
F = TypeVar("F", bound=Callable[..., Any])


def state_update(method: F) -> F:
    """Run ``method`` without autograd and outside inference mode (states stay ordinary)."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with torch.inference_mode(False), torch.no_grad():
            return method(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def supports_float64(device: torch.device) -> bool:
    """Whether ``device`` has float64 (Apple's MPS devices have not)."""
    return device.type != "mps"


def on_device(dtype: torch.dtype, device: torch.device) -> torch.dtype:
    """``dtype``, or float32 in its place where ``device`` has no float64."""
    return torch.float32 if dtype == torch.float64 and not supports_float64(device) else dtype


def dtype_code(dtype: torch.dtype) -> int:
    """The code of a dtype in :data:`DTYPES` (that of float64 for any other)."""
    return DTYPES.index(dtype) if dtype in DTYPES else DTYPES.index(torch.float64)


class Description(NamedTuple):
    """What a state says about itself before its tensors are folded in (its wire header)."""

    has_data: bool
    result_dtype: torch.dtype
    form: tuple[int, ...]  # the subclass's sizes and flags

    def to_ints(self) -> list[int]:
        return [int(self.has_data), dtype_code(self.result_dtype), *self.form]

    @classmethod
    def from_ints(cls, ints: list[int]) -> Description:
        return cls(bool(ints[0]), DTYPES[ints[1]], tuple(ints[2:]))


class StreamingStatistic(nn.Module):
    """A statistic whose registered states are its whole memory of the data seen.

    Subclasses register their states in :meth:`_empty_state` (also called by :meth:`reset`)
    and implement ``update``, ``compute``, :meth:`_has_data`, :meth:`_form` and :meth:`_take`;
    those whose states do not merge by sums and logical ors override :meth:`_fold`.
    """

    result_dtype: torch.dtype

    def __init__(self) -> None:
        super().__init__()
        self._merge_rules: dict[str, Merge | None] = {}
        self._accumulators: set[str] = set()
        self._accumulate_in: torch.dtype | None = None  # set by set_dtype
        self._local: dict[str, Any] | None = None  # the local state, while synced

    # -- registered states ---------------------------------------------------------------------

    def add_state(
        self,
        name: str,
        default: torch.Tensor,
        *,
        merge: Merge | None = None,
        accumulator: bool = False,
    ) -> None:
        """Register (or register again, e.g. resized) the state ``name`` with value ``default``.

        Parameters
        ----------
        merge : {"sum", "any"}, optional
            How the state of other data folds into it; ``None``: by the subclass's :meth:`_fold`.
        accumulator : bool
            Keep it in the accumulator dtype of its device (see :meth:`set_dtype`) instead of
            ``default``'s dtype.
        """
        if accumulator:
            self._accumulators.add(name)
            default = default.to(self._accumulator_dtype(default.device))
        self._merge_rules[name] = merge
        self.register_buffer(name, default)

    def _states(self) -> dict[str, torch.Tensor]:
        return {name: getattr(self, name) for name in self._merge_rules}

    @property
    def device(self) -> torch.device:
        """Where the states live."""
        return next(iter(self._states().values())).device

    def _empty_state(self, device: torch.device) -> None:
        """Register the states of no data, on ``device``."""
        raise NotImplementedError

    def _has_data(self) -> bool:
        raise NotImplementedError

    def _form(self) -> tuple[int, ...]:
        """The sizes and flags another state must agree with before merging (integers)."""
        raise NotImplementedError

    def _take(self, other: Description) -> None:
        """Get ready to fold in a state so described: raise ``ValueError`` if it cannot be
        merged, let an empty state take its form, and follow the result dtype rule."""
        raise NotImplementedError

    def _fold(self, other: Mapping[str, torch.Tensor]) -> None:
        """Fold the states of other data (by name, on this device) into these, by their rules."""
        for name, rule in self._merge_rules.items():
            if rule == "sum":
                getattr(self, name).add_(other[name])
            elif rule == "any":
                getattr(self, name).logical_or_(other[name])
            else:
                raise NotImplementedError(f"{type(self).__name__} must fold {name!r} itself")

    def _describe(self) -> Description:
        return Description(self._has_data(), self.result_dtype, self._form())

    @state_update
    def reset(self) -> Self:
        """Forget every batch seen (the state returns to that of no data, on the same device)."""
        self._local = None
        self._empty_state(self.device)
        return self

    @state_update
    def _blank(self) -> Self:
        """An empty statistic with this one's settings (dtypes, device)."""
        return copy.deepcopy(self).reset()

    def _check_unsynced(self, action: str) -> None:
        if self._local is not None:
            raise RuntimeError(
                f"{type(self).__name__} holds the synced state of every rank; call unsync() "
                f"before {action}"
            )

    def _check_has_data(self, action: str) -> None:
        if not self._has_data():
            raise RuntimeError(
                f"{type(self).__name__}.{action} called before any update (the state holds no data)"
            )

    # -- merging, calling, syncing -------------------------------------------------------------

    @state_update
    def merge(self, other: Self) -> Self:
        """Fold ``other``'s state (of other data) into this one, in place, and return ``self``.

        The result is the state of all the data of both, in any order of merging. An empty
        state moves to ``other``'s device, as it does to that of a first batch.
        """
        if not isinstance(other, type(self)):
            raise TypeError(f"can only merge a {type(self).__name__}, got {type(other).__name__}")
        self._check_unsynced("merging")
        description = other._describe()
        self._take(description)
        if description.has_data:
            if not self._has_data():
                self.to(other.device)
            self._fold({name: t.to(self.device) for name, t in other._states().items()})
        return self

    def forward(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        """Fold a batch into the state (as ``update`` does) and return the value of that batch
        alone: ``stat(batch)``."""
        self._check_unsynced("updating")
        batch = self._blank()
        batch.update(*args, **kwargs)
        value = batch.compute()
        self.merge(batch)
        return value

    @state_update
    def sync(self, group: Any = None) -> Self:
        """Replace this state by the pooled state of every rank of a ``torch.distributed`` group.

        Every rank must call it (it is a collective); afterwards all ranks hold the same state,
        that of all their data (folded in rank order, so identical on every rank), and
        ``compute`` gives the global value; :meth:`unsync` brings the local state back. Without
        an initialised process group the local state is the global one. Works on gloo (CPU)
        and NCCL (states on the GPU).

        Raises
        ------
        RuntimeError
            If the state is synced already (a second sync would count every rank's data
            again): call :meth:`unsync` first.
        ValueError
            On every rank, if the ranks' states cannot be merged.
        """
        if self._local is not None:
            raise RuntimeError(
                f"{type(self).__name__} is synced already (a second sync would count every "
                "rank's data again); call unsync() first"
            )
        local = copy.deepcopy(self.state_dict())
        if distributed_world(group) is not None:
            self.load_state_dict(self._pooled(group).state_dict())
        self._local = local
        return self

    @state_update
    def unsync(self) -> Self:
        """Bring back the local state that :meth:`sync` replaced; return ``self``.

        Raises
        ------
        RuntimeError
            If the state is not synced.
        """
        if self._local is None:
            raise RuntimeError(f"{type(self).__name__} is not synced; there is nothing to unsync")
        local, self._local = self._local, None
        self.load_state_dict(local)
        return self

    def _pooled(self, group: Any) -> Self:
        """A statistic holding every rank's state, folded in rank order.

        The wire format: each rank sends a header (the payload's length and its
        :class:`Description`), then its states flattened into one float64 payload (float32
        where the device has no float64), padded to the longest.
        """
        wire = on_device(torch.float64, self.device)
        payload = torch.cat([t.flatten().to(wire) for t in self._states().values()])
        header = [payload.numel(), *self._describe().to_ints()]
        headers = all_gather(torch.tensor(header, device=self.device), group)
        longest = max(int(h[0]) for h in headers)
        padded = torch.cat([payload, payload.new_zeros(longest - payload.numel())])
        pooled = self._blank()
        for header_ints, flat in zip(headers, all_gather(padded, group), strict=True):
            other = Description.from_ints([int(v) for v in header_ints[1:]])
            pooled._take(other)
            if other.has_data:
                pooled._fold(pooled._unflatten(flat))
        return pooled

    def _unflatten(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        """A payload cut into tensors of the shapes and dtypes of this object's states."""
        states, start = {}, 0
        for name, mine in self._states().items():
            states[name] = flat[start : start + mine.numel()].view(mine.shape).to(mine.dtype)
            start += mine.numel()
        return states

    # -- dtypes and devices ----------------------------------------------------------------------

    def _accumulator_dtype(self, device: torch.device) -> torch.dtype:
        return on_device(self._accumulate_in or torch.float64, device)

    def set_dtype(self, dtype: torch.dtype) -> Self:
        """Keep the accumulators in ``dtype`` from now on (casting them now); return ``self``.

        The explicit way to choose it: casting the module or a parent model (``.half()``,
        ``.double()``, ``.to(torch.float16)``) leaves the states' dtypes alone. By default
        they are float64; on a device without float64 (Apple's MPS) float64 becomes float32.
        """
        if not dtype.is_floating_point:
            raise TypeError(f"dtype must be a floating dtype, got {dtype}")
        self._accumulate_in = dtype
        return self._apply(lambda t: t)

    @state_update
    def _apply(self, fn: Callable[[torch.Tensor], torch.Tensor], recurse: bool = True) -> Self:
        """Move the states to where ``fn`` sends a tensor, without casting them.

        What ``nn.Module.to``, ``.cuda()``, ``.half()`` and the like call, also from a parent.
        Accumulators take the accumulator dtype of the new device, the other states keep theirs.
        """
        device = fn(torch.zeros((), device=self.device)).device
        for name, state in self._states().items():
            dtype = self._accumulator_dtype(device) if name in self._accumulators else state.dtype
            narrowing = dtype.itemsize < state.dtype.itemsize  # cast where both dtypes exist
            moved = state.to(dtype).to(device) if narrowing else state.to(device).to(dtype)
            setattr(self, name, moved)
        return self

    # -- saving ----------------------------------------------------------------------------------

    def _flags(self) -> tuple[int, ...]:
        """Small integers ``state_dict`` saves besides the states (none by default)."""
        return ()

    def _set_flags(self, flags: list[int]) -> None:
        pass

    def get_extra_state(self) -> torch.Tensor:
        """The result dtype, as the dtype of a tensor holding :meth:`_flags` (so that every
        entry of ``state_dict`` is a tensor)."""
        return torch.tensor(self._flags(), dtype=self.result_dtype)

    def set_extra_state(self, state: torch.Tensor) -> None:
        self.result_dtype = state.dtype
        self._set_flags([int(v) for v in state.tolist()])

    def _load_from_state_dict(
        self,
        state_dict: dict,
        prefix: str,
        local_metadata: dict,
        strict: bool,
        missing_keys: list[str],
        *args: Any,
    ) -> None:
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, *args
        )
        # saved before the result dtype was: keep the one the tensors gave
        if prefix + "_extra_state" in missing_keys:
            missing_keys.remove(prefix + "_extra_state")


def distributed_world(group: Any) -> int | None:
    """The size of ``group``, or ``None`` without an initialised process group."""
    if not (dist.is_available() and dist.is_initialized()):
        return None
    return dist.get_world_size(group)


def all_gather(tensor: torch.Tensor, group: Any) -> list[torch.Tensor]:
    """Every rank's ``tensor`` (of one shape and dtype on every rank), in rank order."""
    gathered = [torch.empty_like(tensor) for _ in range(dist.get_world_size(group))]
    dist.all_gather(gathered, tensor, group=group)
    return gathered
