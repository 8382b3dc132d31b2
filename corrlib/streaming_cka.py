"""Linear CKA over mini-batches: :class:`MinibatchCKA`, the stream form of
:func:`corrlib.similarity.linear_cka` (also importable as ``corrlib.similarity.MinibatchCKA``).

Like :class:`corrlib.RunningCorrelation` it is a module whose buffers are its whole state,
updated outside inference mode and pooled across ``torch.distributed`` ranks by the helpers
the two share (:mod:`corrlib._stream_state`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from corrlib import _stream_state
from corrlib._cka_kernel import (
    as_rep_list,
    check_sample_counts,
    cka_from_terms,
    constant_message,
    dtypes,
    exponents,
    hsic_terms,
    is_single,
    prepare,
    unscaled,
    varies,
)
from corrlib._stream_state import state_update
from corrlib._validation import as_real_tensor
from corrlib._warnings import ConstantInputWarning, warn

__all__ = ["MinibatchCKA"]


class MinibatchCKA(nn.Module):
    """Linear CKA accumulated over mini-batches (Nguyen, Raghu and Kornblith, 2021).

    For each batch the unbiased HSIC (Song et al., 2012) of every pair is computed; the
    result is ``mean(HSIC_xy) / sqrt(mean(HSIC_xx) mean(HSIC_yy))`` over the batches. Memory
    does not grow with the number of batches, and no activation needs to be kept. The value
    estimates the same quantity as ``linear_cka(X, Y, debiased=True)`` on all the data, with
    an error that shrinks as the batches grow; batches should be shuffled, and the same batch
    must be fed to both representations.

    Each :meth:`update` takes one tensor per side (a single pair: :meth:`compute` gives a 0-d
    tensor), or a list of tensors per side (several layers: :meth:`compute` gives the
    ``(len(x), len(y))`` CKA matrix); ``y=None`` compares the layers of ``x`` with themselves.

    Like :class:`corrlib.RunningCorrelation` it is a module whose buffers are the whole state:
    the sums of the per-batch HSIC terms (float64), which representations varied within some
    batch, and the batch and sample counts. States of disjoint data therefore add up:
    :meth:`merge` folds another state in, :meth:`sync` pools the states of every
    ``torch.distributed`` rank, and ``state_dict`` / ``load_state_dict`` save and restore it
    (also into a fresh ``MinibatchCKA()``, which takes the saved shapes).

    Attributes
    ----------
    n_batches, n_samples : int
        Batches and samples seen.

    Examples
    --------
    >>> import torch
    >>> from corrlib.similarity import MinibatchCKA
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.randn(512, 8, generator=g)
    >>> acc = MinibatchCKA()
    >>> for xb in x.split(128):
    ...     _ = acc.update(xb, 2 * xb)
    >>> round(float(acc.compute()), 6)
    1.0
    """

    cross: torch.Tensor
    self_x: torch.Tensor
    self_y: torch.Tensor
    varies_x: torch.Tensor
    varies_y: torch.Tensor
    batch_count: torch.Tensor
    sample_count: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self._empty(torch.device("cpu"))  # explicitly: not torch's default device
        self._single: bool | None = None
        self._symmetric: bool | None = None
        self.result_dtype = torch.get_default_dtype()

    # -- state -----------------------------------------------------------------------------

    @property
    def n_batches(self) -> int:
        """Number of batches seen."""
        return int(self.batch_count)

    @property
    def n_samples(self) -> int:
        """Number of samples seen (summed over batches)."""
        return int(self.sample_count)

    @property
    def shape(self) -> tuple[int, int]:
        """``(len(x), len(y))``: the number of representations per side (``(0, 0)`` if empty)."""
        return (self.cross.shape[0], self.cross.shape[1])

    def extra_repr(self) -> str:
        return f"shape={self.shape}, n_batches={self.n_batches}, n_samples={self.n_samples}"

    def reset(self) -> MinibatchCKA:
        """Forget every batch seen (the state returns to that of ``MinibatchCKA()``)."""
        self._empty(self.cross.device)
        self._single = self._symmetric = None
        self.result_dtype = torch.get_default_dtype()
        return self

    @state_update
    def _empty(self, device: torch.device) -> None:
        """The state of no batches, on ``device`` (ordinary tensors, even in inference mode)."""
        self.register_buffer("batch_count", torch.zeros((), dtype=torch.int64, device=device))
        self.register_buffer("sample_count", torch.zeros((), dtype=torch.int64, device=device))
        self._resize(0, 0, device)

    @state_update
    def _resize(self, k: int, m: int, device: torch.device) -> None:
        """Empty sums for ``k`` x ``m`` representations on ``device``."""
        f64 = torch.float64
        self.register_buffer("cross", torch.zeros(k, m, dtype=f64, device=device))
        self.register_buffer("self_x", torch.zeros(k, dtype=f64, device=device))
        self.register_buffer("self_y", torch.zeros(m, dtype=f64, device=device))
        self.register_buffer("varies_x", torch.zeros(k, dtype=torch.bool, device=device))
        self.register_buffer("varies_y", torch.zeros(m, dtype=torch.bool, device=device))
        self.batch_count = self.batch_count.to(device)
        self.sample_count = self.sample_count.to(device)

    def _check_form(self, single: bool, symmetric: bool, shape: tuple[int, int]) -> None:
        """Raise unless a state that has a form has this one (an empty state takes any)."""
        if self._single is None:
            return
        if (single, symmetric) != (self._single, self._symmetric):
            raise ValueError("every update must have the same form (tensor/list, with/without y)")
        if shape != self.shape:
            raise ValueError(f"expected {self.shape} representations per side, got {shape}")

    def _adopt_form(
        self, single: bool, symmetric: bool, shape: tuple[int, int], device: torch.device
    ) -> None:
        """Give an empty state its form, or check that a non-empty one has the same."""
        self._check_form(single, symmetric, shape)
        if self._single is None:
            self._single, self._symmetric = single, symmetric
            self._resize(*shape, device)

    def get_extra_state(self) -> dict[str, Any]:
        """The form of the updates and the result dtype (saved in ``state_dict``)."""
        return {
            "single": self._single,
            "symmetric": self._symmetric,
            "dtype": str(self.result_dtype).removeprefix("torch."),
        }

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self._single, self._symmetric = state["single"], state["symmetric"]
        self.result_dtype = getattr(torch, state["dtype"])

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args: Any) -> None:
        # a fresh state takes the saved shapes before the buffers are copied in
        incoming = state_dict.get(prefix + "cross")
        if incoming is not None and tuple(incoming.shape) != self.shape:
            self._resize(*incoming.shape, self.cross.device)
        super()._load_from_state_dict(state_dict, prefix, *args)

    # -- updating ------------------------------------------------------------------------------

    @state_update
    def update(self, x: Any, y: Any = None) -> MinibatchCKA:
        """Add one batch: a tensor ``(b, ...)`` per side, or a list of them (``b >= 4``).

        Returns ``self``.

        Raises
        ------
        ValueError
            Fewer than 4 samples, sides with different sample counts, or a batch of another
            form or number of representations than the first one.
        TypeError
            One side a tensor and the other a list.
        """
        single = is_single(x)
        symmetric = y is None
        if single and symmetric:
            raise ValueError("MinibatchCKA.update needs y when x is a single representation")
        list_x = [x] if single else as_rep_list(x, "x")
        if symmetric:
            list_y = list_x
        else:
            if is_single(y) != single:
                raise TypeError("x and y must both be tensors or both be lists of tensors")
            list_y = [y] if single else as_rep_list(y, "y")
        tensors_x = [as_real_tensor(t, f"x[{i}]") for i, t in enumerate(list_x)]
        tensors_y = (
            tensors_x if symmetric else [as_real_tensor(t, f"y[{j}]") for j, t in enumerate(list_y)]
        )
        if not tensors_x or not tensors_y:
            raise ValueError("MinibatchCKA.update needs at least one representation per side")
        check_sample_counts([("x", tensors_x), ("y", tensors_y)], "every representation in a batch")
        n = tensors_x[0].shape[0]
        if n < 4:
            raise ValueError(f"each batch needs at least 4 samples for the unbiased HSIC, got {n}")
        device = tensors_x[0].device
        if self.n_batches > 0 and device != self.cross.device:
            raise ValueError(
                f"batch is on {device} but the state holding data is on {self.cross.device}"
            )
        shape = (len(tensors_x), len(tensors_y))
        self._check_form(single, symmetric, shape)
        work, dtype = dtypes(tensors_x + tensors_y)
        prep_x = [prepare(t, f"x[{i}]", work) for i, t in enumerate(tensors_x)]
        prep_y = (
            prep_x if symmetric else [prepare(t, f"y[{j}]", work) for j, t in enumerate(tensors_y)]
        )
        cross, self_x, self_y = hsic_terms(prep_x, None if symmetric else prep_y, True)
        self._adopt_form(single, symmetric, shape, device)
        # in the data's own units (each batch's representations have their own scaling)
        scale = n * (n - 3)
        exp_x = exponents(prep_x)
        exp_y = exp_x if symmetric else exponents(prep_y)
        self.cross += unscaled(cross, exp_x, exp_y) / scale
        self.self_x += unscaled(self_x, exp_x, exp_x) / scale
        self.self_y += unscaled(self_y, exp_y, exp_y) / scale
        self.varies_x |= varies(prep_x, device)
        self.varies_y |= varies(prep_y, device)
        self.result_dtype = (
            dtype if self.n_batches == 0 else torch.promote_types(self.result_dtype, dtype)
        )
        self.batch_count += 1
        self.sample_count += n
        return self

    @state_update
    def merge(self, other: MinibatchCKA) -> MinibatchCKA:
        """Fold ``other``'s state (of other batches) into this one, in place; return ``self``.

        The result is the state of all the batches of both, in any order of merging.
        """
        if not isinstance(other, MinibatchCKA):
            raise TypeError(f"can only merge a MinibatchCKA, got {type(other).__name__}")
        if other.n_batches == 0:
            return self
        assert other._single is not None and other._symmetric is not None
        was_empty = self.n_batches == 0
        if was_empty:
            self.reset()
        self._adopt_form(other._single, other._symmetric, other.shape, self.cross.device)
        self._fold(
            other.cross,
            other.self_x,
            other.self_y,
            other.varies_x,
            other.varies_y,
            other.n_batches,
            other.n_samples,
        )
        self.result_dtype = (
            other.result_dtype
            if was_empty
            else torch.promote_types(self.result_dtype, other.result_dtype)
        )
        return self

    def _fold(
        self,
        cross: torch.Tensor,
        self_x: torch.Tensor,
        self_y: torch.Tensor,
        varies_x: torch.Tensor,
        varies_y: torch.Tensor,
        n_batches: int,
        n_samples: int,
    ) -> None:
        device = self.cross.device
        self.cross += cross.to(device, torch.float64)
        self.self_x += self_x.to(device, torch.float64)
        self.self_y += self_y.to(device, torch.float64)
        self.varies_x |= varies_x.to(device)
        self.varies_y |= varies_y.to(device)
        self.batch_count += n_batches
        self.sample_count += n_samples

    @state_update
    def sync(self, group: Any = None) -> MinibatchCKA:
        """Replace this state by the pooled state of every rank of a ``torch.distributed`` group.

        Every rank must call it (it is a collective); afterwards all ranks hold the same state,
        that of all their batches together (summed in rank order, so the result is identical
        on every rank), and :meth:`compute` gives what one process fed every batch would get.
        A rank that saw no batch takes the others' form and shape. Without an initialised
        process group it does nothing. Works on gloo (CPU) and NCCL (state on the GPU). Call
        it once, right before :meth:`compute`: a second call would count every batch again.

        Raises
        ------
        ValueError
            On every rank, if the ranks with data have different forms or shapes.
        """
        if _stream_state.distributed_world(group) is None:
            return self
        device = self.cross.device
        k, m = self.shape
        rows = _stream_state.gather_headers(
            [
                self.n_batches,
                self.n_samples,
                k,
                m,
                -1 if self._single is None else int(self._single),
                -1 if self._symmetric is None else int(self._symmetric),
                _stream_state.dtype_code(self.result_dtype),
            ],
            device,
            group,
        )
        with_data = [r for r in rows if r[0] > 0]
        if not with_data:
            return self
        forms = {tuple(r[2:6]) for r in with_data}
        if len(forms) > 1:
            raise ValueError(
                "MinibatchCKA.sync: the ranks' states have different forms or shapes "
                f"(len(x), len(y), single, symmetric): {sorted(forms)}"
            )
        k, m, single, symmetric = next(iter(forms))
        if self.n_batches == 0:
            self._resize(k, m, device)
        flat = torch.cat(
            [
                self.cross.flatten(),
                self.self_x,
                self.self_y,
                self.varies_x.to(torch.float64),
                self.varies_y.to(torch.float64),
            ]
        )
        flats = _stream_state.gather_flat(flat, group)
        self.reset()
        self._adopt_form(bool(single), bool(symmetric), (k, m), device)
        for row, state in zip(rows, flats, strict=True):
            if row[0] == 0:
                continue
            cross, rest = state[: k * m].view(k, m), state[k * m :]
            self_x, self_y, rest = rest[:k], rest[k : k + m], rest[k + m :]
            varies_x, varies_y = rest[:k] != 0, rest[k : k + m] != 0
            self._fold(cross, self_x, self_y, varies_x, varies_y, row[0], row[1])
        self.result_dtype = _stream_state.promoted([r[6] for r in with_data])
        return self

    # -- result --------------------------------------------------------------------------------

    def compute(self) -> torch.Tensor:
        """CKA from the batches seen: a 0-d tensor, or the ``(len(x), len(y))`` matrix.

        In the promoted dtype of the data (float16 and bfloat16 are computed in float32), on
        the state's device. A representation that was exactly constant within every batch
        gets NaN with a :class:`~corrlib.ConstantInputWarning`; an entry whose summed
        self-similarity is not positive is NaN too. Without ``y`` the matrix has an exact unit
        diagonal.

        Raises
        ------
        RuntimeError
            Before any update.
        """
        if self.n_batches == 0:
            raise RuntimeError("MinibatchCKA.compute called before any update")
        names = [f"x[{i}]" for i, v in enumerate(self.varies_x.tolist()) if not v]
        if not self._symmetric:
            names += [f"y[{j}]" for j, v in enumerate(self.varies_y.tolist()) if not v]
        if names:
            if self._single:
                names = [name[0] for name in names]
            warn(constant_message(names, "within every batch"), ConstantInputWarning)
        cka = cka_from_terms(
            self.cross,
            self.self_x,
            self.self_y,
            self.varies_x,
            self.varies_y,
            bool(self._symmetric),
        )
        cka = cka.to(self.result_dtype)
        return cka[0, 0] if self._single else cka
