"""Gram matrices on the CPU: symmetric products in column blocks, and reused work buffers.

torch multiplies ``x.T @ x`` as a general product; BLAS's ``syrk``, which computes only one
triangle, is not called. :func:`symmetric_product` gets most of its saving by multiplying
only the column blocks on and above the diagonal and mirroring them. The buffers the products
are written into (and their block views: slicing is an operator call, which costs
microseconds with the caches cold after a large product) are made once per thread and reused.
Every function here returns fresh tensors or views of this thread's buffers, as documented.
"""

from __future__ import annotations

import threading

import torch

# On the CPU the shifted copy is made block by block into a reused buffer of about this many
# elements (a fresh full-size copy costs more in page faults than the subtraction itself).
_BLOCK_ELEMENTS = 1 << 22
MIN_BLOCK_ROWS, MAX_BLOCK_ROWS = 4096, 1 << 16
# Rows of that buffer are padded to a multiple of this many elements.
_ROW_ALIGN = 16
_workspace = threading.local()
# From this many columns on, column sums on the CPU are faster as a product with ones.
_MV_COLUMNS = 32
# Column blocks of about this width make up a symmetric product on the CPU (see
# symmetric_product); narrower data are multiplied in one product.
_SYMMETRIC_BLOCK = 64
_BLAS_DTYPES = (torch.float32, torch.float64)


def symmetric_product(x: torch.Tensor) -> torch.Tensor:
    """``x^T x``, computing only what symmetry requires.

    On the CPU, for wide data, the columns are cut into blocks and only the blocks on and
    above the diagonal are multiplied (as BLAS's ``syrk`` does, which torch does not call):
    about half the work of ``x.T @ x`` for many blocks; the blocks below are mirrored.
    """
    if symmetric_blocks(x) is None:
        return x.T @ x
    return plan(x.shape[1], x.dtype).symmetric_product(x)


def symmetric_blocks(x: torch.Tensor) -> list[int] | None:
    """Column edges of the blocks for :func:`symmetric_product`, or ``None`` for one product."""
    d = x.shape[1]
    if x.device.type != "cpu" or d < 2 * _SYMMETRIC_BLOCK or x.dtype not in _BLAS_DTYPES:
        return None
    count = d // _SYMMETRIC_BLOCK
    return [round(i * d / count) for i in range(count + 1)]


def column_sums(x: torch.Tensor) -> torch.Tensor:
    """``x.sum(dim=0)`` as a matrix-vector product with a reused vector of ones.

    On the CPU this reads a row-major matrix once, faster than the strided column reduction.
    """
    if x.device.type != "cpu" or not x.is_floating_point() or x.shape[1] < _MV_COLUMNS:
        return x.sum(dim=0)
    return torch.mv(x.T, ones(x.shape[0], x.dtype))


def tree_dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b`` for long 1-D tensors, summed in a tree (as ``torch.sum`` adds).

    A BLAS dot product accumulates every term into a few running sums, whose rounding error
    grows with the length (a relative 1e-5 for two million shifted float32 values, where a
    tree of partial sums stays near 1e-8). The products go to a reused buffer on the CPU.
    """
    if a.device.type != "cpu":
        return (a * b).sum()
    products = work_buffer(1, a.shape[0], a.dtype)[0]
    return torch.mul(a, b, out=products).sum()


class GramPlan:
    """Reused CPU buffers for the Gram matrices of ``d`` columns, with their block views made
    once (for :func:`symmetric_product` and the shifted products of ``corrlib._moments``).

    ``products`` receives ``[x - c]^T [x - c, 1]``: the Gram matrix next to the column sums.
    ``buffer`` (this thread's one work buffer, :func:`work_buffer`) holds ``[x - c, 1]`` for up to
    ``rows`` rows, its rows padded to a multiple of 64 bytes (BLAS is markedly slower on rows
    of odd length such as ``d + 1``). Slicing is an operator call of its own, costing
    microseconds with the caches cold after a large product, and a symmetric product in
    blocks needs dozens of slices: they are made here once (per row count, for the buffer).
    """

    def __init__(self, d: int, dtype: torch.dtype) -> None:
        self.d, self.dtype = d, dtype
        self.rows = block_rows(aligned(d + 1))
        self.products = torch.empty(d, d + 1, dtype=dtype)
        self.gram, self.sums = self.products[:, :d], self.products[:, d]
        self.edges = symmetric_blocks(self.gram) or [0, d]
        pairs = list(zip(self.edges[:-1], self.edges[1:], strict=True))
        self.upper = [(lo, hi, self.gram[lo:hi, lo:]) for lo, hi in pairs]
        self._mirrors = [(self.gram[hi:, lo:hi], self.gram[lo:hi, hi:].T) for lo, hi in pairs]
        self._buffer: torch.Tensor | None = None
        self._views: dict[int, tuple[torch.Tensor, list[tuple[torch.Tensor, ...]]]] = {}

    def symmetric_product(self, x: torch.Tensor) -> torch.Tensor:
        """A fresh ``x^T x``, multiplied block by block into ``products``."""
        for lo, hi, out in self.upper:
            out.addmm_(x[:, lo:hi].T, x[:, lo:], beta=0)
        self.mirror()
        return self.gram.clone()

    def mirror(self) -> None:
        """Copy the blocks above the diagonal of ``gram`` to their mirror images below it."""
        for below, above_t in self._mirrors:
            below.copy_(above_t)

    def views(self, n: int) -> tuple[torch.Tensor, list[tuple[torch.Tensor, ...]]]:
        """The shifted data's place for ``n`` rows, and ``(out, left^T, right)`` per block."""
        if getattr(_workspace, "owner", None) is not self:  # another caller used the buffer
            self._buffer = work_buffer(self.rows, aligned(self.d + 1), self.dtype)
            self._buffer[:, self.d] = 1
            self._views.clear()
            _workspace.owner = self
        cached = self._views.get(n)
        if cached is None:
            if len(self._views) >= 8:
                self._views.clear()
            rows, d = self._buffer[:n], self.d
            blocks = [
                (self.products[lo:hi, lo:], rows[:, lo:hi].T, rows[:, lo : d + 1])
                for lo, hi, _ in self.upper
            ]
            cached = self._views[n] = (rows[:, :d], blocks)
        return cached


def plan(d: int, dtype: torch.dtype) -> GramPlan:
    """This thread's :class:`GramPlan` for ``d`` columns of ``dtype`` (the last few kept)."""
    plans = getattr(_workspace, "plans", None)
    if plans is None:
        plans = _workspace.plans = {}
    found = plans.get((d, dtype))
    if found is None:
        if len(plans) >= 4:
            plans.clear()
        found = plans[d, dtype] = GramPlan(d, dtype)
    return found


def aligned(width: int) -> int:
    """``width`` rounded up to a multiple of :data:`_ROW_ALIGN`."""
    return -(-width // _ROW_ALIGN) * _ROW_ALIGN


def block_rows(width: int) -> int:
    """Rows per block of the CPU work buffer for data ``width`` columns wide."""
    return min(max(_BLOCK_ELEMENTS // width, MIN_BLOCK_ROWS), MAX_BLOCK_ROWS)


def work_buffer(rows: int, width: int, dtype: torch.dtype) -> torch.Tensor:
    """A ``(rows, width)`` CPU work buffer, reused between calls (one per thread).

    The caller may overwrite all of it: a :class:`GramPlan` that keeps views of it (and its
    column of ones) takes it back, and writes the ones again, on its next use.
    """
    _workspace.owner = None
    cached = getattr(_workspace, "buffer", None)
    if cached is None or cached.dtype != dtype or cached.numel() < rows * width:
        cached = torch.empty(rows * width, dtype=dtype)
        _workspace.buffer = cached
    return cached[: rows * width].view(rows, width)


def ones(n: int, dtype: torch.dtype) -> torch.Tensor:
    """A CPU vector of ``n`` ones, reused between calls (one per thread and dtype)."""
    cache = getattr(_workspace, "ones", None)
    if cache is None:
        cache = _workspace.ones = {}
    vector = cache.get(dtype)
    if vector is None or vector.numel() < n:
        vector = cache[dtype] = torch.ones(max(n, 1 << 16), dtype=dtype)
    return vector[:n]
