"""Correlation over data that arrive in mini-batches, on one process or across many.

:class:`RunningCorrelation` keeps the count, the means and the centred co-moment matrix of the
rows it has seen, and folds each new batch in with Chan, Golub and LeVeque's pairwise update.
Its memory is O(d^2) however many rows pass through, any split into batches gives the
full-batch result, and states from different workers (or ``torch.distributed`` ranks) merge into
the state of the pooled data.
"""

from __future__ import annotations

import functools
import warnings
from typing import Any

import torch
from torch import nn

from corrlib import _moments
from corrlib._validation import as_float_tensor, check_ndim, compute_dtype, constant_columns
from corrlib._warnings import ConstantInputWarning

# Result dtypes a state can have, by code (for exchanging them between ranks).
_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


class RunningCorrelation(nn.Module):
    """Streaming Pearson correlation matrix of ``num_features`` features.

    Parameters
    ----------
    num_features : int
        Width ``d`` of every batch (batches are ``(n_i, d)``).
    dtype : torch.dtype, optional
        Floating dtype of the accumulated state and of the results. By default it follows the
        data: the dtype of the first batch (or of a state merged or loaded into a fresh one),
        with float16 and bfloat16 accumulated in float32 and integers in torch's default
        float dtype. Pass ``torch.float64`` to accumulate float32 data in double precision.
    device : torch.device or str, optional
        Where the state lives. A fresh state moves to the device of the first batch.

    Attributes
    ----------
    n : int
        Number of rows seen.
    mean : Tensor, shape ``(d,)``
        Running mean.

    Examples
    --------
    >>> import torch, corrlib
    >>> x = torch.randn(1000, 4)
    >>> rc = corrlib.RunningCorrelation(4)
    >>> for batch in x.split(64):
    ...     _ = rc.update(batch)
    >>> torch.allclose(rc.compute(), corrlib.corr_matrix(x), atol=1e-5)
    True
    """

    count: torch.Tensor
    mean: torch.Tensor
    comoment: torch.Tensor
    reference: torch.Tensor
    varies: torch.Tensor

    def __init__(
        self,
        num_features: int,
        *,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(num_features, int) or num_features < 1:
            raise ValueError(f"num_features must be a positive integer, got {num_features!r}")
        if dtype is not None and not dtype.is_floating_point:
            raise TypeError(f"dtype must be a floating dtype, got {dtype}")
        self.num_features = num_features
        self.follows_data = dtype is None
        self.result_dtype = torch.get_default_dtype() if dtype is None else dtype
        self.state_dtype = compute_dtype(self.result_dtype)
        d, kw = num_features, {"dtype": self.state_dtype, "device": device}
        self.register_buffer("count", torch.zeros((), dtype=torch.int64, device=device))
        self.register_buffer("mean", torch.zeros(d, **kw))
        self.register_buffer("comoment", torch.zeros(d, d, **kw))
        # Constancy is tracked exactly: the first value seen per feature, and whether any
        # later value differed from it (no variance threshold involved).
        self.register_buffer("reference", torch.zeros(d, **kw))
        self.register_buffer("varies", torch.zeros(d, dtype=torch.bool, device=device))

    @property
    def n(self) -> int:
        """Number of rows seen so far."""
        return int(self.count)

    def extra_repr(self) -> str:
        return f"num_features={self.num_features}, n={self.n}, dtype={self.state_dtype}"

    def reset(self) -> RunningCorrelation:
        """Forget every row seen (the state returns to its freshly constructed values)."""
        self.count.zero_()
        self.mean.zero_()
        self.comoment.zero_()
        self.reference.zero_()
        self.varies.zero_()
        return self

    @torch.no_grad()
    def update(self, batch: Any) -> RunningCorrelation:
        """Fold a batch of shape ``(n_i, num_features)`` into the state (``n_i`` may be 0).

        Raises
        ------
        ValueError
            If the batch is not 2-D or has the wrong width, or lives on another device than a
            state that already holds data.
        """
        x = as_float_tensor(batch, "batch")
        check_ndim(x, 2, "batch")
        if x.shape[1] != self.num_features:
            raise ValueError(
                f"batch has {x.shape[1]} features, expected {self.num_features} "
                f"(batch shape {tuple(x.shape)})"
            )
        if x.device != self.mean.device:
            if self.n > 0:
                raise ValueError(
                    f"batch is on {x.device} but the state holding data is on {self.mean.device}"
                )
            self.to(x.device)
        if x.shape[0] == 0:
            return self
        if self.n == 0 and self.follows_data:
            self._adopt_dtype(x.dtype)
        x = x.to(self.state_dtype)
        part = _moments.centred_gram(x)
        varies = ~constant_columns(x, mean=part.mean_x, ss=part.ss_x)
        self._fold(part, x[0], varies)
        return self

    def merge(self, other: RunningCorrelation) -> RunningCorrelation:
        """Fold ``other``'s state into this one, in place, and return ``self``.

        The result is the state of the pooled rows, whatever the order of merging.
        """
        if not isinstance(other, RunningCorrelation):
            raise TypeError(f"can only merge a RunningCorrelation, got {type(other).__name__}")
        if other.num_features != self.num_features:
            raise ValueError(
                f"cannot merge states of {other.num_features} and {self.num_features} features"
            )
        if self.n == 0 and self.follows_data:
            self._adopt_dtype(other.result_dtype)
        device, dtype = self.mean.device, self.state_dtype
        comoment = other.comoment.to(device, dtype)
        part = _symmetric_moments(other.n, other.mean.to(device, dtype), comoment)
        with torch.no_grad():
            self._fold(part, other.reference.to(device, dtype), other.varies.to(device))
        return self

    def covariance(self, correction: int = 1) -> torch.Tensor:
        """Covariance matrix of the rows seen, dividing by ``n - correction``."""
        if self.n - correction <= 0:
            raise ValueError(f"covariance needs more than {correction} rows, got n={self.n}")
        return (self.comoment / (self.n - correction)).to(self.result_dtype)

    def compute(self) -> torch.Tensor:
        """Correlation matrix of every row seen, shape ``(d, d)``.

        Exactly constant features (every value seen equal to the first) get NaN in their row and
        column with a :class:`~corrlib.ConstantInputWarning`; a feature that has seen a NaN
        gets NaN; a feature whose sum of squares overflowed the state's dtype (float32 data
        beyond about 1e17) gets NaN with a ``RuntimeWarning``.

        Raises
        ------
        ValueError
            If fewer than 2 rows have been seen.
        """
        if self.n < 2:
            raise ValueError(f"a correlation needs at least 2 rows, got n={self.n}")
        constant = ~self.varies
        if bool(constant.any()):
            warnings.warn(
                "a feature was exactly constant over every row seen; its correlations are "
                "returned as NaN",
                ConstantInputWarning,
                stacklevel=2,
            )
        ss = torch.diagonal(self.comoment)
        ss = torch.where(constant | (ss <= 0), torch.ones_like(ss), ss)
        comoment = (self.comoment + self.comoment.T) / 2  # exactly symmetric
        r = (comoment / _outer_sqrt(ss)).clamp(-1.0, 1.0)
        r.fill_diagonal_(1.0)
        overflow = torch.isinf(ss) & ~torch.isnan(self.mean)
        if bool(overflow.any()):
            warnings.warn(
                f"the sums of squares overflowed {self.state_dtype}; those correlations are "
                "NaN (accumulate in torch.float64 or scale the data down)",
                RuntimeWarning,
                stacklevel=2,
            )
        bad = constant | torch.isnan(self.mean) | ~torch.isfinite(ss)
        r = torch.where(bad[:, None] | bad[None, :], torch.full_like(r, float("nan")), r)
        return r.to(self.result_dtype)

    @torch.no_grad()
    def sync(self, group: Any = None) -> RunningCorrelation:
        """Replace this state by the pooled state of every rank of a ``torch.distributed`` group.

        Every rank must call it (it is a collective); afterwards all ranks hold the same
        state, that of all their rows together (merged in rank order, so the result is
        identical on every rank). Without an initialised process group it does nothing. Works
        on the gloo backend (CPU) and on NCCL (state on the GPU). Call it once, right before
        :meth:`compute`: a second call would count every row again.
        """
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            return self
        world = dist.get_world_size(group)
        # States travel in float64, so ranks whose states differ in dtype can still meet.
        wire = torch.float64
        flat = torch.cat(
            [self.mean, self.comoment.flatten(), self.reference, self.varies.to(self.mean.dtype)]
        ).to(wire)
        header = torch.tensor(
            [self.n, _DTYPES.index(self.result_dtype)], dtype=torch.int64, device=self.mean.device
        )
        headers = [torch.zeros_like(header) for _ in range(world)]
        dist.all_gather(headers, header, group=group)
        flats = [torch.empty_like(flat) for _ in range(world)]
        dist.all_gather(flats, flat, group=group)
        self.reset()
        dtypes = [_DTYPES[int(code)] for count, code in headers if int(count) > 0]
        if self.follows_data and dtypes:
            # every rank ends with the same dtype: the promotion of those of the ranks with data
            self._adopt_dtype(functools.reduce(torch.promote_types, dtypes))
        d = self.num_features
        counts = [h[0] for h in headers]
        for count, state in zip(counts, flats, strict=True):
            state = state.to(self.state_dtype)
            mean, rest = state[:d], state[d:]
            comoment, rest = rest[: d * d].view(d, d), rest[d * d :]
            part = _symmetric_moments(int(count), mean, comoment)
            self._fold(part, rest[:d], rest[d : 2 * d] != 0)
        return self

    def _adopt_dtype(self, dtype: torch.dtype) -> None:
        """Let an empty state take the dtype of the data it is about to receive."""
        self.result_dtype = dtype if dtype.is_floating_point else torch.get_default_dtype()
        self.state_dtype = compute_dtype(self.result_dtype)
        self.mean = self.mean.to(self.state_dtype)
        self.comoment = self.comoment.to(self.state_dtype)
        self.reference = self.reference.to(self.state_dtype)

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args: Any) -> None:
        incoming = state_dict.get(prefix + "mean")
        if self.follows_data and incoming is not None and incoming.dtype != self.mean.dtype:
            self._adopt_dtype(incoming.dtype)
        super()._load_from_state_dict(state_dict, prefix, *args)

    def _fold(self, part: _moments.Moments, reference: torch.Tensor, varies: torch.Tensor) -> None:
        """Merge ``part`` (with its first values and its own ``varies`` flags) into the state."""
        if part.n == 0:
            return
        if self.n == 0:
            self.reference.copy_(reference)
            self.varies.copy_(varies)
        else:
            self.varies |= varies | (reference != self.reference)
        merged = _moments.merge(_symmetric_moments(self.n, self.mean, self.comoment), part)
        self.mean.copy_(merged.mean_x)
        self.comoment.copy_(merged.cross)
        self.count.fill_(merged.n)


def _symmetric_moments(n: int, mean: torch.Tensor, comoment: torch.Tensor) -> _moments.Moments:
    """The moments of one block of columns with itself."""
    ss = torch.diagonal(comoment)
    return _moments.Moments(n, mean, mean, comoment, ss, ss)


def _outer_sqrt(ss: torch.Tensor) -> torch.Tensor:
    """``sqrt(ss_i * ss_j)`` for every pair, without under- or overflow in the product.

    The product form makes identical columns give exactly 1; where the product would leave
    the floating range, ``sqrt(ss_i) * sqrt(ss_j)`` is used instead.
    """
    info = torch.finfo(ss.dtype)
    in_range = (ss > info.tiny**0.5) & (ss < info.max**0.5)
    both = in_range[:, None] & in_range[None, :]
    product = torch.sqrt(
        torch.where(both, ss[:, None] * ss[None, :], torch.ones_like(both, dtype=ss.dtype))
    )
    root = torch.sqrt(ss)
    return torch.where(both, product, root[:, None] * root[None, :])
