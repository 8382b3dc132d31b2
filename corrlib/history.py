"""The per-epoch record of a training run, as :func:`corrlib.training.fit` returns it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields

from corrlib._lazy import lazy_import

pd = lazy_import("pandas")  # imported on first use, not with corrlib

__all__ = ["History"]


@dataclass
class History:
    """Per-epoch results of :func:`fit`; entry ``i`` of every list belongs to epoch ``i + 1``.

    Attributes
    ----------
    train_loss : list of float
        Mean data loss over the epoch's training batches (weighted by batch size, computed as
        the model trained, in training mode); the penalty is not included.
    train_acc : list of float
        Accuracy on the training batches as they were seen (NaN when not a classification).
    val_loss, val_acc : list of float
        :func:`evaluate` on the validation loader after the epoch (NaN without one).
    penalty : list of float
        Mean weighted penalty over the training batches (0 without a penalty).
    """

    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    penalty: list[float] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.train_loss)

    def __getitem__(self, name: str) -> list[float]:
        """Dict-style access, ``history["val_acc"]``, to the same lists as the attributes."""
        if name not in self.keys():
            raise KeyError(f"History has {self.keys()}, not {name!r}")
        return getattr(self, name)

    def keys(self) -> list[str]:
        """The names of the per-epoch lists."""
        return [f.name for f in fields(self)]

    @property
    def epochs(self) -> list[int]:
        """The epoch numbers, ``[1, 2, ..., len(self)]``."""
        return list(range(1, len(self) + 1))

    def append(self, **row: float) -> None:
        """Add one epoch; ``row`` must give every field."""
        names = [f.name for f in fields(self)]
        if sorted(row) != sorted(names):
            raise ValueError(f"History.append needs exactly the fields {names}, got {sorted(row)}")
        for name in names:
            getattr(self, name).append(float(row[name]))

    def to_dict(self) -> dict[str, list[float]]:
        """Plain lists of floats (what a checkpoint stores)."""
        return {f.name: list(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Sequence[float]]) -> History:
        """Inverse of :meth:`to_dict`."""
        names = [f.name for f in fields(cls)]
        missing = [n for n in names if n not in data]
        if missing:
            raise ValueError(f"history is missing the fields {missing}")
        lengths = {len(data[n]) for n in names}
        if len(lengths) > 1:
            raise ValueError(f"history fields have different lengths: {sorted(lengths)}")
        return cls(**{n: [float(v) for v in data[n]] for n in names})

    def as_dataframe(self):
        """The history as a pandas DataFrame indexed by ``epoch`` (needs pandas)."""
        frame = pd.DataFrame(self.to_dict(), index=pd.Index(self.epochs, name="epoch"))
        return frame
