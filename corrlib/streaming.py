"""Correlation over data that arrive in mini-batches, on one process or across many.

:class:`RunningCorrelation` keeps the count, the means and the centred co-moment matrix of the
rows it has seen, and folds each new batch in with Chan, Golub and LeVeque's pairwise update.
Its memory is O(d^2) however many rows pass through, any split into batches gives the
full-batch result, and states from different workers (or ``torch.distributed`` ranks) merge into
the state of the pooled data.

The state is kept for data shifted by a fixed centre and divided by a fixed power of two
(both taken from the first batch): the accumulated mean then stays near zero, so that small
updates do not fall below half an ulp (a float32 running mean near 1e5 would stop moving
once updates drop under 4e-3, and a slow drift would be lost), and the sums of squares stay
far from overflow whatever the data's magnitude.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

from corrlib import _moments
from corrlib._stateful import DTYPES, Description, StreamingStatistic, dtype_code, state_update
from corrlib._validation import (
    as_data,
    check_ndim,
    check_positive_int,
    compute_dtype,
    constant_columns,
)
from corrlib._warnings import ConstantInputWarning, constant_input_message, warn

__all__ = ["RunningCorrelation"]

# Rows whose mean centres each batch (its error, about sd / sqrt(rows), costs well under a
# bit in the product; fewer rows read less of a batch that is not yet in cache).
_CENTRE_ROWS = 128


class RunningCorrelation(StreamingStatistic):
    """Streaming Pearson correlation matrix of ``num_features`` features.

    The means and co-moments are accumulated in float64 (float32 on devices without float64,
    such as Apple's MPS), whatever a parent model is cast to; :meth:`set_dtype` changes that.
    Like :class:`corrlib.streaming_cka.MinibatchCKA` it is a module whose buffers are its whole
    state: :meth:`merge` folds another state in, :meth:`sync` pools those of every
    ``torch.distributed`` rank (:meth:`unsync` undoes it), calling it (``rc(batch)``) updates
    it and returns the correlation of that batch alone, and ``state_dict`` /
    ``load_state_dict`` save and restore it with its result dtype.

    Parameters
    ----------
    num_features : int
        Width ``d`` of every batch (batches are ``(n_i, d)``).
    dtype : torch.dtype, optional
        Floating dtype of the results. By default it follows the data: the dtype of the first
        batch (or of a state merged or loaded into a fresh one), torch's default float dtype
        for integer data. The state is accumulated in that dtype, except float16 and bfloat16
        (accumulated in float32) and integers (in float64). Pass ``torch.float64`` to
        accumulate float32 data in double precision.
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
    shift: torch.Tensor
    scale: torch.Tensor
    shifted_mean: torch.Tensor
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
        num_features = check_positive_int(num_features, "num_features")
        if dtype is not None and not dtype.is_floating_point:
            raise TypeError(f"dtype must be a floating dtype, got {dtype}")
        self.num_features = num_features
        self.follows_data = dtype is None
        self.result_dtype = torch.get_default_dtype() if dtype is None else dtype
        self.state_dtype = compute_dtype(self.result_dtype)
        self._empty_state(torch.device("cpu") if device is None else torch.device(device))

    @state_update
    def _empty_state(self, device: torch.device) -> None:
        """The state of no rows, on ``device`` (allocated there explicitly, not on torch's
        default device; ordinary tensors even inside inference mode). Every state is merged
        by :meth:`_fold` (Chan's rule)."""
        d, kw = self.num_features, {"dtype": self.state_dtype, "device": device}
        self.add_state("count", torch.zeros((), dtype=torch.int64, device=device))
        # The state describes z = (x - shift) / scale; scale is a power of two (exact).
        self.add_state("shift", torch.zeros(d, **kw))
        self.add_state("scale", torch.ones(d, **kw))
        # Mean and co-moments are accumulators (float64) whatever the data's dtype: summing
        # thousands of batch co-moments in float32 would drift by sqrt(batches) * eps.
        self.add_state("shifted_mean", torch.zeros(d, device=device), accumulator=True)
        self.add_state("comoment", torch.zeros(d, d, device=device), accumulator=True)
        # Constancy is tracked exactly: the first value seen per feature, and whether any
        # later value differed from it (no variance threshold involved).
        self.add_state("reference", torch.zeros(d, **kw))
        self.add_state("varies", torch.zeros(d, dtype=torch.bool, device=device))
        # (scaled, shifted) of the frame, read once per frame rather than once per batch
        self._frame_flags: tuple[bool, bool] | None = None

    @property
    def n(self) -> int:
        """Number of rows seen so far."""
        return int(self.count)

    @property
    def mean(self) -> torch.Tensor:
        """Running mean of every feature, shape ``(d,)``, in the state's dtype."""
        acc = self.comoment.dtype
        wide = self.shift.to(acc) + self.shifted_mean * self.scale.to(acc)
        return wide.to(self.state_dtype)

    def extra_repr(self) -> str:
        return f"num_features={self.num_features}, n={self.n}, dtype={self.state_dtype}"

    def _has_data(self) -> bool:
        return self.n > 0

    def _form(self) -> tuple[int, ...]:
        return (self.num_features, dtype_code(self.state_dtype))

    def _take(self, other: Description) -> None:
        """Check the width; an empty state following the data takes the other's dtypes."""
        num_features, state_code = other.form
        if num_features != self.num_features:
            raise ValueError(
                f"cannot merge states of {num_features} and {self.num_features} features"
            )
        if other.has_data and self.n == 0 and self.follows_data:
            self._adopt_dtype(other.result_dtype, compute=DTYPES[state_code])

    @state_update
    def update(self, batch: Any) -> RunningCorrelation:
        """Fold a batch of shape ``(n_i, num_features)`` into the state (``n_i`` may be 0).

        Raises
        ------
        ValueError
            If the batch is not 2-D or has the wrong width, or lives on another device than a
            state that already holds data.
        """
        self._check_unsynced("updating")
        x, out_dtype = as_data(batch, "batch")
        check_ndim(x, 2, "batch")
        if x.shape[1] != self.num_features:
            raise ValueError(
                f"batch has {x.shape[1]} features, expected {self.num_features} "
                f"(batch shape {tuple(x.shape)})"
            )
        if x.device != self.comoment.device:
            if self.n > 0:
                raise ValueError(
                    f"batch is on {x.device} but the state holding data is on "
                    f"{self.comoment.device}"
                )
            self.to(x.device)
        if x.shape[0] == 0:
            return self
        if self.n == 0 and self.follows_data:
            self._adopt_dtype(out_dtype, compute=x.dtype)
        x = x.to(self.state_dtype)
        fresh = self.n == 0
        if fresh:
            self._choose_frame(x)
        if fresh or not bool(self.varies.all()):  # nothing to learn once all vary
            self._track_constancy(x[0], ~constant_columns(x))
        self._add_moments(x.shape[0], *self._frame_moments(x))
        return self

    def covariance(self, correction: int = 1) -> torch.Tensor:
        """Covariance matrix of the rows seen, dividing by ``n - correction``."""
        self._check_has_data("covariance")
        if self.n - correction <= 0:
            raise ValueError(f"covariance needs more than {correction} rows, got n={self.n}")
        scale = self.scale.to(self.comoment.dtype)
        symmetric = (self.comoment + self.comoment.T) / 2
        scaled = symmetric * torch.outer(scale, scale)
        return (scaled / (self.n - correction)).to(self.result_dtype)

    def compute(self) -> torch.Tensor:
        """Correlation matrix of every row seen, shape ``(d, d)``.

        Exactly constant features (every value seen equal to the first) get NaN in their row and
        column with a :class:`~corrlib.ConstantInputWarning`; a feature that has seen a NaN
        or an infinite value gets NaN. Data of any magnitude within the dtype's range are
        handled (the state is kept in units of a power of two taken from the first batch);
        a later batch so much larger that the sums of squares overflow gives NaN for that
        feature, with a ``RuntimeWarning``.

        Raises
        ------
        RuntimeError
            Before any update (no rows seen).
        ValueError
            If only 1 row has been seen.
        """
        self._check_has_data("compute")
        if self.n < 2:
            raise ValueError(f"a correlation needs at least 2 rows, got n={self.n}")
        constant = ~self.varies
        if bool(constant.any()):
            warn(constant_input_message("a feature, over every row seen"), ConstantInputWarning)
        ss = torch.diagonal(self.comoment)
        overflow = ~torch.isfinite(ss) & torch.isfinite(self.shifted_mean)
        if bool(overflow.any()):
            warn(
                f"the sums of squares overflowed {self.state_dtype}; those correlations are "
                "NaN (accumulate in torch.float64 or scale the data down)"
            )
        bad = constant | ~torch.isfinite(self.shifted_mean)
        return _moments.correlation(self.comoment, ss, bad_x=bad).to(self.result_dtype)

    def _adopt_dtype(self, dtype: torch.dtype, compute: torch.dtype | None = None) -> None:
        """Let an empty state take the dtype of the data it is about to receive."""
        self.result_dtype = dtype if dtype.is_floating_point else torch.get_default_dtype()
        self.state_dtype = compute_dtype(self.result_dtype if compute is None else compute)
        for name in ("shift", "scale", "reference"):
            setattr(self, name, getattr(self, name).to(self.state_dtype))

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args: Any) -> None:
        incoming = state_dict.get(prefix + "shift")
        if self.follows_data and incoming is not None and incoming.dtype != self.shift.dtype:
            self._adopt_dtype(incoming.dtype)
        super()._load_from_state_dict(state_dict, prefix, *args)
        self._frame_flags = None

    def _choose_frame(self, x: torch.Tensor) -> None:
        """Fix the shift and the power-of-two scale from the first batch.

        The shift is the mean of the batch's first rows; the scale brings the data's largest
        magnitude near 1 when it lies outside [2^-40, 2^40] (within the dtype's range).
        """
        head = x[: _moments.HEAD_ROWS]
        shift = torch.nan_to_num(head.mean(dim=0), nan=0.0, posinf=0.0, neginf=0.0)
        # largest distance from the shift (a feature with a NaN or an infinity is NaN anyway)
        low, high = head.amin(dim=0), head.amax(dim=0)
        spread = torch.nan_to_num(torch.maximum(high - shift, shift - low), nan=0.0, posinf=0.0)
        power = torch.floor(torch.log2(spread.to(self.comoment.dtype)))
        outside = (spread > 0) & ((power < -40) | (power > 40))
        limit = math.floor(math.log2(torch.finfo(self.state_dtype).max)) - 8  # 1/scale exact
        power = torch.where(outside, power.clamp(-limit, limit), torch.zeros_like(power))
        self.shift.copy_(shift)
        self.scale.copy_(torch.exp2(power).to(self.state_dtype))
        self._frame_flags = None

    def _frame_moments(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and co-moment of the batch ``(x - shift) / scale``, the mean in float64.

        The batch is centred on its own first rows (or, if they were far from typical, on its
        exact mean); the shift of the frame is added to the mean afterwards: ``c - shift`` is
        exact when the stream stays within a factor 2 of the shift (Sterbenz).
        """
        if self._frame_flags is None:
            self._frame_flags = (bool((self.scale != 1).any()), bool(self.shift.any()))
        scaled, _ = self._frame_flags
        frame = self.shift
        if scaled:
            x = torch.addcmul(-self.shift / self.scale, x, 1.0 / self.scale)  # exact factors
            frame = torch.zeros_like(self.shift)
        c = torch.nan_to_num(x[:_CENTRE_ROWS].mean(dim=0), nan=0.0, posinf=0.0, neginf=0.0)
        m = _moments.shifted_moments(x, shift_x=c)
        if not bool(_moments.well_shifted(m.ss_x, m.sq_x, m.dtype).all()):
            # a column that varies and cancelled more than two bits: centre on the exact mean
            far = ~(m.sq_x < 4 * m.ss_x) & (m.ss_x > 0) & torch.isfinite(m.ss_x)
            if bool((far & ~constant_columns(x)).any()):
                c = torch.nan_to_num(x.mean(dim=0), nan=0.0, posinf=0.0, neginf=0.0)
                m = _moments.shifted_moments(x, shift_x=c)
        acc = self.shifted_mean.dtype
        mean = (c - frame).to(acc) + m.sums_x.to(acc) / x.shape[0]
        return mean, m.cross

    def _fold(self, other: Mapping[str, torch.Tensor]) -> None:
        """Merge the states of other rows, given in their own frame (shift, scale), into this
        one (Chan, Golub and LeVeque's rule, after a change of frame)."""
        n = int(other["count"])
        if n == 0:
            return
        low, acc = self.state_dtype, self.comoment.dtype
        shift, scale = other["shift"].to(low), other["scale"].to(low)
        if self.n == 0:
            self.shift.copy_(shift)
            self.scale.copy_(scale)
            self._frame_flags = None
        own_scale = self.scale.to(acc)
        ratio = scale.to(acc) / own_scale
        # shift - self.shift is exact (Sterbenz) for shifts within a factor 2 of each other
        shifted_mean = other["shifted_mean"].to(acc) * scale.to(acc)
        mean = ((shift - self.shift).to(acc) + shifted_mean) / own_scale
        comoment = other["comoment"].to(acc)
        if not bool((ratio == 1).all()):
            comoment = comoment * torch.outer(ratio, ratio)
        self._track_constancy(other["reference"].to(low), other["varies"])
        self._add_moments(n, mean, comoment)

    def _track_constancy(self, reference: torch.Tensor, varies: torch.Tensor) -> None:
        """Take in the first values and the ``varies`` flags of rows about to be folded in
        (call it before :meth:`_add_moments`): a feature varies once any value differs from the
        first one this state saw."""
        if self.n == 0:
            self.reference.copy_(reference)
            self.varies.copy_(varies)
        else:
            self.varies |= varies | (reference != self.reference)

    def _add_moments(self, n_b: int, mean: torch.Tensor, comoment: torch.Tensor) -> None:
        """Merge ``n_b`` rows with this mean and co-moment (in this state's frame) into the
        state, in place (Chan, Golub and LeVeque's rule).

        The co-moment may be in the state's dtype or lower (float32 into a float64 state): it
        is converted first (a mixed-dtype in-place addition takes several times longer than
        the copy and a plain addition). It is symmetric up to the
        rounding of each batch's product; :meth:`compute` and :meth:`covariance` symmetrize
        it once.
        """
        n_a = self.n
        n = n_a + n_b
        diff = mean - self.shifted_mean
        self.comoment.add_(comoment.to(self.comoment.dtype))
        if n_a > 0:
            self.comoment.addr_(diff, diff, alpha=n_a * n_b / n)
        self.shifted_mean.add_(diff, alpha=n_b / n)
        self.count.fill_(n)
