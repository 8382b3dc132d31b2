"""Linear CKA over mini-batches: :class:`MinibatchCKA`, the stream form of
:func:`corrlib.similarity.linear_cka` (also importable as ``corrlib.similarity.MinibatchCKA``).

Like :class:`corrlib.RunningCorrelation` it is a module whose buffers are its whole state; the
two share their base (:mod:`corrlib._stateful`): merging, syncing across ``torch.distributed``
ranks, calling, the accumulators' dtype and saving.
"""

from __future__ import annotations

from typing import Any

import torch

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
from corrlib._stateful import Description, StreamingStatistic, state_update
from corrlib._validation import as_real_tensor
from corrlib._warnings import ConstantInputWarning, warn

__all__ = ["MinibatchCKA"]


class MinibatchCKA(StreamingStatistic):
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
    ``torch.distributed`` rank (:meth:`unsync` undoes it), calling it (``acc(x, y)``) updates
    it and returns the CKA of that batch alone, and ``state_dict`` / ``load_state_dict`` save
    and restore it (also into a fresh ``MinibatchCKA()``, which takes the saved shapes). The
    sums are float64 (float32 on devices without it) whatever a parent model is cast to;
    :meth:`set_dtype` changes that.

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
        self._empty_state(torch.device("cpu"))  # explicitly: not torch's default device

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

    @state_update
    def _empty_state(self, device: torch.device) -> None:
        """The state of no batches and no form, on ``device`` (ordinary tensors, even in
        inference mode). Every state merges by a sum or a logical or."""
        self.add_state(
            "batch_count", torch.zeros((), dtype=torch.int64, device=device), merge="sum"
        )
        self.add_state(
            "sample_count", torch.zeros((), dtype=torch.int64, device=device), merge="sum"
        )
        self._resize(0, 0, device)
        self._single: bool | None = None
        self._symmetric: bool | None = None
        self.result_dtype = torch.get_default_dtype()

    @state_update
    def _resize(self, k: int, m: int, device: torch.device) -> None:
        """Empty sums for ``k`` x ``m`` representations on ``device`` (accumulators)."""
        for name, shape in (("cross", (k, m)), ("self_x", (k,)), ("self_y", (m,))):
            self.add_state(name, torch.zeros(shape, device=device), merge="sum", accumulator=True)
        for name, size in (("varies_x", k), ("varies_y", m)):
            self.add_state(name, torch.zeros(size, dtype=torch.bool, device=device), merge="any")

    def _has_data(self) -> bool:
        return self.n_batches > 0

    def _form(self) -> tuple[int, ...]:
        return (*self.shape, *self._flags())

    def _take(self, other: Description) -> None:
        """Check the form; an empty state takes it. The result dtype is the promotion."""
        if not other.has_data:
            return
        k, m, single, symmetric = other.form
        self._adopt_form(bool(single), bool(symmetric), (k, m))
        self.result_dtype = (
            other.result_dtype
            if self.n_batches == 0
            else torch.promote_types(self.result_dtype, other.result_dtype)
        )

    def _check_form(self, single: bool, symmetric: bool, shape: tuple[int, int]) -> None:
        """Raise unless a state that has a form has this one (an empty state takes any)."""
        if self._single is None:
            return
        if (single, symmetric) != (self._single, self._symmetric):
            raise ValueError("every update must have the same form (tensor/list, with/without y)")
        if shape != self.shape:
            raise ValueError(f"expected {self.shape} representations per side, got {shape}")

    def _adopt_form(self, single: bool, symmetric: bool, shape: tuple[int, int]) -> None:
        """Give an empty state its form, or check that a non-empty one has the same."""
        self._check_form(single, symmetric, shape)
        if self._single is None:
            self._single, self._symmetric = single, symmetric
            self._resize(*shape, self.device)

    def _flags(self) -> tuple[int, ...]:
        """The form of the updates, saved in ``state_dict`` (-1: no form yet)."""
        return tuple(-1 if flag is None else int(flag) for flag in (self._single, self._symmetric))

    def _set_flags(self, flags: list[int]) -> None:
        self._single, self._symmetric = (None if flag < 0 else bool(flag) for flag in flags)

    def set_extra_state(self, state: torch.Tensor | dict[str, Any]) -> None:
        if isinstance(state, dict):  # the format saved before the shared base
            flags = [-1 if state[k] is None else int(state[k]) for k in ("single", "symmetric")]
            state = torch.tensor(flags, dtype=getattr(torch, state["dtype"]))
        super().set_extra_state(state)

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args: Any) -> None:
        # a fresh state takes the saved shapes before the buffers are copied in
        incoming = state_dict.get(prefix + "cross")
        if incoming is not None and tuple(incoming.shape) != self.shape:
            self._resize(*incoming.shape, self.device)
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
        self._check_unsynced("updating")
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
        if device != self.device:
            if self.n_batches > 0:
                raise ValueError(
                    f"batch is on {device} but the state holding data is on {self.device}"
                )
            self.to(device)
        shape = (len(tensors_x), len(tensors_y))
        self._check_form(single, symmetric, shape)
        work, dtype = dtypes(tensors_x + tensors_y)
        prep_x = [prepare(t, f"x[{i}]", work) for i, t in enumerate(tensors_x)]
        prep_y = (
            prep_x if symmetric else [prepare(t, f"y[{j}]", work) for j, t in enumerate(tensors_y)]
        )
        cross, self_x, self_y = hsic_terms(prep_x, None if symmetric else prep_y, True)
        self._adopt_form(single, symmetric, shape)
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
        self._check_has_data("compute")
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
