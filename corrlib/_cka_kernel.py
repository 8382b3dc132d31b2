"""The kernel behind linear CKA: centred representations and their HSIC terms.

Shared by the functions of :mod:`corrlib.similarity` and by
:class:`corrlib.streaming_cka.MinibatchCKA`. :func:`prepare` centres a representation, sets
its exactly constant columns to exactly zero (so the rounding residue of the centring is
never taken for variance) and divides it by a power of two near its largest magnitude: CKA
does not change under isotropic scaling, and so no product under- or overflows whatever the
data's scale (``Rep.exponent`` records the power, for the callers that need HSIC itself).
:func:`hsic_terms` gives, for two lists of prepared representations, the self-similarities
of each and the cross-similarity matrix, and :func:`cka_from_terms` turns them into CKA.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from corrlib._moments import unit_scaled
from corrlib._validation import (
    as_real_tensor,
    check_min_samples,
    compute_dtype,
    constant_columns,
    result_dtype,
)
from corrlib._warnings import constant_input_message


@dataclass
class Rep:
    """A centred representation (scaled by a power of two) and the pieces every CKA formula
    needs from it."""

    xc: torch.Tensor  # (n, d), column-centred; exactly constant columns exactly 0
    row_sq: torch.Tensor  # (n,), squared norm of each centred row = diagonal of Kc
    sq_norm: torch.Tensor  # 0-d, sum of row_sq = tr(Kc)
    varies: bool  # False when every column is exactly constant (every row the same)
    exponent: torch.Tensor  # 0-d int: xc is the centred data divided by 2^exponent
    _gram: torch.Tensor | None = None

    @property
    def n(self) -> int:
        return self.xc.shape[0]

    @property
    def d(self) -> int:
        return self.xc.shape[1]

    @property
    def gram(self) -> torch.Tensor:
        """The centred ``n x n`` Gram matrix, built on first use only."""
        if self._gram is None:
            self._gram = self.xc @ self.xc.T
        return self._gram


def _as_samples_matrix(x: Any, name: str) -> torch.Tensor:
    """``x`` as a float tensor ``(n, d)``: one row per sample, extra dimensions flattened."""
    t = as_real_tensor(x, name)
    if t.ndim < 2:
        raise ValueError(
            f"{name} must be (n_samples, n_features) or (n_samples, ...), got shape {tuple(t.shape)}"
        )
    check_min_samples(t, 2, name)
    t = t.reshape(t.shape[0], -1)
    if t.shape[1] == 0:
        raise ValueError(f"{name} has no features, got shape {tuple(t.shape)}")
    return t


def prepare(x: Any, name: str, dtype: torch.dtype | None = None) -> Rep:
    t = _as_samples_matrix(x, name)
    t = t.to(dtype if dtype is not None else compute_dtype(t.dtype))
    constant = constant_columns(t)
    xc = t - t.mean(dim=0, keepdim=True)
    if bool(constant.any()):
        xc = xc.masked_fill(constant, 0.0)
    xc, exponent = _unit_scaled(xc)
    row_sq = (xc * xc).sum(dim=1)
    return Rep(xc, row_sq, row_sq.sum(), not bool(constant.all()), exponent)


def _unit_scaled(xc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``xc / 2^e`` with ``2^e`` near its largest magnitude (exact), and ``e`` (0-d int)."""
    return unit_scaled(xc, xc.detach().abs().amax())


def unscaled(terms: torch.Tensor, exp_a: torch.Tensor, exp_b: torch.Tensor) -> torch.Tensor:
    """HSIC terms of scaled representations in the data's own units, in float64 (exact):
    ``terms[i, j] * 2^(2 exp_a[i] + 2 exp_b[j])``, or for self-similarities (1-D ``terms``,
    ``exp_b`` ignored) ``terms[i] * 2^(4 exp_a[i])``."""
    if terms.ndim == 1:
        power = 4 * exp_a
    else:
        power = 2 * exp_a[:, None] + 2 * exp_b[None, :]
    return torch.ldexp(terms.to(torch.float64), power.to(torch.float64))


def exponents(reps: Sequence[Rep]) -> torch.Tensor:
    """The scaling exponents of ``reps``, shape ``(len(reps),)``."""
    return torch.stack([r.exponent for r in reps])


def dot(a: Rep, b: Rep, debiased: bool) -> torch.Tensor:
    """``n (n - 3)`` times the unbiased HSIC (``debiased``) or ``||Yc^T Xc||_F^2``."""
    n = a.n
    if a is b:
        s = (a.gram * a.gram).sum() if n < a.d else torch.linalg.matrix_norm(a.xc.T @ a.xc) ** 2
    elif n < max(a.d, b.d):
        s = (a.gram * b.gram).sum()  # tr(Kc Lc) with symmetric Gram matrices
    else:
        s = torch.linalg.matrix_norm(b.xc.T @ a.xc) ** 2
    if debiased:
        # Song et al. (2012), written for column-centred data (whose Gram rows sum to zero);
        # the estimator does not depend on the centring, so this is the general formula.
        s = s - n / (n - 2) * (a.row_sq @ b.row_sq) + a.sq_norm * b.sq_norm / ((n - 1) * (n - 2))
    return s


def hsic_terms(
    reps_a: Sequence[Rep], reps_b: Sequence[Rep] | None, debiased: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The HSIC terms of every pair: ``(cross (k, l), self_a (k,), self_b (l,))``.

    ``cross[i, j]`` is ``dot(reps_a[i], reps_b[j])``; with ``reps_b=None`` the set is
    compared with itself, each pair computed once, and ``cross`` has ``self_a`` on its diagonal.
    Differentiable.
    """
    self_a = torch.stack([dot(r, r, debiased) for r in reps_a])
    if reps_b is None:
        k = len(reps_a)
        entries: dict[tuple[int, int], torch.Tensor] = {}
        for i in range(k):
            entries[i, i] = self_a[i]
            for j in range(i + 1, k):
                entries[i, j] = entries[j, i] = dot(reps_a[i], reps_a[j], debiased)
        rows = [torch.stack([entries[i, j] for j in range(k)]) for i in range(k)]
        return torch.stack(rows), self_a, self_a
    self_b = torch.stack([dot(r, r, debiased) for r in reps_b])
    rows = [torch.stack([dot(a, b, debiased) for b in reps_b]) for a in reps_a]
    return torch.stack(rows), self_a, self_b


def cka_from_terms(
    cross: torch.Tensor,
    self_a: torch.Tensor,
    self_b: torch.Tensor,
    varies_a: torch.Tensor,
    varies_b: torch.Tensor,
    symmetric: bool,
) -> torch.Tensor:
    """CKA ``cross / sqrt(self_a self_b)`` for every pair; NaN where a side does not vary or
    has no positive self-similarity. A symmetric set gets an exact unit diagonal."""
    ok_a = varies_a & (self_a > 0)
    ok_b = varies_b & (self_b > 0)
    ok = ok_a[:, None] & ok_b[None, :]
    one = torch.ones((), dtype=cross.dtype, device=cross.device)
    # sqrt of each factor, not of their product, which could overflow in float32
    root_a = torch.sqrt(torch.where(ok_a, self_a, one))
    root_b = torch.sqrt(torch.where(ok_b, self_b, one))
    cka = cross / (root_a[:, None] * root_b[None, :])
    if symmetric:
        eye = torch.eye(cka.shape[0], dtype=torch.bool, device=cka.device)
        cka = torch.where(eye, one, cka)
    return torch.where(ok, cka, torch.full_like(cka, float("nan")))


def varies(reps: Sequence[Rep], device: torch.device) -> torch.Tensor:
    return torch.tensor([r.varies for r in reps], dtype=torch.bool, device=device)


def constant_message(names: Sequence[str], within: str = "across the samples") -> str:
    return constant_input_message(f"{', '.join(names)} {within}", "CKA")


def check_debiased_n(n: int) -> None:
    if n < 4:
        raise ValueError(f"debiased CKA needs at least 4 samples, got {n}")


def dtypes(tensors: Sequence[torch.Tensor]) -> tuple[torch.dtype, torch.dtype]:
    """The dtype to compute in and the result dtype, for representations compared together.

    Each input counts with its own compute dtype (float32 for half precision, float64 for
    integers, whose values float32 would round) and its own result dtype (integers give
    torch's default float); the promotion of each set decides.
    """
    work = functools.reduce(torch.promote_types, (compute_dtype(t.dtype) for t in tensors))
    out = functools.reduce(torch.promote_types, (result_dtype(t.dtype) for t in tensors))
    return work, out


def as_rep_list(reps: Any, name: str) -> list[Any]:
    if isinstance(reps, Mapping):
        return list(reps.values())
    if isinstance(reps, torch.Tensor) or not isinstance(reps, Sequence):
        raise TypeError(
            f"{name} must be a list or dict of representations, got {type(reps).__name__}"
        )
    return list(reps)


def check_sample_counts(groups: Sequence[tuple[str, Sequence[torch.Tensor]]], what: str) -> None:
    """Every tensor of every group has the first one's number of samples (rows)."""
    first = groups[0][1][0]
    for label, group in groups:
        for i, t in enumerate(group):
            if t.ndim < 1 or t.shape[0] != first.shape[0]:
                raise ValueError(
                    f"{what} must have the same number of samples, got shapes "
                    f"{tuple(first.shape)} ({groups[0][0]}[0]) and {tuple(t.shape)} ({label}[{i}])"
                )


def is_single(reps: Any) -> bool:
    """Whether ``reps`` is one representation rather than a list or dict of them."""
    return isinstance(reps, torch.Tensor) or not isinstance(reps, Sequence | Mapping)
