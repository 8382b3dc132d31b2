"""Warning classes raised by corrlib (modelled on ``scipy.stats``' own)."""

from __future__ import annotations

import warnings

# A warning to raise later: its message and its category. corrlib's helpers return these
# instead of warning themselves, and the public function raises them with ``emit``, so that
# every warning points at the line of the user's code that called the public function.
Note = tuple[str, type[Warning]]


class ConstantInputWarning(RuntimeWarning):
    """An input was exactly constant, so its correlation is undefined and reported as NaN.

    As in scipy, constancy is judged exactly (every value equal), never by a variance
    threshold: data on a tiny scale, such as noise of size 1e-9, are not constant.
    """


def emit(notes: list[Note], stacklevel: int = 2) -> None:
    """Raise each distinct note once, ``stacklevel`` counted from the caller of ``emit``.

    A public function calls ``emit(notes)``: the default ``stacklevel=2`` then names the line
    that called the public function.
    """
    for message, category in dict.fromkeys(notes):
        warnings.warn(message, category, stacklevel=stacklevel + 1)
